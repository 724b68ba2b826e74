//! The graph's final class Softmax, cut off so that edge-seg computes it.

use tract_onnx::pb::ModelProto;

/// The graph without its last node when that node is a per-voxel Softmax
/// over the class axis (axis 1 of the 5-D output, opset 13 or later)
/// producing the only output, so the graph ends at the logits. tract's
/// Softmax over a non-innermost axis walks the tensor voxel by voxel,
/// single-threaded, and took about half of a whole scan's time;
/// [`crate::scores::softmax_channels`] computes the same function plane by plane on all
/// threads.
pub fn without_final_softmax(proto: &ModelProto) -> Option<ModelProto> {
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
