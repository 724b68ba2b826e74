//! Loading a segmentation model: an ONNX file with its model card inside
//! (`metadata_props["edge_seg.card"]`), or any compatible ONNX model with a
//! `--card card.json` sidecar. The card is checked against the graph (input
//! and output shapes, class count) and the weights against the card's hash.

use std::path::{Path, PathBuf};

use edge_seg_models::weights::{weight_entries, weights_sha256};
use edge_seg_models::{ModelCard, CARD_METADATA_KEY};
use thiserror::Error;
use tract_onnx::pb::tensor_shape_proto::dimension;
use tract_onnx::pb::{type_proto, ModelProto, TensorProto, ValueInfoProto};
use tract_onnx::prelude::Framework;

/// Where a model came from, for messages and reports.
#[derive(Clone, Debug)]
pub enum ModelSource {
    File(PathBuf),
    Builtin(&'static str),
}

impl std::fmt::Display for ModelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelSource::File(p) => write!(f, "{}", p.display()),
            ModelSource::Builtin(n) => write!(f, "built-in model {n}"),
        }
    }
}

/// A problem with a model file; the message names the file.
#[derive(Debug, Error)]
#[error("{source_name}: {problem}")]
pub struct ModelError {
    pub source_name: String,
    pub problem: String,
}

impl ModelError {
    fn new(source: &ModelSource, problem: impl Into<String>) -> Self {
        ModelError {
            source_name: source.to_string(),
            problem: problem.into(),
        }
    }
}

/// A parsed, checked model.
#[derive(Clone, Debug)]
pub struct Model {
    pub card: ModelCard,
    pub proto: ModelProto,
    pub source: ModelSource,
    /// Size of the ONNX file in bytes.
    pub bytes: usize,
    /// The card came from a sidecar file.
    pub sidecar: bool,
}

/// Raw bytes of an initializer as stored (raw_data or typed fields, little endian).
fn initializer_bytes(t: &TensorProto) -> Vec<u8> {
    if !t.raw_data.is_empty() {
        return t.raw_data.clone();
    }
    if !t.float_data.is_empty() {
        return t.float_data.iter().flat_map(|v| v.to_le_bytes()).collect();
    }
    if !t.double_data.is_empty() {
        return t.double_data.iter().flat_map(|v| v.to_le_bytes()).collect();
    }
    if !t.int32_data.is_empty() {
        return t.int32_data.iter().flat_map(|v| v.to_le_bytes()).collect();
    }
    t.int64_data.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The weight hash of a graph: over the weight-scheme initializers in scheme
/// order when the graph follows the scheme of `card`'s network, otherwise
/// over every initializer in graph order (third-party graphs).
pub fn graph_weights_sha256(proto: &ModelProto, card: &ModelCard) -> String {
    let Some(graph) = &proto.graph else {
        return weights_sha256(std::iter::empty::<&[u8]>());
    };
    let entries = weight_entries(&card.network);
    let scheme: Option<Vec<Vec<u8>>> = entries
        .iter()
        .map(|e| {
            graph
                .initializer
                .iter()
                .find(|t| t.name == e.name)
                .map(initializer_bytes)
        })
        .collect();
    match scheme {
        Some(blobs) => weights_sha256(blobs.iter().map(|b| b.as_slice())),
        None => {
            let blobs: Vec<Vec<u8>> = graph.initializer.iter().map(initializer_bytes).collect();
            weights_sha256(blobs.iter().map(|b| b.as_slice()))
        }
    }
}

/// Dimensions of a value: `Some(n)` for fixed, `None` for symbolic.
fn dims_of(v: &ValueInfoProto) -> Option<Vec<Option<i64>>> {
    let t = match v.r#type.as_ref()?.value.as_ref()? {
        type_proto::Value::TensorType(t) => t,
    };
    let shape = t.shape.as_ref()?;
    Some(
        shape
            .dim
            .iter()
            .map(|d| match &d.value {
                Some(dimension::Value::DimValue(n)) => Some(*n),
                _ => None,
            })
            .collect(),
    )
}

