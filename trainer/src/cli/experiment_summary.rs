//! `edge-seg-train experiment-summary`.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use crate::experiment::{read_results, write_summaries};

#[derive(Debug, Args)]
pub struct ExperimentSummaryArgs {
    /// Results folders of `experiment` (one per task).
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
    /// Folder for the summary over all of them: results.csv, results.md,
    /// dice_vs_size.png and learning_curves.png (one panel per task).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(a: &ExperimentSummaryArgs) -> Result<()> {
    let mut rows = Vec::new();
    for dir in &a.results {
        let found = read_results(dir)?;
        if found.is_empty() {
            bail!("{}: no runs recorded", dir.display());
        }
        rows.extend(found);
    }
    std::fs::create_dir_all(&a.out)?;
    write_summaries(&rows, &a.out)?;
    println!("{} runs; summary in {}", rows.len(), a.out.display());
    Ok(())
}
