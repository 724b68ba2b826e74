//! The CPU backend: tract runs the ONNX graph, with one optimised plan per
//! tile shape, built once and reused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ndarray::{Array3, Array4};
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;

use crate::scores::softmax_channels;

/// Set how many threads tract's matrix kernels use (process-wide). One
/// thread is tract's single-thread executor: a one-thread pool would make
/// tract fall back to rayon's global pool.
pub fn set_threads(n: usize) {
    use tract_linalg::multithread::{set_default_executor, Executor};
    set_default_executor(if n <= 1 {
        Executor::SingleThread
    } else {
        Executor::multithread(n)
    });
}

/// A model prepared for tract.
pub struct TractBackend {
    proto: ModelProto,
    plans: Mutex<HashMap<[usize; 3], Arc<TypedRunnableModel>>>,
    classes: usize,
    /// The graph's final Softmax was cut off and is applied by
    /// [`softmax_channels`] instead.
    softmax_after: bool,
}

impl TractBackend {
    pub fn new(proto: &ModelProto, classes: usize) -> TractBackend {
        let (proto, softmax_after) = match without_final_softmax(proto) {
            Some(cut) => (cut, true),
            None => (proto.clone(), false),
        };
        TractBackend {
            proto,
            plans: Mutex::new(HashMap::new()),
            classes,
            softmax_after,
        }
    }

    /// Whether the graph's final Softmax was cut off and is computed by
    /// [`softmax_channels`] after tract's run.
    pub fn computes_softmax(&self) -> bool {
        self.softmax_after
    }

    /// The optimised plan for a tile shape (built on first use).
    pub fn plan(&self, shape: [usize; 3]) -> Result<Arc<TypedRunnableModel>, String> {
        if let Some(p) = self.plans.lock().unwrap().get(&shape) {
            return Ok(p.clone());
        }
        let plan = tract_onnx::onnx()
            .model_for_proto_model(&self.proto)
            .and_then(|m| m.with_input_fact(0, f32::fact([1, 1, shape[0], shape[1], shape[2]]).into()))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| format!("tract cannot prepare the model for a {shape:?} tile: {e:#}"))?;
        self.plans.lock().unwrap().insert(shape, plan.clone());
        Ok(plan)
    }

    /// Run one tile: `[z, y, x]` → scores `[C, z', y', x']`.
    pub fn run(&self, input: &Array3<f32>) -> Result<Array4<f32>, String> {
        let (z, y, x) = input.dim();
        let plan = self.plan([z, y, x])?;
        let data = input.as_standard_layout().iter().copied().collect::<Vec<f32>>();
        let t = tract_ndarray::Array5::from_shape_vec((1, 1, z, y, x), data).map_err(|e| e.to_string())?;
        let out = plan
            .run(tvec!(Tensor::from(t).into()))
            .map_err(|e| format!("tract failed on a tile: {e:#}"))?;
        let view = out[0]
            .to_plain_array_view::<f32>()
            .map_err(|e| format!("unexpected output type: {e}"))?;
        let s = view.shape().to_vec();
        if s.len() != 5 || s[0] != 1 || s[1] != self.classes {
            return Err(format!(
                "the model returned shape {s:?}, expected [1, {}, d, h, w]",
                self.classes
            ));
        }
        let values: Vec<f32> = view.iter().copied().collect();
        let mut scores = Array4::from_shape_vec((s[1], s[2], s[3], s[4]), values).map_err(|e| e.to_string())?;
        if self.softmax_after {
            softmax_channels(&mut scores);
        }
        Ok(scores)
    }
}

