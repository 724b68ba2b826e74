//! edge-seg export: a checkpoint (safetensors + card) becomes one
//! self-describing ONNX file, verified with tract before it is kept.
//!
//! - [`checkpoint`]: the checkpoint directory format, and batch-norm folding;
//! - [`init`]: random initial weights;
//! - [`onnx_graph`]: the ONNX graph of a network spec;
//! - [`verify`]: checks on a written model.

pub mod checkpoint;
mod error;
pub mod init;
pub mod onnx_graph;
pub mod verify;

use std::path::{Path, PathBuf};

use edge_seg_models::atomic;
use edge_seg_models::weights::weights_sha256;
use prost::Message;

pub use checkpoint::{Checkpoint, Tensor};
pub use error::ExportError;
pub use onnx_graph::WeightFormat;

/// What an export produced.
#[derive(Clone, Debug)]
pub struct ExportReport {
    pub path: PathBuf,
    pub bytes: usize,
    pub weights_sha256: String,
    pub format: WeightFormat,
    pub parameters: u64,
}

/// ONNX bytes for a checkpoint, with the card's `weights_sha256` set to the
/// hash of the initializers as stored. Batch normalisation is folded into
/// the convolutions first ([`Checkpoint::folded`]), so the graph and the
/// returned card are those of a plain network. Returns the bytes and the card.
pub fn onnx_bytes(ckpt: &Checkpoint, format: WeightFormat) -> (Vec<u8>, edge_seg_models::ModelCard) {
    let ckpt = &ckpt.folded();
    let mut card = ckpt.card.clone();
    let blobs = onnx_graph::stored_weight_bytes(ckpt, &card.network, format);
    card.weights_sha256 = weights_sha256(blobs.iter().map(|b| b.as_slice()));
    let model = onnx_graph::build_model(ckpt, &card, format);
    (model.encode_to_vec(), card)
}

/// Export a checkpoint (already read and checked) to `out`: build, verify
/// with tract, then write atomically. Nothing is written when verification
/// fails.
pub fn export(ckpt: &Checkpoint, out: &Path, format: WeightFormat) -> Result<ExportReport, ExportError> {
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(ExportError::Output {
            path: out.to_path_buf(),
            problem: format!("directory {} does not exist", dir.display()),
        });
    }
    if out.is_dir() {
        return Err(ExportError::Output {
            path: out.to_path_buf(),
            problem: "is a directory".into(),
        });
    }
    let (bytes, card) = onnx_bytes(ckpt, format);
    verify::verify_onnx_bytes(out, &bytes, &card)?;
    atomic::write_bytes(out, &bytes).map_err(|e| ExportError::Io {
        path: out.to_path_buf(),
        source: e,
    })?;
    Ok(ExportReport {
        path: out.to_path_buf(),
        bytes: bytes.len(),
        weights_sha256: card.weights_sha256,
        format,
        parameters: card.network.parameter_count(),
    })
}

/// Read the checkpoint directory `dir` and export it to `out`.
pub fn export_checkpoint(dir: &Path, out: &Path, format: WeightFormat) -> Result<ExportReport, ExportError> {
    let ckpt = Checkpoint::read(dir)?;
    export(&ckpt, out, format)
}
