//! The U-Net's forward pass on LibTorch as one recorded graph.
//!
//! A training step on LibTorch's CUDA devices is bound by kernel launches
//! (BENCHMARKS.md: burn issued 683 a step on the default spec against
//! PyTorch's 133). burn composes the U-Net's pooling, upsampling, ReLU and
//! batch normalisation from several tensor operations each, and
//! differentiates each with its own backward kernels; here, on LibTorch,
//! the whole forward pass is written in LibTorch's own operations and
//! recorded as one graph ([`crate::torch_graph`]), so the network's forward
//! and backward launch what PyTorch's do. The parameters enter as two joined
//! vectors, those that train and those that are frozen (one concatenation
//! each; its backward is views), cut back into the layers' tensors as views:
//! LibTorch's backward stops where the frozen layers begin, as PyTorch's
//! does for parameters that do not require gradients.
//!
//! It computes what [`UNet::forward_logits`](crate::unet::UNet::forward_logits)
//! computes on every other backend (`tests/backends.rs` compares outputs,
//! gradients and Adam steps with Flex): convolutions with the spec's padding,
//! batch normalisation, ReLU, 2x2x2 max-pooling, nearest or transposed 2x
//! upsampling, centre-cropped skips. Batch normalisation follows burn's
//! `BatchNorm`: a layer that trains normalises by the batch's statistics and
//! moves its running statistics towards them (the biased variance, as burn
//! keeps it); a frozen layer, and every layer without autodiff, normalises by
//! its running statistics.

#![allow(deprecated)] // burn-tch: one backend among several, dropped with its feature

use std::sync::{Arc, Mutex};

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::libtorch::TchTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, AutodiffBackend, Backend, Dispatch, DispatchDevice, LibTorch};
use burn::module::{Param, RunningState};
use burn::nn::conv::{Conv3d, ConvTranspose3d};
use burn::nn::{BatchNorm, PaddingConfig3d};
use burn::prelude::*;

use crate::unet::UNet;

/// What the graph needs besides its tensors: the network's shape, the
/// shape of each parameter and whether it trains, in the graph's order (per encoder level
/// conv0 and conv1, each weight, bias and with normalisation gamma, beta;
/// per decoder level from the deepest the transposed convolution if any,
/// conv0, conv1; the head), and its batch normalisation.
#[derive(Clone, Debug)]
pub struct GraphPlan {
    pub levels: usize,
    /// Padding of the 3x3x3 convolutions (1 for `same`, 0 for `valid`).
    pub padding: i64,
    pub transposed: bool,
    /// Per parameter: whether it is in the joined vector that trains, and
    /// its shape.
    pub shapes: Vec<(bool, Vec<i64>)>,
    pub norm: Option<NormPlan>,
}

/// Batch normalisation after every 3x3x3 convolution, in forward order. The
/// running statistics enter as one vector: every layer's mean, then every
/// layer's variance.
#[derive(Clone, Debug)]
pub struct NormPlan {
    pub channels: Vec<i64>,
    /// Per layer: normalise by the batch's statistics and update the
    /// running ones (a layer that trains, with autodiff).
    pub batch_stats: Vec<bool>,
    pub momentum: f64,
    pub epsilon: f64,
    /// The updated running statistics, left by the forward pass for
    /// [`UNetGraph::unet_graph_running`].
    pub running_out: RunningSlot,
}

/// Where one forward pass leaves the running statistics it computed.
#[derive(Clone, Default)]
pub struct RunningSlot(Arc<Mutex<Option<tch::Tensor>>>);

impl std::fmt::Debug for RunningSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunningSlot")
    }
}

impl RunningSlot {
    fn put(&self, t: tch::Tensor) {
        *self.0.lock().expect("running slot") = Some(t);
    }

    fn take(&self) -> tch::Tensor {
        self.0
            .lock()
            .expect("running slot")
            .take()
            .expect("the forward pass left its running statistics")
    }
}

/// The U-Net's forward pass as one operation (LibTorch only).
#[backend_extension(LibTorch, Autodiff)]
pub trait UNetGraph: Backend {
    /// Class scores for `x` with the joined parameters that train and those
    /// that are `frozen`, and the joined `running` statistics (each a
    /// placeholder when empty).
    fn unet_graph(
        x: FloatTensor<Self>,
        params: FloatTensor<Self>,
        frozen: FloatTensor<Self>,
        running: FloatTensor<Self>,
        plan: GraphPlan,
    ) -> FloatTensor<Self>;

