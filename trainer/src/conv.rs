//! The U-Net's 3-D convolution, as one burn backend extension so that each
//! backend runs its backward pass its own fastest way.
//!
//! burn differentiates `conv3d` itself on every backend, from the backend's
//! `conv3d_x_backward` / `conv3d_weight_backward`. LibTorch (burn-tch) does
//! not provide those two, so burn composes them from other ops, and on the
//! CPU that makes a training step about 1.5x slower than PyTorch's
//! (BENCHMARKS.md). Here, on `Autodiff<LibTorch>`, each convolution is one
//! recorded LibTorch graph ([`crate::torch_graph`]): the input, weight and
//! bias gradients come from the same native kernels PyTorch uses. Every
//! other backend keeps burn's differentiation. (On LibTorch the U-Net's
//! forward pass as a whole is one such graph, [`crate::unet_graph`]; this
//! path serves the passes that look inside it, such as the live-channel
//! count.)
//!
//! Call [`conv3d`] (or [`forward`] for an `nn::conv::Conv3d`) instead of
//! `burn::tensor::module::conv3d`; the result is the same on every backend
//! (`tests/backends.rs` compares layers and gradients across backends).

#![cfg_attr(feature = "tch", allow(deprecated))] // burn-tch: one backend among several, dropped with its feature

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::nn::conv::Conv3d;
use burn::nn::PaddingConfig3d;
use burn::prelude::*;
use burn::tensor::ops::ConvOptions;

/// The convolution the U-Net trains with (defaults to burn's `conv3d` and its
/// differentiation).
#[backend_extension(
    Flex,
    LibTorch: cfg(feature = "tch"),
    Cube: cfg(any(feature = "wgpu", feature = "cuda")),
    Autodiff
)]
pub trait UNetConv: Backend {
    fn unet_conv3d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<3>,
    ) -> FloatTensor<Self> {
        Self::conv3d(x, weight, Some(bias), options)
    }
}

impl UNetConv for Flex {}
impl<C: CheckpointStrategy> UNetConv for Autodiff<Flex, C> {}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl UNetConv for burn::backend::Cube {}
#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl<C: CheckpointStrategy> UNetConv for Autodiff<burn::backend::Cube, C> {}

#[cfg(feature = "tch")]
#[allow(deprecated)]
impl UNetConv for burn::backend::LibTorch {}

#[cfg(feature = "tch")]
#[allow(deprecated)]
impl<C: CheckpointStrategy> UNetConv for Autodiff<burn::backend::LibTorch, C> {
    fn unet_conv3d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<3>,
    ) -> FloatTensor<Self> {
        torch::conv3d::<C>(x, weight, bias, options)
    }
}

/// `conv3d` through [`UNetConv`]: `x` `[B, Cin, D, H, W]`, `weight`
/// `[Cout, Cin, k, k, k]`, `bias` `[Cout]`.
pub fn conv3d(x: Tensor<5>, weight: Tensor<5>, bias: Tensor<1>, options: ConvOptions<3>) -> Tensor<5> {
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    if cube::needs_slabs(&x, &options) {
        return cube::conv3d(x, weight, bias, options);
    }
    extension_conv3d(x, weight, bias, options)
}

fn extension_conv3d(x: Tensor<5>, weight: Tensor<5>, bias: Tensor<1>, options: ConvOptions<3>) -> Tensor<5> {
    Tensor::from_dispatch(<Dispatch as UNetConv>::unet_conv3d(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        options,
    ))
}

