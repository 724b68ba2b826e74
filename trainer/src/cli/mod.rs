//! The `edge-seg-train` command line: one module per subcommand.

mod base;
mod bench;
mod compare_results;
mod experiment;
mod experiment_summary;
mod export;
mod import;
mod phantoms;
mod predict;
mod random_model;
mod transfer;
mod transfer_settings;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use base::{network_spec, parse_spacing, train_config, SpecArgs, TrainArgs};

/// edge-seg-train: train 3D U-Nets on sparsely annotated scans, transfer them
/// to new tasks, and export them for the edge-seg runtime.
#[derive(Debug, Parser)]
#[command(name = "edge-seg-train", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate synthetic CT/MR phantoms with labels, an nnU-Net layout and a manifest.
    Phantoms(phantoms::PhantomsArgs),
    /// Write a manifest for an nnU-Net v2 or Medical Segmentation Decathlon data set.
    Import(import::ImportArgs),
    /// Train a base model on a (sparsely annotated) data set.
    Base(base::BaseArgs),
    /// Transfer a base model to a task: scratch, vanilla or finetune.
    Transfer(transfer::TransferCmd),
    /// Run the transfer experiment grid for a task and summarise it.
    Experiment(experiment::ExperimentCmd),
    /// Summarise several tasks' experiment results in one table and plot.
    ExperimentSummary(experiment_summary::ExperimentSummaryArgs),
    /// Compare the same transfers run under different conditions (base models, stopping rules).
    CompareResults(compare_results::CompareResultsArgs),
    /// Segment scans with a training checkpoint.
    Predict(predict::PredictArgs),
    /// Export a checkpoint to one ONNX file, verified against the burn model.
    Export(export::ExportArgs),
    /// Write an ONNX model with random weights for a network spec (for benchmarks).
    RandomModel(random_model::RandomModelArgs),
    /// Time training steps (forward + backward + Adam) of a network on random data.
    Bench(bench::BenchArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Phantoms(a) => phantoms::run(&a),
        Command::Import(a) => import::run(&a),
        Command::Base(a) => base::run(&a),
        Command::Transfer(a) => transfer::run(&a),
        Command::Experiment(a) => experiment::run(&a),
        Command::ExperimentSummary(a) => experiment_summary::run(&a),
        Command::CompareResults(a) => compare_results::run(&a),
        Command::Predict(a) => predict::run(&a),
        Command::Export(a) => export::run(&a),
        Command::Bench(a) => bench::run(&a),
        Command::RandomModel(a) => random_model::run(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "edge-seg-train: error: {}",
                edge_seg_runtime::error_text::error_text(&e)
            );
            ExitCode::FAILURE
        }
    }
}

/// Parse `a-b` (or a single value) as an inclusive range.
pub(crate) fn parse_range(s: &str) -> Result<(f64, f64), String> {
    let parts: Vec<&str> = s.split('-').collect();
    let num = |t: &str| t.trim().parse::<f64>().map_err(|_| format!("invalid number in {s:?}"));
    let (a, b) = match parts.as_slice() {
        [a] => (num(a)?, num(a)?),
        [a, b] => (num(a)?, num(b)?),
        _ => return Err(format!("expected a value or a range like 0.7-1.0, got {s:?}")),
    };
    if !(a > 0.0 && b >= a && b.is_finite()) {
        return Err(format!("range {s:?} must be positive and ascending"));
    }
    Ok((a, b))
}