/// Check the graph's declared input and output against the card.
fn check_graph(proto: &ModelProto, card: &ModelCard, source: &ModelSource) -> Result<(), ModelError> {
    if !card.network.norm.is_none() {
        return Err(ModelError::new(
            source,
            "the card describes a network with batch normalisation; a model for inference holds it folded into \
             the convolutions (norm none): export the checkpoint with `edge-seg-train export`",
        ));
    }
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| ModelError::new(source, "the ONNX file has no graph"))?;
    let init_names: std::collections::HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<&ValueInfoProto> = graph
        .input
        .iter()
        .filter(|i| !init_names.contains(i.name.as_str()))
        .collect();
    if inputs.len() != 1 {
        return Err(ModelError::new(
            source,
            format!(
                "the graph has {} inputs; a segmentation model has one image input",
                inputs.len()
            ),
        ));
    }
    if graph.output.is_empty() {
        return Err(ModelError::new(source, "the graph has no output"));
    }
    if let Some(d) = dims_of(inputs[0]) {
        if d.len() != 5 {
            return Err(ModelError::new(
                source,
                format!(
                    "input {:?} has rank {}, expected [N, 1, D, H, W]",
                    inputs[0].name,
                    d.len()
                ),
            ));
        }
        if let Some(c) = d[1] {
            if c != 1 {
                return Err(ModelError::new(
                    source,
                    format!("input {:?} has {c} channels, expected 1", inputs[0].name),
                ));
            }
        }
        for (axis, (dim, tile)) in d[2..].iter().zip(card.tile.input).enumerate() {
            if let Some(n) = dim {
                if *n as usize != tile {
                    return Err(ModelError::new(
                        source,
                        format!(
                            "input spatial dim {axis} is fixed at {n} but the card's tile is {:?}",
                            card.tile.input
                        ),
                    ));
                }
            }
        }
    }
    if let Some(d) = dims_of(&graph.output[0]) {
        if d.len() != 5 {
            return Err(ModelError::new(
                source,
                format!(
                    "output {:?} has rank {}, expected [N, C, d, h, w]",
                    graph.output[0].name,
                    d.len()
                ),
            ));
        }
        if let Some(c) = d[1] {
            if c as usize != card.classes() {
                return Err(ModelError::new(
                    source,
                    format!(
                        "the graph outputs {c} classes but the card lists {} labels",
                        card.classes()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// An ONNX model's protobuf, decoded (nothing checked).
pub fn decode_onnx(bytes: &[u8]) -> Result<tract_onnx::pb::ModelProto, String> {
    tract_onnx::onnx()
        .proto_model_for_read(&mut &bytes[..])
        .map_err(|e| format!("not a valid ONNX model: {e}"))
}

impl Model {
    /// Parse and check a model from bytes. `sidecar` replaces (or provides)
    /// the card.
    pub fn from_bytes(bytes: &[u8], source: ModelSource, sidecar: Option<&Path>) -> Result<Model, ModelError> {
        let proto = decode_onnx(bytes).map_err(|e| ModelError::new(&source, e))?;
        let (card_text, from_sidecar) = match sidecar {
            Some(p) => (
                std::fs::read_to_string(p).map_err(|e| ModelError {
                    source_name: p.display().to_string(),
                    problem: format!("cannot read the card: {e}"),
                })?,
                true,
            ),
            None => (
                proto
                    .metadata_props
                    .iter()
                    .find(|p| p.key == CARD_METADATA_KEY)
                    .map(|p| p.value.clone())
                    .ok_or_else(|| {
                        ModelError::new(
                            &source,
                            format!(
                                "no model card ({CARD_METADATA_KEY} in metadata_props); give one with --card card.json"
                            ),
                        )
                    })?,
                false,
            ),
        };
        let card = ModelCard::from_json(&card_text).map_err(|e| match sidecar {
            Some(p) => ModelError {
                source_name: p.display().to_string(),
                problem: e.to_string(),
            },
            None => ModelError::new(&source, e.to_string()),
        })?;
        check_graph(&proto, &card, &source)?;
        let hash = graph_weights_sha256(&proto, &card);
        if hash != card.weights_sha256 {
            return Err(ModelError::new(
                &source,
                format!(
                    "weight hash mismatch: the card says {} but the weights hash to {hash}; the file was modified or the card belongs to another model",
                    card.weights_sha256
                ),
            ));
        }
        Ok(Model {
            card,
            proto,
            source,
            bytes: bytes.len(),
            sidecar: from_sidecar,
        })
    }

    /// Read and check a model file.
    pub fn from_file(path: &Path, sidecar: Option<&Path>) -> Result<Model, ModelError> {
        let source = ModelSource::File(path.to_path_buf());
        if path.is_dir() {
            return Err(ModelError::new(&source, "is a directory, not an ONNX file"));
        }
        let bytes = std::fs::read(path).map_err(|e| {
            ModelError::new(
                &source,
                if e.kind() == std::io::ErrorKind::NotFound {
                    "no such file".to_string()
                } else {
                    format!("cannot read: {e}")
                },
            )
        })?;
        if bytes.is_empty() {
            return Err(ModelError::new(&source, "the file is empty"));
        }
        Model::from_bytes(&bytes, source, sidecar)
    }

    /// A short description: task, labels, spacing, tile.
    pub fn describe(&self) -> String {
        let c = &self.card;
        format!(
            "{} ({}), {} labels, spacing {:?} mm, tile {:?} → {:?}, {} parameters",
            c.task,
            c.modality,
            c.labels.len() - 1,
            c.spacing_mm,
            c.tile.input,
            c.tile.output,
            c.network.parameter_count()
        )
    }
}
