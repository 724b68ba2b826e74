//! The ONNX protobuf builders: attributes, nodes, initializers, value
//! types. The exporter writes every model with them (`export/src/onnx_graph.rs`),
//! and [`model`] makes the small graphs of the kernel tests and hand-made
//! networks in the same form: opset 17, one input `[N, C, D, H, W]`, one
//! output.

use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};
use tract_onnx::pb::type_proto::{self, Tensor as TensorType};
use tract_onnx::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

/// An int-list attribute.
pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..Default::default()
    }
}

/// An int attribute.
pub fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: v,
        ..Default::default()
    }
}

/// A string attribute.
pub fn attr_str(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// A node with one output (named after the node).
pub fn node(op: &str, name: &str, inputs: &[&str], attribute: Vec<AttributeProto>) -> NodeProto {
    node_to(op, name, inputs, name, attribute)
}

/// A node with one output named `output`.
pub fn node_to(op: &str, name: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute,
        ..Default::default()
    }
}

/// A symbolic dimension.
pub fn dim_param(p: &str) -> Dimension {
    Dimension {
        value: Some(dimension::Value::DimParam(p.into())),
        ..Default::default()
    }
}

/// A fixed dimension.
pub fn dim_value(v: i64) -> Dimension {
    Dimension {
        value: Some(dimension::Value::DimValue(v)),
        ..Default::default()
    }
}

/// A float32 tensor value of shape `dims`.
pub fn float_value_info(name: &str, dims: Vec<Dimension>) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(TensorType {
                elem_type: DataType::Float as i32,
                shape: Some(TensorShapeProto { dim: dims }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A float32 initializer.
pub fn f32_tensor(name: &str, dims: &[usize], values: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: DataType::Float as i32,
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

/// An int64 initializer (1D).
pub fn i64_tensor(name: &str, values: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: vec![values.len() as i64],
        data_type: DataType::Int64 as i32,
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn value_info(name: &str, channels: Option<usize>) -> ValueInfoProto {
    let c = match channels {
        Some(c) => dim_value(c as i64),
        None => dim_param("C"),
    };
    float_value_info(
        name,
        vec![dim_param("N"), c, dim_param("D"), dim_param("H"), dim_param("W")],
    )
}

/// A model (opset 17) with input `input` of `channels` channels and output `output`.
pub fn model(
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    input: &str,
    channels: usize,
    output: &str,
) -> ModelProto {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(GraphProto {
            name: "graph".into(),
            node: nodes,
            initializer: initializers,
            input: vec![value_info(input, Some(channels))],
            output: vec![value_info(output, None)],
            ..Default::default()
        }),
        ..Default::default()
    }
}
