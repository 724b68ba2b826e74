//! `edge-seg-train predict`: segment scans with a training checkpoint.

use std::path::PathBuf;

use anyhow::Result;
use burn::prelude::*;
use clap::Args;

use crate::predict::{tile_for, CheckpointPredictor};

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Checkpoint directory (model.safetensors + model.card.json).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Scans to segment.
    #[arg(required = true)]
    pub scans: Vec<PathBuf>,
    /// Output path (one scan only); default SCAN.pred.nii.gz beside the scan.
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    /// Tile edge (largest legal size not above it).
    #[arg(long, default_value_t = 132)]
    pub tile: usize,
}

pub fn run(a: &PredictArgs) -> Result<()> {
    if a.out.is_some() && a.scans.len() > 1 {
        anyhow::bail!("-o/--out takes one scan; without it each result goes beside its scan");
    }
    let model = CheckpointPredictor::from_checkpoint(&a.checkpoint, Device::flex())?;
    let tile = tile_for(&model.card.network, a.tile);
    for scan in &a.scans {
        let out = match &a.out {
            Some(o) => o.clone(),
            None => {
                let name = scan.file_name().unwrap_or_default().to_string_lossy();
                let stem = name.trim_end_matches(".gz").trim_end_matches(".nii");
                scan.with_file_name(format!("{stem}.pred.nii.gz"))
            }
        };
        model.predict_file(scan, &out, tile)?;
        println!("{} → {}", scan.display(), out.display());
    }
    Ok(())
}
