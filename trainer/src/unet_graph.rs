//! The U-Net's forward pass on LibTorch as one recorded graph.
//!
//! A training step on LibTorch's CUDA devices is bound by kernel launches
//! (BENCHMARKS.md: burn issued 683 a step on the default spec against
//! PyTorch's 133). burn composes the U-Net's pooling, upsampling and ReLU
//! from several tensor operations each, and differentiates each with its own
//! backward kernels; here, on LibTorch and for specs without batch
//! normalisation, the whole forward pass is written in LibTorch's own
//! operations and recorded as one graph ([`crate::torch_graph`]), so the
//! network's forward and backward launch what PyTorch's do. The parameters
//! enter as one joined vector (one concatenation; its backward is views), cut
//! back into the layers' tensors as views.
//!
//! It computes what [`UNet::forward_logits`](crate::unet::UNet::forward_logits)
//! computes on every other backend (`tests/backends.rs` compares outputs and
//! gradients with Flex): convolutions with the spec's padding, ReLU, 2x2x2
//! max-pooling, nearest or transposed 2x upsampling, centre-cropped skips.

#![allow(deprecated)] // burn-tch: one backend among several, dropped with its feature

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::libtorch::TchTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, DispatchDevice, LibTorch};
use burn::nn::conv::Conv3d;
use burn::nn::PaddingConfig3d;
use burn::prelude::*;

use crate::unet::UNet;

/// What the graph needs besides its tensors: the network's shape, and the
/// shape of each parameter in the joined vector's order (per encoder level
/// conv0 and conv1, weight then bias; per decoder level from the deepest the
/// transposed convolution if any, conv0, conv1; the head).
#[derive(Clone, Debug)]
pub struct GraphPlan {
    pub levels: usize,
    /// Padding of the 3x3x3 convolutions (1 for `same`, 0 for `valid`).
    pub padding: i64,
    pub transposed: bool,
    pub shapes: Vec<Vec<i64>>,
}

/// The U-Net's forward pass as one operation (LibTorch only).
#[backend_extension(LibTorch, Autodiff)]
pub trait UNetGraph: Backend {
    fn unet_graph(x: FloatTensor<Self>, params: FloatTensor<Self>, plan: GraphPlan) -> FloatTensor<Self>;
}

impl UNetGraph for LibTorch {
    fn unet_graph(x: FloatTensor<Self>, params: FloatTensor<Self>, plan: GraphPlan) -> FloatTensor<Self> {
        TchTensor::new(tch::no_grad(|| forward(&x.tensor, &params.tensor, &plan)))
    }
}

impl<C: CheckpointStrategy> UNetGraph for Autodiff<LibTorch, C> {
    fn unet_graph(x: FloatTensor<Self>, params: FloatTensor<Self>, plan: GraphPlan) -> FloatTensor<Self> {
        crate::torch_graph::record::<C, 2>([x, params], |[x, p]| forward(x, p, &plan))
    }
}

