//! The `edge-seg` command line: one module per subcommand.

mod bench;

mod infer;
mod info;
mod model_args;
mod models;
mod stats;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// edge-seg: 3D segmentation of CT and MR scans on the machine beside the scanner.
#[derive(Debug, Parser)]
#[command(name = "edge-seg", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Segment scans: write SCAN.seg.nii.gz, a colour table and a JSON report beside each.
    Infer(infer::InferArgs),
    /// Describe a NIfTI volume: shape, datatype, spacing, orientation, affine, intensities.
    Info(info::InfoArgs),
    /// List the models built into this binary.
    Models(models::ModelsArgs),
    /// Time a model's tiles on a backend.
    Bench(bench::BenchArgs),
    /// Per-structure report of an existing label map over its scan: volume, intensity, centroid, box.
    Stats(stats::StatsArgs),
}

/// Run the CLI with the process arguments; the exit code says whether every
/// input was processed.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Infer(args) => infer::run(&args),
        Command::Info(args) => info::run(&args),
        Command::Models(args) => models::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Stats(args) => stats::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("edge-seg: error: {}", edge_seg_runtime::error_text::error_text(&e));
            ExitCode::FAILURE
        }
    }
}
