//! The `edge-seg` command line: one module per subcommand.

mod info;

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
    /// Describe a NIfTI volume: shape, datatype, spacing, orientation, affine, intensities.
    Info(info::InfoArgs),
}

/// Run the CLI with the process arguments; the exit code says whether every
/// input was processed.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(args) => info::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("edge-seg: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
