//! ONNX model → [`Graph`]: constants gathered (initializers, `Constant`
//! nodes, Casts of constants such as our float16 weights, widened on the
//! host), every other node read into the op set, then a Relu that directly
//! follows a Conv fused into it, and a Slice read only by Concats fused
//! into their copies.

use std::collections::HashMap;

use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::tensor_shape_proto::dimension;
use tract_onnx::pb::{type_proto, ModelProto, ValueInfoProto};

use super::ops::{node_label, parse_node, Constants, Op};
use super::tensor::Constant;

/// Index of a computed value (the graph input or a node output).
pub type ValueId = usize;

/// One node of the op set.
#[derive(Clone, Debug)]
pub struct Node {
    /// How messages name it: `Conv node "enc0.conv0"`.
    pub label: String,
    pub op: Op,
    pub inputs: Vec<ValueId>,
    pub output: ValueId,
}

/// A graph limited to the op set, in execution order.
#[derive(Clone, Debug)]
pub struct Graph {
    /// Value names, indexed by [`ValueId`].
    pub names: Vec<String>,
    pub input: ValueId,
    /// Channels of the input when the graph fixes them.
    pub input_channels: Option<usize>,
    pub output: ValueId,
    pub nodes: Vec<Node>,
}

/// The default-domain opset the model imports.
fn opset(proto: &ModelProto) -> Result<i64, String> {
    proto
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .ok_or_else(|| "the model imports no default-domain ONNX opset".to_string())
}

/// Fixed dimensions of a declared value (`None` per symbolic dimension).
fn declared_dims(v: &ValueInfoProto) -> Option<Vec<Option<i64>>> {
    let type_proto::Value::TensorType(t) = v.r#type.as_ref()?.value.as_ref()?;
    Some(
        t.shape
            .as_ref()?
            .dim
            .iter()
            .map(|d| match d.value {
                Some(dimension::Value::DimValue(n)) => Some(n),
                _ => None,
            })
            .collect(),
    )
}

impl Graph {
    /// Read a model; any op, attribute or input outside the op set is an
    /// error naming it and its node.
    pub fn from_proto(proto: &ModelProto) -> Result<Graph, String> {
        let g = proto.graph.as_ref().ok_or("the ONNX model has no graph")?;
        let opset = opset(proto)?;
        let mut consts: Constants = HashMap::new();
        for t in &g.initializer {
            consts.insert(t.name.clone(), Constant::from_proto(t)?);
        }
        let inputs: Vec<&ValueInfoProto> = g.input.iter().filter(|i| !consts.contains_key(&i.name)).collect();
        let [input] = inputs.as_slice() else {
            return Err(format!(
                "the graph has {} computed inputs; one image input is supported",
                inputs.len()
            ));
        };
        let dims = declared_dims(input);
        if let Some(d) = &dims {
            if d.len() != 5 {
                return Err(format!(
                    "input {:?} has rank {}, expected [N, C, D, H, W]",
                    input.name,
                    d.len()
                ));
            }
        }
        let input_channels = dims.and_then(|d| d[1]).map(|c| c as usize);
        let mut names = vec![input.name.clone()];
        let mut ids: HashMap<String, ValueId> = HashMap::from([(input.name.clone(), 0)]);
        let mut nodes = Vec::new();
        for (index, node) in g.node.iter().enumerate() {
            let label = node_label(node, index);
            let output = match node.output.as_slice() {
                [first, rest @ ..] if !first.is_empty() && rest.iter().all(String::is_empty) => first.clone(),
                _ => return Err(format!("{label}: exactly one output is supported")),
            };
            if ids.contains_key(&output) || consts.contains_key(&output) {
                return Err(format!("{label}: value {output:?} is defined twice"));
            }
            let plain_domain = node.domain.is_empty() || node.domain == "ai.onnx";
            if plain_domain && node.op_type == "Constant" {
                let value = node
                    .attribute
                    .iter()
                    .find(|a| a.name == "value")
                    .and_then(|a| a.t.as_ref())
                    .ok_or_else(|| format!("{label}: only the tensor form (attribute \"value\") is supported"))?;
                consts.insert(output, Constant::from_proto(value)?);
                continue;
            }
            if plain_domain && node.op_type == "Cast" {
                let to = node.attribute.iter().find(|a| a.name == "to").map(|a| a.i);
                if to != Some(DataType::Float as i64) {
                    return Err(format!("{label}: only casts to float32 are supported"));
                }
                let src = node.input.first().map(String::as_str).unwrap_or_default();
                let c = consts.get(src).ok_or_else(|| {
                    format!("{label}: casting the computed value {src:?} is not supported (only constants)")
                })?;
                let c = c.to_f32();
                consts.insert(output, c);
                continue;
            }
            let parsed = parse_node(node, index, &consts, opset)?;
            let inputs = parsed
                .inputs
                .iter()
                .map(|n| {
                    ids.get(n)
                        .copied()
                        .ok_or_else(|| format!("{label}: input {n:?} is not defined before this node"))
                })
                .collect::<Result<Vec<ValueId>, String>>()?;
            let id = names.len();
            names.push(output.clone());
            ids.insert(output, id);
            nodes.push(Node {
                label,
                op: parsed.op,
                inputs,
                output: id,
            });
        }
        let [out] = g.output.as_slice() else {
            return Err(format!("the graph has {} outputs; one is supported", g.output.len()));
        };
        let output = *ids
            .get(&out.name)
            .filter(|&&id| id != 0)
            .ok_or_else(|| format!("the graph output {:?} is not computed by any node", out.name))?;
        let mut graph = Graph {
            names,
            input: 0,
            input_channels,
            output,
            nodes,
        };
        graph.fuse_conv_relu();
        graph.fuse_slice_concat();
        Ok(graph)
    }

