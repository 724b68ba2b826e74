//! `edge-seg-train compare-results`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::experiment::comparison::{compare_result_sets, ResultSet};
use crate::experiment::read_results;

#[derive(Debug, Args)]
pub struct CompareResultsArgs {
    /// NAME=DIR: one condition's experiment results (a base model, a stopping
    /// rule), DIR/TASK/results.jsonl per task (as `experiment --out DIR/TASK`
    /// writes them). Two or more; the first is the reference the others are
    /// compared with.
    #[arg(required = true, num_args = 2..)]
    pub sets: Vec<String>,
    /// Tasks to compare.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "esophagus,vertebrae,lung-lobes,prostate"
    )]
    pub tasks: Vec<String>,
    /// Strategies to compare.
    #[arg(long, value_delimiter = ',', default_value = "vanilla,finetune")]
    pub strategies: Vec<String>,
    /// Markdown file to write (default: print).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(a: &CompareResultsArgs) -> Result<()> {
    let mut sets = Vec::new();
    for spec in &a.sets {
        let Some((name, dir)) = spec.split_once('=') else {
            bail!("{spec:?}: give a result set as NAME=DIR");
        };
        let dir = PathBuf::from(dir);
        if !dir.is_dir() {
            bail!("{}: not a directory (result set {name})", dir.display());
        }
        let mut rows = Vec::new();
        for task in &a.tasks {
            rows.extend(read_results(&dir.join(task))?);
        }
        sets.push(ResultSet {
            name: name.to_string(),
            rows,
        });
    }
    let md = compare_result_sets(&sets, &a.tasks, &a.strategies)?;
    match &a.out {
        Some(path) => edge_seg_models::atomic::write_bytes(path, md.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{md}"),
    }
    Ok(())
}
