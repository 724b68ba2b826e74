//! A LibTorch autograd graph as one operation of burn's autodiff.
//!
//! On `Autodiff<LibTorch>`, [`record`] runs a computation on LibTorch
//! tensors with LibTorch's autograd recording it, and hands burn the result
//! as the output of one operation whose parents are the inputs. burn's
//! backward pass reaches that operation with the output's gradient `g`, and
//! the operation runs LibTorch's backward through the recorded graph: the
//! gradient of `⟨y, g⟩` with respect to each input burn asks for is the
//! vector-Jacobian product it needs, computed by the same native kernels
//! PyTorch's backward uses, with nothing of burn's between them. The U-Net
//! records its whole forward pass this way ([`crate::unet_graph`]), and
//! each convolution where a pass looks inside the network ([`crate::conv`]).

#![allow(deprecated)] // burn-tch: one backend among several, dropped with its feature

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::libtorch::TchTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, LibTorch};

type Ad<C> = Autodiff<LibTorch, C>;

/// What the backward pass needs: the output with its LibTorch graph, the
/// graph's leaves (one per input, in the order of the operation's parents),
/// and burn's handles on the inputs, held so burn-tch does not overwrite
/// their storage in place while LibTorch's graph still reads it.
#[derive(Clone)]
pub struct Graph {
    output: TchTensor,
    leaves: Vec<TchTensor>,
    _held: Vec<TchTensor>,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LibTorch graph ({} leaves)", self.leaves.len())
    }
}

#[derive(Debug)]
struct GraphBackward;

impl<const N: usize> Backward<LibTorch, N> for GraphBackward {
    type State = Graph;

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad: TchTensor = grads.consume::<LibTorch>(&ops.node);
        let g = ops.state;
        let wanted: Vec<usize> = (0..N).filter(|&i| ops.parents[i].is_some()).collect();
        if wanted.is_empty() {
            return;
        }
        if let Some(&i) = wanted.iter().find(|&&i| !g.leaves[i].tensor.requires_grad()) {
            panic!("input {i} of a LibTorch graph was recorded as constant but burn tracks it");
        }
        // d⟨y, g⟩/d leaf is the vector-Jacobian product burn asks for; one
        // dot product rather than a product and a sum. LibTorch computes
        // only the leaves asked for.
        let objective = tch::with_grad(|| g.output.tensor.reshape([-1]).dot(&grad.tensor.reshape([-1])));
        let inputs: Vec<&tch::Tensor> = wanted.iter().map(|&i| &g.leaves[i].tensor).collect();
        let leaf_grads = tch::Tensor::run_backward(&[objective], &inputs, false, false);
        for (&i, lg) in wanted.iter().zip(leaf_grads) {
            // An input the computation never read has no gradient.
            if let (Some(parent), true) = (&ops.parents[i], lg.defined()) {
                grads.register::<LibTorch>(parent.id, TchTensor::new(lg));
            }
        }
    }
}

/// `f` over `inputs` as one differentiable operation: recorded by LibTorch's
/// autograd when burn tracks any input, run plainly when it tracks none.
/// `f` sees the inputs as LibTorch tensors, in order; those marked
/// `constant` are never differentiated (burn must not track them). LibTorch
/// computes the gradients of the tracked inputs only.
pub fn record<C: CheckpointStrategy, const N: usize>(
    inputs: [FloatTensor<Ad<C>>; N],
    constant: [bool; N],
    f: impl FnOnce(&[tch::Tensor; N]) -> tch::Tensor,
) -> FloatTensor<Ad<C>> {
    let nodes = inputs.each_ref().map(|t| t.node());
    let inner = inputs.map(Ad::<C>::inner);
    match GraphBackward.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let mut i = 0;
            let leaves = inner.each_ref().map(|t| {
                i += 1;
                t.tensor.detach().set_requires_grad(!constant[i - 1])
            });
            let y = tch::with_grad(|| f(&leaves));
            let out = TchTensor::new(y.detach());
            // The graph's output shares `out`'s storage (and its count of
            // holders, so burn-tch never overwrites it in place while the
            // graph may still read it).
            let graph = Graph {
                output: TchTensor::from_existing(y, out.storage.clone()),
                leaves: leaves.into_iter().map(TchTensor::new).collect(),
                _held: inner.into_iter().collect(),
            };
            prep.finish(graph, out)
        }
        OpsKind::UnTracked(prep) => {
            let plain = inner.each_ref().map(|t| t.tensor.shallow_clone());
            prep.finish(TchTensor::new(tch::no_grad(|| f(&plain))))
        }
    }
}
