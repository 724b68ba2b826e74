//! Execution plan for one input shape: the graph lowered to steps with one
//! input and one output each (a Concat becomes one copy per input, with any
//! fused Slice as the copy's offset), the tensors they read and write, and
//! the buffer slots those tensors live in. A slot is reused as soon as the
//! last step reading its tensor has run; a step never writes the slot it
//! reads. The plan ends with an argmax over the output's channels, run only
//! when labels are asked for.

use super::ops::{Op, Pool};
use super::parse::Graph;
use super::shape::infer_shapes;

/// Index of a tensor of a [`Plan`].
pub type TensorId = usize;

/// A tensor: `[d, h, w, c]`, channels last, 32-bit elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub dims: [usize; 4],
    pub slot: usize,
}

impl TensorInfo {
    pub fn elements(&self) -> usize {
        self.dims.iter().product()
    }

    pub fn bytes(&self) -> u64 {
        self.elements() as u64 * 4
    }
}

/// What a step computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepKind {
    /// The Conv of graph node `node` (weights prepared per node), with
    /// leading padding `pads` (z, y, x).
    Conv {
        node: usize,
        pads: [usize; 3],
        relu: bool,
    },
    ConvTranspose {
        node: usize,
        kernel: usize,
    },
    MaxPool(Pool),
    Resize {
        scale: [usize; 3],
    },
    Relu,
    /// Copy the input window starting at `start` (the output's spatial size)
    /// into the output's channels from `channel` on.
    Copy {
        start: [usize; 3],
        channel: usize,
    },
    Softmax,
    /// Index of the largest channel per voxel (u32 labels).
    Argmax,
}

/// One kernel call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub kind: StepKind,
    pub input: TensorId,
    pub output: TensorId,
    /// The node it comes from, for messages.
    pub label: String,
}

/// Steps, tensors and buffer slots for one input shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub tensors: Vec<TensorInfo>,
    /// Bytes of each buffer slot.
    pub slots: Vec<u64>,
    /// The graph's steps, then the argmax.
    pub steps: Vec<Step>,
    pub input: TensorId,
    pub output: TensorId,
    /// The argmax's output, `[d, h, w, 1]`.
    pub labels: TensorId,
}

impl Plan {
    /// Plan `graph` for an input of `input` = `[d, h, w, c]`.
    pub fn new(graph: &Graph, input: [usize; 4]) -> Result<Plan, String> {
        let shapes = infer_shapes(graph, input)?;
        let mut tensors = Vec::new();
        let mut tensor_of: Vec<Option<TensorId>> = vec![None; graph.names.len()];
        let add = |v: usize, dims: [usize; 4], tensors: &mut Vec<TensorInfo>, tensor_of: &mut [Option<TensorId>]| {
            tensors.push(TensorInfo {
                name: graph.names[v].clone(),
                dims,
                slot: usize::MAX,
            });
            tensor_of[v] = Some(tensors.len() - 1);
        };
        add(graph.input, input, &mut tensors, &mut tensor_of);
        let input_t = 0;
        let mut steps = Vec::new();
        for (index, node) in graph.nodes.iter().enumerate() {
            let out_dims = shapes[node.output].expect("every node output has a shape");
            let out = tensors.len();
            let ins: Vec<TensorId> = node
                .inputs
                .iter()
                .map(|&v| tensor_of[v].expect("node inputs are computed before use"))
                .collect();
            add(node.output, out_dims, &mut tensors, &mut tensor_of);
            let step = |kind: StepKind, input: TensorId| Step {
                kind,
                input,
                output: out,
                label: node.label.clone(),
            };
            match &node.op {
                Op::Concat { crops } => {
                    let mut channel = 0;
                    for (j, (&v, crop)) in node.inputs.iter().zip(crops).enumerate() {
                        let s = shapes[v].expect("shape");
                        let start = match crop {
                            Some(c) => c.resolve([s[0], s[1], s[2]])?.0,
                            None => [0; 3],
                        };
                        steps.push(step(StepKind::Copy { start, channel }, ins[j]));
                        channel += s[3];
                    }
                }
                op => {
                    let x = node.inputs[0];
                    let kind = match op {
                        Op::Conv(c) => StepKind::Conv {
                            node: index,
                            pads: [c.pads[0], c.pads[1], c.pads[2]],
                            relu: c.relu,
                        },
                        Op::ConvTranspose(t) => StepKind::ConvTranspose {
                            node: index,
                            kernel: t.kernel,
                        },
                        Op::MaxPool(p) => StepKind::MaxPool(*p),
                        Op::Resize { scale } => StepKind::Resize { scale: *scale },
                        Op::Relu => StepKind::Relu,
                        Op::Softmax => StepKind::Softmax,
                        Op::Slice(c) => {
                            let s = shapes[x].expect("shape");
                            StepKind::Copy {
                                start: c.resolve([s[0], s[1], s[2]])?.0,
                                channel: 0,
                            }
                        }
                        Op::Concat { .. } => unreachable!("handled above"),
                    };
                    steps.push(step(kind, ins[0]));
                }
            }
        }
        let output = tensor_of[graph.output].expect("the output is computed");
        let o = tensors[output].dims;
        let labels = tensors.len();
        tensors.push(TensorInfo {
            name: format!("{}.labels", tensors[output].name),
            dims: [o[0], o[1], o[2], 1],
            slot: usize::MAX,
        });
        steps.push(Step {
            kind: StepKind::Argmax,
            input: output,
            output: labels,
            label: "argmax".into(),
        });
        let slots = assign_slots(&mut tensors, &steps, input_t, &[output, labels]);
        Ok(Plan {
            tensors,
            slots,
            steps,
            input: input_t,
            output,
            labels,
        })
    }

    /// Bytes of all slots together.
    pub fn total_bytes(&self) -> u64 {
        self.slots.iter().sum()
    }
}

/// Give every tensor a slot, reusing the slots of tensors no later step
/// reads; `keep` stay live to the end. Returns the slot sizes.
fn assign_slots(tensors: &mut [TensorInfo], steps: &[Step], input: TensorId, keep: &[TensorId]) -> Vec<u64> {
    let n = tensors.len();
    let mut last = vec![0usize; n];
    for (i, s) in steps.iter().enumerate() {
        last[s.input] = last[s.input].max(i);
        last[s.output] = last[s.output].max(i);
    }
    for &k in keep {
        last[k] = steps.len();
    }
    let mut slots: Vec<u64> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let alloc = |t: &mut TensorInfo, slots: &mut Vec<u64>, free: &mut Vec<usize>| {
        let need = t.bytes();
        // Smallest free slot that fits, else the largest free one (grown),
        // else a new slot.
        let fit = free
            .iter()
            .enumerate()
            .filter(|(_, &s)| slots[s] >= need)
            .min_by_key(|(_, &s)| slots[s])
            .or_else(|| free.iter().enumerate().max_by_key(|(_, &s)| slots[s]))
            .map(|(i, _)| i);
        let slot = match fit {
            Some(i) => free.swap_remove(i),
            None => {
                slots.push(0);
                slots.len() - 1
            }
        };
        slots[slot] = slots[slot].max(need);
        t.slot = slot;
    };
    alloc(&mut tensors[input], &mut slots, &mut free);
    for (i, s) in steps.iter().enumerate() {
        if tensors[s.output].slot == usize::MAX {
            alloc(&mut tensors[s.output], &mut slots, &mut free);
        }
        for t in [s.input, s.output] {
            if last[t] == i && !free.contains(&tensors[t].slot) {
                free.push(tensors[t].slot);
            }
        }
    }
    slots
}
