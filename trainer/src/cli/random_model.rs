//! `edge-seg-train random-model`: an ONNX model with random (Glorot)
//! weights for a network spec, for speed benchmarks of large networks.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use edge_seg_export::{export, Checkpoint, WeightFormat};
use edge_seg_models::card::{Intensity, Modality};
use edge_seg_models::labels::BASE_LABELS;
use edge_seg_models::ModelCard;

use super::base::{network_spec, parse_spacing, SpecArgs};

#[derive(Debug, Args)]
pub struct RandomModelArgs {
    #[command(flatten)]
    pub network: SpecArgs,
    /// Classes, background included (the base vocabulary when 14).
    #[arg(long, default_value_t = 14)]
    pub classes: usize,
    /// Tile edge written in the card (a legal input size).
    #[arg(long, default_value_t = 132)]
    pub tile: usize,
    /// Spacing written in the card, mm.
    #[arg(long, default_value = "1")]
    pub spacing: String,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(a: &RandomModelArgs) -> Result<()> {
    let spec = network_spec(&a.network, a.classes)?;
    let labels: Vec<String> = if a.classes == BASE_LABELS.len() {
        BASE_LABELS.iter().map(|s| s.to_string()).collect()
    } else {
        std::iter::once("background".to_string())
            .chain((1..a.classes).map(|i| format!("class{i}")))
            .collect()
    };
    let card = ModelCard::new(
        "random",
        Modality::CT,
        &labels,
        spec,
        parse_spacing(&a.spacing)?,
        Intensity::ct_default(),
        [a.tile; 3],
    )?;
    let report = export(&Checkpoint::random(card, a.seed), &a.out, WeightFormat::F32)?;
    println!(
        "wrote {} ({:.1} MB, {} parameters, random weights)",
        report.path.display(),
        report.bytes as f64 / 1e6,
        report.parameters
    );
    Ok(())
}
