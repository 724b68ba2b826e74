//! A graph indexed for the rewrites: who produces and who reads each
//! value, its constants (initializers, or casts of them to float), and the
//! attribute checks the rewrites share.

use std::collections::{HashMap, HashSet};

use tract_onnx::pb::{AttributeProto, GraphProto, NodeProto, TensorProto};

use crate::backend::graph::tensor::Constant;

/// The graph indexed: producers, consumers, constants.
pub struct View<'a> {
    pub g: &'a GraphProto,
    pub producer: HashMap<&'a str, usize>,
    pub consumers: HashMap<&'a str, usize>,
    pub initializers: HashMap<&'a str, &'a TensorProto>,
    pub outputs: HashSet<&'a str>,
    pub names: HashSet<&'a str>,
}

pub fn plain(n: &NodeProto) -> bool {
    n.domain.is_empty() || n.domain == "ai.onnx"
}

pub fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

pub fn attr_string(n: &NodeProto, name: &str) -> Option<String> {
    attr(n, name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

impl<'a> View<'a> {
    pub fn new(g: &'a GraphProto) -> View<'a> {
        let mut producer = HashMap::new();
        let mut consumers: HashMap<&str, usize> = HashMap::new();
        let mut names = HashSet::new();
        for (i, n) in g.node.iter().enumerate() {
            for o in &n.output {
                producer.insert(o.as_str(), i);
                names.insert(o.as_str());
            }
            for input in &n.input {
                *consumers.entry(input.as_str()).or_default() += 1;
            }
            names.insert(n.name.as_str());
        }
        let initializers: HashMap<&str, &TensorProto> = g.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
        names.extend(initializers.keys().copied());
        names.extend(g.input.iter().map(|v| v.name.as_str()));
        View {
            g,
            producer,
            consumers,
            initializers,
            outputs: g.output.iter().map(|v| v.name.as_str()).collect(),
            names,
        }
    }

    /// The node whose only output `value` is, read only by one node.
    pub fn single_use(&self, value: &str) -> bool {
        self.consumers.get(value) == Some(&1) && !self.outputs.contains(value)
    }

    /// A constant value: an initializer, or a Cast to float of one.
    pub fn constant(&self, value: &str) -> Option<Constant> {
        if let Some(t) = self.initializers.get(value) {
            return Constant::from_proto(t).ok();
        }
        let n = &self.g.node[*self.producer.get(value)?];
        if plain(n) && n.op_type == "Cast" && attr(n, "to").map(|a| a.i) == Some(1) {
            let t = self.initializers.get(n.input.first()?.as_str())?;
            return Constant::from_proto(t).ok().map(|c| c.to_f32());
        }
        None
    }

    /// The number of channels of `value`, followed back through the ops
    /// that keep it (or None where it cannot be told).
    pub fn channels(&self, value: &str, depth: usize) -> Option<usize> {
        if depth > 64 {
            return None;
        }
        let Some(&i) = self.producer.get(value) else {
            let input = self.g.input.iter().find(|v| v.name == value)?;
            let tract_onnx::pb::type_proto::Value::TensorType(t) = input.r#type.as_ref()?.value.as_ref()?;
            let dim = t.shape.as_ref()?.dim.get(1)?;
            return match dim.value {
                Some(tract_onnx::pb::tensor_shape_proto::dimension::Value::DimValue(c)) if c > 0 => Some(c as usize),
                _ => None,
            };
        };
        let n = &self.g.node[i];
        if !plain(n) || n.output.first().map(String::as_str) != Some(value) {
            return None;
        }
        match n.op_type.as_str() {
            "Conv" => {
                let w = self.constant(n.input.get(1)?)?;
                (w.dims.len() == 5).then(|| w.dims[0])
            }
            "Relu"
            | "LeakyRelu"
            | "Sigmoid"
            | "Tanh"
            | "Clip"
            | "Identity"
            | "MaxPool"
            | "AveragePool"
            | "Resize"
            | "BatchNormalization"
            | "InstanceNormalization"
            | "Dropout" => self.channels(n.input.first()?, depth + 1),
            _ => None,
        }
    }

    /// The first node reading `value`.
    pub fn consumer(&self, value: &str) -> Option<usize> {
        self.g.node.iter().position(|n| n.input.iter().any(|v| v == value))
    }
}

/// The padding (0 or 1, the same on every side) of a 3×3×3 convolution
/// with stride 1, no dilation and one group; None for any other.
pub fn three_cubed_stride_one(n: &NodeProto) -> Option<i64> {
    let ints = |name: &str| attr(n, name).map(|a| a.ints.clone());
    let known = ["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"];
    if n.attribute.iter().any(|a| !known.contains(&a.name.as_str())) {
        return None;
    }
    if attr_string(n, "auto_pad").is_some_and(|p| p != "NOTSET")
        || attr(n, "group").is_some_and(|a| a.i != 1)
        || ints("kernel_shape").is_some_and(|k| k != [3, 3, 3])
        || ints("strides").is_some_and(|s| s != [1, 1, 1])
        || ints("dilations").is_some_and(|d| d != [1, 1, 1])
    {
        return None;
    }
    let pads = ints("pads").unwrap_or_else(|| vec![0; 6]);
    (pads.len() == 6 && pads.iter().all(|&p| p == pads[0]) && (0..=1).contains(&pads[0])).then(|| pads[0])
}

/// Initializers no node reads any more (the replaced weights and scales),
/// unless the graph also lists them as inputs.
pub fn drop_unused_initializers(g: &mut GraphProto) {
    let read: HashSet<String> = g
        .node
        .iter()
        .flat_map(|n| n.input.iter().cloned())
        .chain(g.output.iter().map(|v| v.name.clone()))
        .chain(g.input.iter().map(|v| v.name.clone()))
        .collect();
    g.initializer.retain(|t| read.contains(&t.name));
}

/// What the rewrites' tests share.
#[cfg(test)]
pub mod test_support {
    use tract_onnx::pb::{ModelProto, NodeProto};

    /// The node named `name` (it must exist).
    pub fn node_mut<'a>(m: &'a mut ModelProto, name: &str) -> &'a mut NodeProto {
        let g = m.graph.as_mut().expect("a graph");
        g.node.iter_mut().find(|n| n.name == name).expect("the node")
    }
}
