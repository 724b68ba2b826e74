//! Export verified against the model as trained: a checkpoint becomes ONNX
//! bytes, which tract must load and whose probabilities on a test tile must
//! match the burn model's (batch normalisation folding and float16 rounding
//! included) before the file is written.

use anyhow::{bail, Context, Result};
use burn::prelude::*;
use edge_seg_export::verify::verify_onnx_bytes;
use edge_seg_export::{onnx_bytes, Checkpoint, WeightFormat};
use edge_seg_runtime::backend::TractBackend;
use ndarray::Array3;

use crate::predict::forward_tile;
use crate::unet::UNet;

/// Largest allowed difference between tract and burn probabilities.
pub const TOLERANCE: f32 = 1e-4;

/// A deterministic test tile: a smooth pattern over the intensity range.
pub fn test_tile(shape: [usize; 3]) -> Array3<f32> {
    Array3::from_shape_fn((shape[0], shape[1], shape[2]), |(z, y, x)| {
        ((z as f32 * 0.37).sin() + (y as f32 * 0.23).cos() + (x as f32 * 0.11).sin()) / 3.0
    })
}

/// What a checked export wrote.
#[derive(Clone, Copy, Debug)]
pub struct CheckedExport {
    /// Size of the ONNX file.
    pub bytes: usize,
    /// The largest tract–burn difference on the test tile.
    pub max_diff: f32,
    /// Parameters of the exported network (batch normalisation folded away).
    pub parameters: u64,
}

/// Export with the burn cross-check.
pub fn export_checked(ckpt: &Checkpoint, out: &std::path::Path, format: WeightFormat) -> Result<CheckedExport> {
    ckpt.check_weights(out)?;
    let folded = ckpt.folded();
    let (bytes, card) = onnx_bytes(&folded, format);
    verify_onnx_bytes(out, &bytes, &card)?;
    let tile = test_tile(card.tile.input);
    let tract = TractBackend::new(&tract_onnx_proto(&bytes)?, card.classes());
    let t = tract.run(&tile).map_err(anyhow::Error::msg)?;
    // Burn runs the checkpoint as trained (a batch-normalised network with
    // its running statistics, so the fold is checked too); for --fp16 it
    // runs the weights exactly as stored, folded and rounded to f16.
    let (spec, weights) = match format {
        WeightFormat::F32 => (ckpt.card.network.clone(), ckpt.weights.clone()),
        WeightFormat::F16 => {
            let mut folded = folded;
            for w in folded.weights.values_mut() {
                for v in &mut w.values {
                    *v = half::f16::from_f32(*v).to_f32();
                }
            }
            (folded.card.network, folded.weights)
        }
    };
    let device = Device::flex();
    let model = UNet::new(&spec, &weights, &device)?;
    let b = forward_tile(&model, &device, &tile).map_err(anyhow::Error::msg)?;
    if t.dim() != b.dim() {
        bail!("tract gives {:?} but burn {:?} for the test tile", t.dim(), b.dim());
    }
    let diff = t
        .iter()
        .zip(b.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    if diff.is_nan() || diff > TOLERANCE {
        bail!(
            "{}: tract and burn disagree by {diff:e} on the test tile (tolerance {TOLERANCE:e}); nothing written",
            out.display()
        );
    }
    edge_seg_models::atomic::write_bytes(out, &bytes).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(CheckedExport {
        bytes: bytes.len(),
        max_diff: diff,
        parameters: card.network.parameter_count(),
    })
}

fn tract_onnx_proto(bytes: &[u8]) -> Result<tract_onnx::pb::ModelProto> {
    use tract_onnx::prelude::Framework;
    tract_onnx::onnx()
        .proto_model_for_read(&mut &bytes[..])
        .map_err(|e| anyhow::anyhow!("cannot parse the exported model: {e}"))
}
