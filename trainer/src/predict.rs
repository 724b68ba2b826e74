//! Sliding-window prediction with the burn model, using the runtime's
//! preprocessing and tiling (the same code `edge-seg infer` runs), so
//! trainer predictions compare directly with the exported model's.

use std::path::Path;

use anyhow::{anyhow, Result};
use burn::prelude::*;
use edge_seg_export::Checkpoint;
use edge_seg_models::card::Decode;
use edge_seg_models::{ModelCard, NetworkSpec};
use edge_seg_runtime::preprocess::{preprocess, PreprocessSpec};
use edge_seg_runtime::tiling::{TilePlan, Tiling};
use edge_seg_runtime::volume::{read_volume, Volume};
use ndarray::{Array3, Array4};

use crate::unet::UNet;

/// One forward pass of a tile: `[z, y, x]` → probabilities `[C, z', y', x']`.
pub fn forward_tile(model: &UNet, device: &Device, input: &Array3<f32>) -> Result<Array4<f32>, String> {
    let (z, y, x) = input.dim();
    let t = Tensor::<5>::from_data(
        TensorData::new(input.iter().copied().collect::<Vec<f32>>(), [1, 1, z, y, x]),
        device,
    );
    let p = model.forward(t);
    let [_, c, oz, oy, ox] = p.dims();
    let v: Vec<f32> = p.into_data().try_to_vec_as::<f32>().map_err(|e| format!("{e:?}"))?;
    Array4::from_shape_vec((c, oz, oy, ox), v).map_err(|e| e.to_string())
}

/// The largest legal tile not above `max` along each axis (at least the
/// smallest legal size).
pub fn tile_for(spec: &NetworkSpec, max: usize) -> [usize; 3] {
    let legal = spec.legal_input_sizes(max.max(spec.smallest_input()));
    [*legal.last().expect("a legal size"); 3]
}

/// Segment an image already on the model grid.
pub fn predict_image_labels(
    model: &UNet,
    device: &Device,
    spec: &NetworkSpec,
    image: &Array3<f32>,
    tile: [usize; 3],
    pad: f32,
    decode: Decode,
) -> Result<Array3<u16>> {
    let (z, y, x) = image.dim();
    let plan = TilePlan::new(spec, [z, y, x], tile, 0.5).map_err(|e| anyhow!(e))?;
    Tiling::new(image.view(), &plan, pad)
        .labels(decode, |t| forward_tile(model, device, t))
        .map_err(|e| anyhow!(e))
}

/// A model loaded from a checkpoint directory, ready to predict on the CPU.
pub struct CheckpointPredictor {
    pub card: ModelCard,
    pub model: UNet,
    pub device: Device,
}

impl CheckpointPredictor {
    pub fn from_checkpoint(dir: &Path, device: Device) -> Result<CheckpointPredictor> {
        let ckpt = Checkpoint::read(dir)?;
        let model = UNet::new(&ckpt.card.network, &ckpt.weights, &device)?;
        Ok(CheckpointPredictor {
            card: ckpt.card,
            model,
            device,
        })
    }

    pub fn preprocess_spec(&self) -> PreprocessSpec {
        PreprocessSpec {
            spacing_zyx: self.card.spacing_mm,
            intensity: self.card.intensity,
            crop_to_body: false,
            modality: self.card.modality,
        }
    }

    /// Labels for a scan, on the scan's own grid: the model grid's class
    /// scores interpolated to each scan voxel and decoded there, as
    /// `edge-seg infer` does by default.
    pub fn predict_volume(&self, vol: &Volume, path: &Path, tile: [usize; 3]) -> Result<Array3<u16>> {
        let pre = preprocess(vol, path, &self.preprocess_spec())?;
        let (z, y, x) = pre.data.dim();
        let plan = TilePlan::new(&self.card.network, [z, y, x], tile, 0.5).map_err(|e| anyhow!(e))?;
        let scores = Tiling::new(pre.data.view(), &plan, self.card.intensity.background_value())
            .volume_scores(|t| forward_tile(&self.model, &self.device, t))
            .map_err(|e| anyhow!(e))?;
        Ok(pre.scores_to_scan(scores.view(), self.card.decode))
    }

    /// Read, predict and write a label map with the scan's geometry.
    pub fn predict_file(&self, scan: &Path, out: &Path, tile: [usize; 3]) -> Result<Array3<u16>> {
        edge_seg_runtime::volume::check_not_input(scan, out)?;
        edge_seg_runtime::volume::check_output_path(out)?;
        let vol = read_volume(scan)?;
        let labels = self.predict_volume(&vol, scan, tile)?;
        edge_seg_runtime::volume::write_labels(out, labels.view(), &vol.header)?;
        Ok(labels)
    }
}