    /// The running statistics the last `unet_graph` call with this `plan`
    /// computed (no gradient; `like` names the backend).
    fn unet_graph_running(like: FloatTensor<Self>, plan: GraphPlan) -> FloatTensor<Self>;
}

fn running_of(plan: &GraphPlan) -> tch::Tensor {
    plan.norm.as_ref().expect("a normalised plan").running_out.take()
}

impl UNetGraph for LibTorch {
    fn unet_graph(
        x: FloatTensor<Self>,
        params: FloatTensor<Self>,
        frozen: FloatTensor<Self>,
        running: FloatTensor<Self>,
        plan: GraphPlan,
    ) -> FloatTensor<Self> {
        TchTensor::new(tch::no_grad(|| {
            forward(&x.tensor, [&params.tensor, &frozen.tensor], &running.tensor, &plan)
        }))
    }

    fn unet_graph_running(_: FloatTensor<Self>, plan: GraphPlan) -> FloatTensor<Self> {
        TchTensor::new(running_of(&plan))
    }
}

impl<C: CheckpointStrategy> UNetGraph for Autodiff<LibTorch, C> {
    fn unet_graph(
        x: FloatTensor<Self>,
        params: FloatTensor<Self>,
        frozen: FloatTensor<Self>,
        running: FloatTensor<Self>,
        plan: GraphPlan,
    ) -> FloatTensor<Self> {
        crate::torch_graph::record::<C, 4>(
            [x, params, frozen, running],
            [false, false, true, true],
            |[x, p, f, r]| forward(x, [p, f], r, &plan),
        )
    }

    fn unet_graph_running(_: FloatTensor<Self>, plan: GraphPlan) -> FloatTensor<Self> {
        Self::from_inner(TchTensor::new(running_of(&plan)))
    }
}

/// The class scores of `model` for `x` through the graph, when `x` is on a
/// LibTorch device; `None` otherwise (burn's operations then compute them).
/// Moves the running statistics of the batch-normalisation layers that
/// train, as burn's `BatchNorm` does.
pub fn forward_logits(model: &UNet, x: &Tensor<5>) -> Option<Tensor<5>> {
    let device = x.device();
    if !matches!(device.as_dispatch().clone().inner(), DispatchDevice::LibTorch(_)) {
        return None;
    }
    let padding = match model.enc[0].conv0.padding {
        PaddingConfig3d::Same => 1,
        PaddingConfig3d::Valid => 0,
        PaddingConfig3d::Explicit(..) => return None,
    };
    let layers = layers(model);
    let norms: Vec<&BatchNorm> = layers
        .iter()
        .filter_map(|l| match l {
            Layer::Conv(_, n) => *n,
            Layer::Up(_) => None,
        })
        .collect();
    let convs = layers.iter().filter(|l| matches!(l, Layer::Conv(..))).count();
    if !norms.is_empty() && norms.len() != convs {
        return None; // normalisation after some convolutions only: burn's path
    }
    let mut joined = Joined::default();
    // Every layer of the U-Net has a bias; one without gets zeros.
    let bias =
        |b: Option<&Param<Tensor<1>>>, n: usize| b.map(|b| b.val()).unwrap_or_else(|| Tensor::zeros([n], &device));
    for layer in &layers {
        match layer {
            Layer::Conv(c, n) => {
                joined.push(c.weight.val());
                joined.push(bias(c.bias.as_ref(), c.weight.dims()[0]));
                if let Some(n) = n {
                    joined.push(n.gamma.val());
                    joined.push(n.beta.val());
                }
            }
            Layer::Up(u) => {
                joined.push(u.weight.val());
                joined.push(bias(u.bias.as_ref(), u.weight.dims()[1]));
            }
        }
    }
    joined.push(model.head.weight.val());
    joined.push(bias(model.head.bias.as_ref(), model.head.weight.dims()[0]));
    // Per normalisation layer: whether it normalises by the batch's
    // statistics (as burn's `BatchNorm` decides).
    let autodiff = device.is_autodiff();
    let trains: Vec<bool> = norms.iter().map(|n| autodiff && n.training.is_enabled()).collect();
    let running = if norms.is_empty() {
        Tensor::<1>::zeros([1], &device)
    } else {
        // As burn's `BatchNorm` reads them: synchronised where the layer
        // trains, as they stand where it normalises by them.
        let value = |s: &RunningState<Tensor<1>>, t: bool| if t { s.value_sync() } else { s.value() };
        let mut stats: Vec<Tensor<1>> = norms
            .iter()
            .zip(&trains)
            .map(|(n, &t)| value(&n.running_mean, t))
            .collect();
        stats.extend(norms.iter().zip(&trains).map(|(n, &t)| value(&n.running_var, t)));
        Tensor::cat(stats, 0)
    };
    let norm = (!norms.is_empty()).then(|| NormPlan {
        channels: norms.iter().map(|n| n.gamma.dims()[0] as i64).collect(),
        batch_stats: trains,
        momentum: norms[0].momentum,
        epsilon: norms[0].epsilon,
        running_out: RunningSlot::default(),
    });
    let plan = GraphPlan {
        levels: model.enc.len(),
        padding,
        transposed: model.dec.iter().any(|b| b.up.is_some()),
        shapes: joined.shapes,
        norm,
    };
    let scores = Tensor::from_dispatch(<Dispatch as UNetGraph>::unet_graph(
        x.clone().into_dispatch(),
        joined_or_placeholder(joined.trained, &device).into_dispatch(),
        joined_or_placeholder(joined.frozen, &device).into_dispatch(),
        running.into_dispatch(),
        plan.clone(),
    ));
    if let Some(np) = &plan.norm {
        if np.batch_stats.iter().any(|&b| b) {
            move_running_statistics(&norms, &plan, &scores);
        }
    }
    Some(scores)
}