/// `conv.forward(x)` through [`UNetConv`] (stride, dilation, groups and
/// padding as the module has them).
pub fn forward(conv: &Conv3d, x: Tensor<5>) -> Tensor<5> {
    let padding = match &conv.padding {
        PaddingConfig3d::Valid => [0; 3],
        PaddingConfig3d::Same => conv.kernel_size.map(|k| (k - 1) / 2),
        PaddingConfig3d::Explicit(d, h, w) => [*d, *h, *w],
    };
    let weight = conv.weight.val();
    // Every convolution of the U-Net has a bias; one without gets zeros.
    let bias = match &conv.bias {
        Some(b) => b.val(),
        None => Tensor::zeros([weight.dims()[0]], &weight.device()),
    };
    conv3d(
        x,
        weight,
        bias,
        ConvOptions::new(conv.stride, padding, conv.dilation, conv.groups),
    )
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
mod cube {
    //! The weight gradient on burn's cubecl backend (wgpu, CUDA), in slabs.
    //!
    //! Without autotune, burn-cubecl 0.22 computes a convolution's weight
    //! gradient with one shader invocation per weight element, looping over
    //! the batch and the whole output volume; Mesa's lavapipe cuts a loop off
    //! after 65,535 iterations, so from about 28³ the gradient came out too
    //! small (relative error 0.92 at [2, 8, 48³]). Here the output is
    //! computed as usual, with the weight detached, and the weight's gradient
    //! comes from the same convolution recomputed in slabs (one image, a few
    //! output planes, at most [`SLAB_VOXELS`] output voxels each) whose sum
    //! enters the graph with value zero: `y + (slabs − detach(slabs))`.
    //! The price is a second forward convolution per layer on this backend.
    use burn::backend::DispatchDevice;
    use burn::prelude::*;
    use burn::tensor::ops::ConvOptions;

    /// Output voxels one weight-gradient invocation may loop over (half of
    /// lavapipe's 65,535).
    pub const SLAB_VOXELS: usize = 16_384;

    /// A cubecl device that will differentiate this convolution's weight.
    pub fn needs_slabs(x: &Tensor<5>, options: &ConvOptions<3>) -> bool {
        let device = x.device();
        device.is_autodiff()
            && matches!(device.as_dispatch().clone().inner(), DispatchDevice::Cube(_))
            && options.stride == [1; 3]
            && options.dilation == [1; 3]
            && options.groups == 1
            && !options.is_asymmetric()
    }

    pub fn conv3d(x: Tensor<5>, weight: Tensor<5>, bias: Tensor<1>, options: ConvOptions<3>) -> Tensor<5> {
        let [b, cin, d, h, w] = x.dims();
        let [cout, _, kd, kh, kw] = weight.dims();
        let [pd, ph, pw] = options.padding_begin();
        let y = super::extension_conv3d(x.clone(), weight.clone().detach(), bias, options.clone());
        let (od, oh, ow) = (d + 2 * pd + 1 - kd, h + 2 * ph + 1 - kh, w + 2 * pw + 1 - kw);
        let planes = (SLAB_VOXELS / (oh * ow).max(1)).max(1);
        // Zero planes in place of the depth padding, so every slab is a
        // convolution without depth padding.
        let device = x.device();
        let x = x.detach();
        let x = if pd > 0 {
            let zeros = Tensor::<5>::zeros([b, cin, pd, h, w], &device);
            Tensor::cat(vec![zeros.clone(), x, zeros], 2)
        } else {
            x
        };
        let slab_options = ConvOptions::new_with_padding([1; 3], [(0, 0), (ph, ph), (pw, pw)], [1; 3], 1);
        let no_bias = Tensor::<1>::zeros([cout], &device);
        let images: Vec<Tensor<5>> = (0..b)
            .map(|i| {
                let slabs: Vec<Tensor<5>> = (0..od)
                    .step_by(planes)
                    .map(|o0| {
                        let o1 = (o0 + planes).min(od);
                        let xs = x.clone().slice([i..i + 1, 0..cin, o0..o1 + kd - 1, 0..h, 0..w]);
                        super::extension_conv3d(xs, weight.clone(), no_bias.clone(), slab_options.clone())
                    })
                    .collect();
                Tensor::cat(slabs, 2)
            })
            .collect();
        let slabs = Tensor::cat(images, 0);
        y + (slabs.clone() - slabs.detach())
    }
}

#[cfg(feature = "tch")]
mod torch {
    //! The LibTorch path: each convolution one recorded LibTorch graph.
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::tensor::FloatTensor;
    #[allow(deprecated)] // burn-tch: one backend among several, dropped with its feature
    use burn::backend::{Autodiff, LibTorch};
    use burn::tensor::ops::ConvOptions;

    #[allow(deprecated)]
    pub(super) fn conv3d<C: CheckpointStrategy>(
        x: FloatTensor<Autodiff<LibTorch, C>>,
        weight: FloatTensor<Autodiff<LibTorch, C>>,
        bias: FloatTensor<Autodiff<LibTorch, C>>,
        options: ConvOptions<3>,
    ) -> FloatTensor<Autodiff<LibTorch, C>> {
        assert!(!options.is_asymmetric(), "LibTorch's conv3d takes symmetric padding");
        crate::torch_graph::record::<C, 3>([x, weight, bias], [false; 3], |[x, w, b]| {
            tch::Tensor::conv3d(
                x,
                w,
                Some(b),
                options.stride.map(|i| i as i64),
                options.padding_begin().map(|i| i as i64),
                options.dilation.map(|i| i as i64),
                options.groups as i64,
            )
        })
    }
}