/// The graph without its last node when that node is a per-voxel Softmax
/// over the class axis (axis 1 of the 5-D output, opset 13 or later)
/// producing the only output, so the graph ends at the logits. tract's
/// Softmax over a non-innermost axis walks the tensor voxel by voxel,
/// single-threaded, and took about half of a whole scan's time;
/// [`softmax_channels`] computes the same function plane by plane on all
/// threads.
fn without_final_softmax(proto: &ModelProto) -> Option<ModelProto> {
    // Before opset 13, Softmax(axis=1) normalises over C·D·H·W at once, not
    // per voxel; a model without a default-domain opset is left alone.
    let opset = proto
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")?
        .version;
    let graph = proto.graph.as_ref()?;
    let [output] = graph.output.as_slice() else {
        return None;
    };
    let last = graph.node.last()?;
    let default_domain = last.domain.is_empty() || last.domain == "ai.onnx";
    if opset < 13
        || !default_domain
        || last.op_type != "Softmax"
        || last.output.as_slice() != [output.name.clone()]
        || last.input.len() != 1
    {
        return None;
    }
    let axis = last.attribute.iter().find(|a| a.name == "axis").map(|a| a.i);
    let tract_onnx::pb::type_proto::Value::TensorType(t) = output.r#type.as_ref()?.value.as_ref()?;
    let rank = t.shape.as_ref()?.dim.len() as i64;
    // Without an axis attribute the default is the last axis: only cut when
    // the class axis is spelled out.
    if rank != 5 || !(axis == Some(1) || axis == Some(1 - rank)) {
        return None;
    }
    // A node that reads the probabilities (possible in a graph whose nodes
    // are not in order) would lose its input.
    if graph.node.iter().any(|n| n.input.contains(&output.name)) {
        return None;
    }
    let mut cut = proto.clone();
    let g = cut.graph.as_mut()?;
    g.node.pop();
    g.output[0].name = last.input[0].clone();
    Some(cut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};
    use tract_onnx::pb::{
        type_proto, AttributeProto, GraphProto, NodeProto, OperatorSetIdProto, TensorShapeProto, TypeProto,
        ValueInfoProto,
    };

    fn value(name: &str, rank: Option<usize>) -> ValueInfoProto {
        ValueInfoProto {
            name: name.into(),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: 1,
                    shape: rank.map(|r| TensorShapeProto {
                        dim: (0..r)
                            .map(|_| Dimension {
                                value: Some(dimension::Value::DimValue(2)),
                                ..Default::default()
                            })
                            .collect(),
                    }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Relu then Softmax, with the given opset, axis and output rank.
    fn graph(opset: Option<i64>, axis: Option<i64>, rank: Option<usize>) -> ModelProto {
        let relu = NodeProto {
            op_type: "Relu".into(),
            input: vec!["x".into()],
            output: vec!["logits".into()],
            ..Default::default()
        };
        let softmax = NodeProto {
            op_type: "Softmax".into(),
            input: vec!["logits".into()],
            output: vec!["probabilities".into()],
            attribute: axis
                .map(|i| AttributeProto {
                    name: "axis".into(),
                    r#type: 2,
                    i,
                    ..Default::default()
                })
                .into_iter()
                .collect(),
            ..Default::default()
        };
        ModelProto {
            opset_import: opset
                .map(|version| OperatorSetIdProto {
                    domain: String::new(),
                    version,
                })
                .into_iter()
                .collect(),
            graph: Some(GraphProto {
                node: vec![relu, softmax],
                input: vec![value("x", Some(5))],
                output: vec![value("probabilities", rank)],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_final_class_softmax_is_cut() {
        for axis in [1, -4] {
            let cut = without_final_softmax(&graph(Some(17), Some(axis), Some(5))).expect("cut");
            let g = cut.graph.unwrap();
            assert_eq!(g.node.len(), 1);
            assert_eq!(g.output[0].name, "logits");
        }
    }

    #[test]
    fn other_softmaxes_are_kept() {
        // Before opset 13 (or with no opset) Softmax normalises over C·D·H·W.
        assert!(without_final_softmax(&graph(Some(12), Some(1), Some(5))).is_none());
        assert!(without_final_softmax(&graph(None, Some(1), Some(5))).is_none());
        // The default axis is the last one.
        assert!(without_final_softmax(&graph(Some(17), None, Some(5))).is_none());
        assert!(without_final_softmax(&graph(Some(17), Some(4), Some(5))).is_none());
        // Not a 5-D output, or no declared shape.
        assert!(without_final_softmax(&graph(Some(17), Some(1), Some(4))).is_none());
        assert!(without_final_softmax(&graph(Some(17), Some(1), None)).is_none());
        // Two outputs.
        let mut two = graph(Some(17), Some(1), Some(5));
        two.graph.as_mut().unwrap().output.push(value("logits", Some(5)));
        assert!(without_final_softmax(&two).is_none());
        // Not ending in a Softmax.
        let mut relu_last = graph(Some(17), Some(1), Some(5));
        relu_last.graph.as_mut().unwrap().node.reverse();
        assert!(without_final_softmax(&relu_last).is_none());
    }
}