/// The 3x3x3 convolutions with their normalisations, and the transposed
/// convolutions (the head last, apart), in the graph's order.
enum Layer<'a> {
    Conv(&'a Conv3d, Option<&'a BatchNorm>),
    Up(&'a ConvTranspose3d),
}

fn layers(model: &UNet) -> Vec<Layer<'_>> {
    let mut layers = Vec::new();
    for block in &model.enc {
        layers.push(Layer::Conv(&block.conv0, block.norm0.as_ref()));
        layers.push(Layer::Conv(&block.conv1, block.norm1.as_ref()));
    }
    for block in model.dec.iter().rev() {
        if let Some(up) = &block.up {
            layers.push(Layer::Up(up));
        }
        layers.push(Layer::Conv(&block.conv0, block.norm0.as_ref()));
        layers.push(Layer::Conv(&block.conv1, block.norm1.as_ref()));
    }
    layers
}

/// The running statistics the graph computed (`scores` names the backend),
/// into the normalisation layers that train.
fn move_running_statistics(norms: &[&BatchNorm], plan: &GraphPlan, scores: &Tensor<5>) {
    let np = plan.norm.as_ref().expect("a normalised plan");
    let updated: Tensor<1> = Tensor::from_dispatch(<Dispatch as UNetGraph>::unet_graph_running(
        scores.clone().into_dispatch(),
        plan.clone(),
    ));
    let total: usize = np.channels.iter().map(|&c| c as usize).sum();
    let mut offset = 0;
    for ((n, &c), &trains) in norms.iter().zip(&np.channels).zip(&np.batch_stats) {
        let c = c as usize;
        if trains {
            n.running_mean.update(updated.clone().narrow(0, offset, c));
            n.running_var.update(updated.clone().narrow(0, total + offset, c));
        }
        offset += c;
    }
}

/// Parameters flattened for joining, those that train apart from the
/// frozen, with their shapes.
#[derive(Default)]
struct Joined {
    trained: Vec<Tensor<1>>,
    frozen: Vec<Tensor<1>>,
    shapes: Vec<(bool, Vec<i64>)>,
}

impl Joined {
    fn push<const D: usize>(&mut self, t: Tensor<D>) {
        let trains = t.is_require_grad();
        self.shapes.push((trains, t.dims().iter().map(|&d| d as i64).collect()));
        let flat = t.reshape([-1]);
        if trains {
            self.trained.push(flat);
        } else {
            self.frozen.push(flat);
        }
    }
}

/// `parts` joined, or one zero when there are none.
fn joined_or_placeholder(parts: Vec<Tensor<1>>, device: &Device) -> Tensor<1> {
    if parts.is_empty() {
        Tensor::zeros([1], device)
    } else {
        Tensor::cat(parts, 0)
    }
}

/// The joined parameters (those that train, the frozen), cut into the
/// layers' tensors in order.
struct Cursor<'a> {
    params: [&'a tch::Tensor; 2],
    shapes: std::slice::Iter<'a, (bool, Vec<i64>)>,
    offsets: [i64; 2],
}