/// The class scores of `model` for `x` through the graph, when `x` is on a
/// LibTorch device and the network has no batch normalisation; `None`
/// otherwise (burn's operations then compute them).
pub fn forward_logits(model: &UNet, x: &Tensor<5>) -> Option<Tensor<5>> {
    if !matches!(x.device().as_dispatch().clone().inner(), DispatchDevice::LibTorch(_)) {
        return None;
    }
    let blocks_have_norm = model.enc.iter().any(|b| b.norm0.is_some() || b.norm1.is_some())
        || model.dec.iter().any(|b| b.norm0.is_some() || b.norm1.is_some());
    if blocks_have_norm {
        return None;
    }
    let padding = match model.enc[0].conv0.padding {
        PaddingConfig3d::Same => 1,
        PaddingConfig3d::Valid => 0,
        PaddingConfig3d::Explicit(..) => return None,
    };
    // Weight and bias of every layer, in the graph's order.
    let conv = |c: &Conv3d| (c.weight.val(), c.bias.as_ref().map(|b| b.val()));
    let mut layers = Vec::new();
    for block in &model.enc {
        layers.extend([conv(&block.conv0), conv(&block.conv1)]);
    }
    let mut transposed = false;
    for block in model.dec.iter().rev() {
        if let Some(up) = &block.up {
            transposed = true;
            layers.push((up.weight.val(), up.bias.as_ref().map(|b| b.val())));
        }
        layers.extend([conv(&block.conv0), conv(&block.conv1)]);
    }
    layers.push(conv(&model.head));
    let mut params: Vec<Tensor<1>> = Vec::new();
    let mut shapes: Vec<Vec<i64>> = Vec::new();
    for (weight, bias) in layers {
        let dims = weight.dims();
        // Every layer of the U-Net has a bias; one without gets zeros.
        let bias = bias.unwrap_or_else(|| Tensor::zeros([dims[0]], &weight.device()));
        shapes.push(dims.iter().map(|&d| d as i64).collect());
        shapes.push(vec![bias.dims()[0] as i64]);
        params.push(weight.reshape([-1]));
        params.push(bias);
    }
    let plan = GraphPlan {
        levels: model.enc.len(),
        padding,
        transposed,
        shapes,
    };
    let joined = Tensor::cat(params, 0);
    Some(Tensor::from_dispatch(<Dispatch as UNetGraph>::unet_graph(
        x.clone().into_dispatch(),
        joined.into_dispatch(),
        plan,
    )))
}

/// The joined parameters, cut into the layers' tensors in order.
struct Cursor<'a> {
    params: &'a tch::Tensor,
    shapes: std::slice::Iter<'a, Vec<i64>>,
    offset: i64,
}

impl Cursor<'_> {
    fn next(&mut self) -> tch::Tensor {
        let shape = self.shapes.next().expect("a shape for every parameter");
        let n: i64 = shape.iter().product();
        let t = self.params.narrow(0, self.offset, n).view(shape.as_slice());
        self.offset += n;
        t
    }

    /// The next layer as a convolution with `padding`.
    fn conv(&mut self, x: &tch::Tensor, padding: i64) -> tch::Tensor {
        let (w, b) = (self.next(), self.next());
        x.conv3d(&w, Some(&b), [1, 1, 1], [padding; 3], [1, 1, 1], 1)
    }
}

/// The forward pass in LibTorch operations.
fn forward(x: &tch::Tensor, params: &tch::Tensor, plan: &GraphPlan) -> tch::Tensor {
    let mut layers = Cursor {
        params,
        shapes: plan.shapes.iter(),
        offset: 0,
    };
    let p = plan.padding;
    let mut x = x.shallow_clone();
    let mut skips = Vec::new();
    for l in 0..plan.levels {
        x = layers.conv(&x, p).relu();
        x = layers.conv(&x, p).relu();
        if l + 1 < plan.levels {
            skips.push(x.shallow_clone());
            x = x.max_pool3d([2, 2, 2], [2, 2, 2], [0, 0, 0], [1, 1, 1], false);
        }
    }
    while let Some(skip) = skips.pop() {
        let size = x.size();
        let up = if plan.transposed {
            let (w, b) = (layers.next(), layers.next());
            x.conv_transpose3d(&w, Some(&b), [2, 2, 2], [0, 0, 0], [0, 0, 0], 1, [1, 1, 1])
        } else {
            x.upsample_nearest3d([2 * size[2], 2 * size[3], 2 * size[4]], None, None, None)
        };
        let (u, s) = (up.size(), skip.size());
        let skip = skip
            .narrow(2, (s[2] - u[2]) / 2, u[2])
            .narrow(3, (s[3] - u[3]) / 2, u[3])
            .narrow(4, (s[4] - u[4]) / 2, u[4]);
        x = tch::Tensor::cat(&[up, skip], 1);
        x = layers.conv(&x, p).relu();
        x = layers.conv(&x, p).relu();
    }
    layers.conv(&x, 0)
}
