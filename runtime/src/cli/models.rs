//! `edge-seg models`: the models built into this binary, with their cards.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use edge_seg_runtime::builtin::{default_model_bytes, DEFAULT_MODEL};
use edge_seg_runtime::model::{Model, ModelSource};

#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Print the full cards as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: &ModelsArgs) -> Result<ExitCode> {
    let mut models = Vec::new();
    if let Some(bytes) = default_model_bytes() {
        models.push(Model::from_bytes(bytes, ModelSource::Builtin(DEFAULT_MODEL), None)?);
    }
    if a.json {
        let cards: Vec<serde_json::Value> = models
            .iter()
            .map(|m| serde_json::json!({"name": DEFAULT_MODEL, "bytes": m.bytes, "card": m.card}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&cards)?);
        return Ok(ExitCode::SUCCESS);
    }
    if models.is_empty() {
        println!("no built-in models in this build; use --model FILE.onnx");
    }
    for m in &models {
        let c = &m.card;
        println!("{DEFAULT_MODEL}: {}", m.describe());
        println!("  labels:   {}", c.labels[1..].join(", "));
        println!(
            "  network:  {} levels, {} base filters, {:?} plan, {:?} padding",
            c.network.levels, c.network.base_filters, c.network.channel_plan, c.network.padding
        );
        println!(
            "  weights:  sha256 {} ({:.1} MB)",
            c.weights_sha256,
            m.bytes as f64 / 1e6
        );
        if c.provenance.synthetic_data {
            println!(
                "  trained on synthetic phantoms (edge-seg-train phantoms); for trying edge-seg, not for diagnosis"
            );
        }
        if let Some(d) = c.provenance.validation_dice {
            println!("  validation Dice: {d:.3}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
