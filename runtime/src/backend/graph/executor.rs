//! Runs a [`Graph`] on a [`Kernels`] set: weights prepared once, and for the
//! current input shape a program (plan, buffers, recorded steps) built on
//! first use and kept until the shape changes.

use super::kernels::{Kernels, TensorRef};
use super::ops::Op;
use super::parse::Graph;
use super::plan::{Plan, StepKind};

struct Program<K: Kernels> {
    input: [usize; 4],
    plan: Plan,
    buffers: Vec<K::Buffer>,
    /// One per plan step (the last is the argmax).
    steps: Vec<K::Step>,
}

/// A graph on a kernel set.
pub struct Executor<K: Kernels> {
    graph: Graph,
    kernels: K,
    /// Prepared weights per graph node (convolutions only).
    weights: Vec<Option<K::Weights>>,
    program: Option<Program<K>>,
}

impl<K: Kernels> Executor<K> {
    /// Prepare the weights of every convolution of `graph`.
    pub fn new(graph: Graph, kernels: K) -> Result<Self, String> {
        let weights = graph
            .nodes
            .iter()
            .map(|n| {
                match &n.op {
                    Op::Conv(c) => kernels.conv_weights(c).map(Some),
                    Op::ConvTranspose(t) => kernels.conv_transpose_weights(t).map(Some),
                    _ => Ok(None),
                }
                .map_err(|e| format!("{}: {e}", n.label))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Executor {
            graph,
            kernels,
            weights,
            program: None,
        })
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    pub fn kernels(&self) -> &K {
        &self.kernels
    }

    /// The plan and recorded steps for an input of `[d, h, w, c]`
    /// (building them on first use).
    pub fn program(&mut self, input: [usize; 4]) -> Result<(&Plan, &[K::Step]), String> {
        let p = self.current(input)?;
        Ok((&p.plan, &p.steps))
    }

    fn current(&mut self, input: [usize; 4]) -> Result<&Program<K>, String> {
        if self.program.as_ref().is_none_or(|p| p.input != input) {
            // Free the old buffers before allocating new ones.
            self.program = None;
            self.program = Some(self.build(input)?);
        }
        Ok(self.program.as_ref().expect("just built"))
    }

    fn build(&self, input: [usize; 4]) -> Result<Program<K>, String> {
        let plan = Plan::new(&self.graph, input)?;
        let buffers = plan
            .slots
            .iter()
            .map(|&b| self.kernels.buffer(b))
            .collect::<Result<Vec<_>, String>>()?;
        let k = &self.kernels;
        let steps = plan
            .steps
            .iter()
            .map(|s| {
                let at = |t: usize| TensorRef {
                    buffer: &buffers[plan.tensors[t].slot],
                    dims: plan.tensors[t].dims,
                };
                let (x, y) = (at(s.input), at(s.output));
                let weights = |node: usize| self.weights[node].as_ref().expect("convolutions have weights");
                match s.kind {
                    StepKind::Conv { node, pads, relu } => k.conv(x, weights(node), y, pads, relu),
                    StepKind::ConvTranspose { node, kernel } => k.conv_transpose(x, weights(node), y, kernel),
                    StepKind::MaxPool(p) => k.max_pool(x, y, p),
                    StepKind::Resize { scale } => k.resize_nearest(x, y, scale),
                    StepKind::Relu => k.relu(x, y),
                    StepKind::Copy { start, channel } => k.copy(x, start, y, channel),
                    StepKind::Softmax => k.softmax(x, y),
                    StepKind::Argmax => k.argmax(x, y),
                }
                .map_err(|e| format!("{}: {e}", s.label))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Program {
            input,
            plan,
            buffers,
            steps,
        })
    }

    fn execute(&mut self, input: [usize; 4], data: &[f32], labels: bool) -> Result<(Vec<u32>, [usize; 4]), String> {
        let want: usize = input.iter().product();
        if data.len() != want {
            return Err(format!("{} input values for a {input:?} tensor", data.len()));
        }
        self.current(input)?;
        let p = self.program.as_ref().expect("just built");
        let at = |t: usize| TensorRef {
            buffer: &p.buffers[p.plan.tensors[t].slot],
            dims: p.plan.tensors[t].dims,
        };
        let n = if labels { p.steps.len() } else { p.steps.len() - 1 };
        let steps: Vec<&K::Step> = p.steps[..n].iter().collect();
        let read = if labels { p.plan.labels } else { p.plan.output };
        let words = self.kernels.execute(at(p.plan.input), data, &steps, at(read))?;
        Ok((words, p.plan.tensors[read].dims))
    }

    /// Run on channels-last input `data` of shape `input`; returns the
    /// output values (channels last) and their shape.
    pub fn run(&mut self, input: [usize; 4], data: &[f32]) -> Result<(Vec<f32>, [usize; 4]), String> {
        let (words, dims) = self.execute(input, data, false)?;
        Ok((words.into_iter().map(f32::from_bits).collect(), dims))
    }

    /// Run and return the argmax over the output's channels per voxel, with
    /// the output's `[d, h, w]`.
    pub fn run_labels(&mut self, input: [usize; 4], data: &[f32]) -> Result<(Vec<u32>, [usize; 3]), String> {
        let (words, dims) = self.execute(input, data, true)?;
        Ok((words, [dims[0], dims[1], dims[2]]))
    }
}
