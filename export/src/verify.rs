//! Verification of a written model: tract loads it, the card in its
//! metadata is the card we meant to write, the weight hash matches the
//! initializers, and the output shape for the card's tile is the card's.

use std::path::Path;

use edge_seg_models::weights::{weight_entries, weights_sha256};
use edge_seg_models::{ModelCard, CARD_METADATA_KEY};
use tract_onnx::prelude::*;

use crate::error::ExportError;

/// Check ONNX bytes against the card they should carry.
pub fn verify_onnx_bytes(path: &Path, bytes: &[u8], card: &ModelCard) -> Result<(), ExportError> {
    let fail = |problem: String| ExportError::Verify {
        path: path.to_path_buf(),
        problem,
    };
    let onnx = tract_onnx::onnx();
    let proto = onnx
        .proto_model_for_read(&mut &bytes[..])
        .map_err(|e| fail(format!("tract cannot parse the protobuf: {e}")))?;
    let stored = proto
        .metadata_props
        .iter()
        .find(|p| p.key == CARD_METADATA_KEY)
        .ok_or_else(|| fail(format!("no {CARD_METADATA_KEY} in metadata_props")))?;
    let stored_card =
        ModelCard::from_json(&stored.value).map_err(|e| fail(format!("the stored card does not parse: {e}")))?;
    if &stored_card != card {
        return Err(fail("the stored card differs from the card written".into()));
    }
    let graph = proto.graph.as_ref().ok_or_else(|| fail("no graph".into()))?;
    let mut blobs = Vec::new();
    for e in weight_entries(&card.network) {
        let t = graph
            .initializer
            .iter()
            .find(|t| t.name == e.name)
            .ok_or_else(|| fail(format!("initializer {} missing", e.name)))?;
        let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
        if dims != e.shape {
            return Err(fail(format!(
                "initializer {} has shape {dims:?}, expected {:?}",
                e.name, e.shape
            )));
        }
        blobs.push(t.raw_data.as_slice());
    }
    let hash = weights_sha256(blobs);
    if hash != card.weights_sha256 {
        return Err(fail(format!(
            "weights_sha256 in the card is {} but the initializers hash to {hash}",
            card.weights_sha256
        )));
    }
    let tile = card.tile.input;
    let typed = onnx
        .model_for_proto_model(&proto)
        .and_then(|m| m.with_input_fact(0, f32::fact([1, 1, tile[0], tile[1], tile[2]]).into()))
        .and_then(|m| m.into_typed())
        .map_err(|e| fail(format!("tract cannot type the graph for a {tile:?} tile: {e}")))?;
    let out = typed
        .output_fact(0)
        .map_err(|e| fail(format!("no output: {e}")))?
        .shape
        .as_concrete()
        .map(|s| s.to_vec())
        .ok_or_else(|| fail("the output shape is not concrete".into()))?;
    let want = vec![
        1,
        card.classes(),
        card.tile.output[0],
        card.tile.output[1],
        card.tile.output[2],
    ];
    if out != want {
        return Err(fail(format!(
            "tract infers output {out:?} for a {tile:?} tile; the card says {want:?}"
        )));
    }
    Ok(())
}
