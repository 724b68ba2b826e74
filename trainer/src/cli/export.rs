//! `edge-seg-train export`: a checkpoint becomes one ONNX file, verified by
//! tract and cross-checked against the burn model before it is written
//! ([`crate::verified_export`]).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use edge_seg_export::{Checkpoint, WeightFormat};

use crate::verified_export::export_checked;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Checkpoint directory (model.safetensors + model.card.json).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Output ONNX file.
    #[arg(long)]
    pub out: PathBuf,
    /// Store weights as float16 (Cast nodes restore f32 at run time).
    #[arg(long)]
    pub fp16: bool,
    /// Mark the model as trained on synthetic phantoms in its card.
    #[arg(long)]
    pub synthetic: bool,
    /// Override the card's task name.
    #[arg(long)]
    pub task: Option<String>,
}

pub fn run(a: &ExportArgs) -> Result<()> {
    let mut ckpt = Checkpoint::read(&a.checkpoint)?;
    if a.synthetic {
        ckpt.card.provenance.synthetic_data = true;
    }
    if let Some(t) = &a.task {
        ckpt.card.task = t.clone();
    }
    let format = if a.fp16 { WeightFormat::F16 } else { WeightFormat::F32 };
    let done = export_checked(&ckpt, &a.out, format)?;
    println!(
        "wrote {} ({:.1} MB, {} parameters, {}); tract vs burn max |Δp| = {:.2e}",
        a.out.display(),
        done.bytes as f64 / 1e6,
        done.parameters,
        if a.fp16 { "float16 weights" } else { "float32 weights" },
        done.max_diff
    );
    Ok(())
}