    /// How many times each value is read (the graph output counts once).
    fn uses(&self) -> Vec<usize> {
        let mut uses = vec![0; self.names.len()];
        for n in &self.nodes {
            for &i in &n.inputs {
                uses[i] += 1;
            }
        }
        uses[self.output] += 1;
        uses
    }

    /// The node computing each value.
    fn producers(&self) -> Vec<Option<usize>> {
        let mut p = vec![None; self.names.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            p[n.output] = Some(i);
        }
        p
    }

    /// A Relu whose input is a Conv's output read by nothing else becomes the
    /// Conv's epilogue.
    fn fuse_conv_relu(&mut self) {
        let uses = self.uses();
        let producers = self.producers();
        let mut removed = vec![false; self.nodes.len()];
        for r in 0..self.nodes.len() {
            if self.nodes[r].op != Op::Relu {
                continue;
            }
            let v = self.nodes[r].inputs[0];
            let Some(p) = producers[v] else { continue };
            if uses[v] != 1 || removed[p] {
                continue;
            }
            let out = self.nodes[r].output;
            if let Op::Conv(conv) = &mut self.nodes[p].op {
                if !conv.relu {
                    conv.relu = true;
                    self.nodes[p].output = out;
                    removed[r] = true;
                }
            }
        }
        self.remove(&removed);
    }

    /// A Slice read only by Concats is done by their copies.
    fn fuse_slice_concat(&mut self) {
        let uses = self.uses();
        let producers = self.producers();
        let mut concat_uses = vec![0; self.names.len()];
        for n in &self.nodes {
            if matches!(n.op, Op::Concat { .. }) {
                for &i in &n.inputs {
                    concat_uses[i] += 1;
                }
            }
        }
        let mut removed = vec![false; self.nodes.len()];
        for c in 0..self.nodes.len() {
            for j in 0..self.nodes[c].inputs.len() {
                let v = self.nodes[c].inputs[j];
                let Some(p) = producers[v] else { continue };
                let Op::Slice(crop) = self.nodes[p].op else { continue };
                if uses[v] != concat_uses[v] {
                    continue;
                }
                let src = self.nodes[p].inputs[0];
                if let Op::Concat { crops } = &mut self.nodes[c].op {
                    crops[j] = Some(crop);
                    self.nodes[c].inputs[j] = src;
                    removed[p] = true;
                }
            }
        }
        self.remove(&removed);
    }

    fn remove(&mut self, removed: &[bool]) {
        let mut i = 0;
        self.nodes.retain(|_| {
            i += 1;
            !removed[i - 1]
        });
    }
}