impl Cursor<'_> {
    fn next(&mut self) -> tch::Tensor {
        let (trains, shape) = self.shapes.next().expect("a shape for every parameter");
        let which = if *trains { 0 } else { 1 };
        let n: i64 = shape.iter().product();
        let t = self.params[which]
            .narrow(0, self.offsets[which], n)
            .view(shape.as_slice());
        self.offsets[which] += n;
        t
    }
}

/// The forward pass in LibTorch operations.
fn forward(x: &tch::Tensor, params: [&tch::Tensor; 2], running: &tch::Tensor, plan: &GraphPlan) -> tch::Tensor {
    let mut layers = Cursor {
        params,
        shapes: plan.shapes.iter(),
        offsets: [0, 0],
    };
    let p = plan.padding;
    // Per normalisation layer: its running statistics (views of `running`),
    // and the batch's mean and inverse standard deviation where it trains.
    let total: i64 = plan.norm.as_ref().map_or(0, |n| n.channels.iter().sum());
    let mut norm_index = 0;
    let mut norm_offset = 0;
    let mut batch_stats: Vec<Option<(tch::Tensor, tch::Tensor)>> = Vec::new();
    let mut conv_norm_relu = |x: &tch::Tensor, layers: &mut Cursor| {
        let (w, b) = (layers.next(), layers.next());
        let y = x.conv3d(&w, Some(&b), [1, 1, 1], [p; 3], [1, 1, 1], 1);
        let y = match &plan.norm {
            None => y,
            Some(n) => {
                let (gamma, beta) = (layers.next(), layers.next());
                let c = n.channels[norm_index];
                let y = if n.batch_stats[norm_index] {
                    let (y, mean, invstd) = y.native_batch_norm(
                        Some(&gamma),
                        Some(&beta),
                        None::<&tch::Tensor>,
                        None::<&tch::Tensor>,
                        true,
                        n.momentum,
                        n.epsilon,
                    );
                    batch_stats.push(Some((mean, invstd)));
                    y
                } else {
                    let mean = running.narrow(0, norm_offset, c);
                    let var = running.narrow(0, total + norm_offset, c);
                    batch_stats.push(None);
                    y.batch_norm(
                        Some(&gamma),
                        Some(&beta),
                        Some(&mean),
                        Some(&var),
                        false,
                        n.momentum,
                        n.epsilon,
                        true,
                    )
                };
                norm_index += 1;
                norm_offset += c;
                y
            }
        };
        y.relu()
    };
    let mut x = x.shallow_clone();
    let mut skips = Vec::new();
    for l in 0..plan.levels {
        x = conv_norm_relu(&x, &mut layers);
        x = conv_norm_relu(&x, &mut layers);
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
        x = conv_norm_relu(&x, &mut layers);
        x = conv_norm_relu(&x, &mut layers);
    }
    drop(conv_norm_relu);
    let (w, b) = (layers.next(), layers.next());
    let scores = x.conv3d(&w, Some(&b), [1, 1, 1], [0, 0, 0], [1, 1, 1], 1);
    if let Some(n) = &plan.norm {
        if batch_stats.iter().any(Option::is_some) {
            n.running_out
                .put(tch::no_grad(|| updated_running(running, &batch_stats, n)));
        }
    }
    scores
}

/// `running` moved towards the batch statistics of the layers that have
/// them (burn's update: `(1 − momentum)·running + momentum·batch`, with the
/// biased variance, recovered from the inverse standard deviation); the
/// other layers' entries are not read back.
fn updated_running(
    running: &tch::Tensor,
    batch_stats: &[Option<(tch::Tensor, tch::Tensor)>],
    n: &NormPlan,
) -> tch::Tensor {
    let total: i64 = n.channels.iter().sum();
    let invstd: Vec<&tch::Tensor> = batch_stats.iter().flatten().map(|(_, s)| s).collect();
    let var = tch::Tensor::cat(&invstd, 0).pow_tensor_scalar(-2) - n.epsilon;
    let (mut means, mut vars) = (Vec::new(), Vec::new());
    let (mut offset, mut var_offset) = (0, 0);
    for (stats, &c) in batch_stats.iter().zip(&n.channels) {
        match stats {
            Some((mean, _)) => {
                means.push(mean.shallow_clone());
                vars.push(var.narrow(0, var_offset, c));
                var_offset += c;
            }
            None => {
                means.push(running.narrow(0, offset, c));
                vars.push(running.narrow(0, total + offset, c));
            }
        }
        offset += c;
    }
    means.extend(vars);
    let batch = tch::Tensor::cat(&means, 0);
    running * (1.0 - n.momentum) + batch * n.momentum
}
