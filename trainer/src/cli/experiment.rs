//! `edge-seg-train experiment`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use edge_seg_models::card::Modality;
use edge_seg_models::labels::Task;
use edge_seg_models::Manifest;

use super::base::{train_config, TrainArgs};
use super::transfer_settings::{settings_from_base, TransferArgs};
use crate::base_model::load_base;
use crate::device::{choose_devices, set_threads};
use crate::experiment::{run_experiment, ExperimentPlan};
use crate::train::Trainable;
use crate::transfer::Strategy;

#[derive(Debug, Args)]
pub struct ExperimentCmd {
    /// Base model: `default` (the shipped base) or a checkpoint directory
    /// (settings as for `transfer`).
    #[arg(long)]
    pub base: PathBuf,
    /// esophagus, vertebrae, lung-lobes or prostate.
    #[arg(long)]
    pub task: String,
    /// Training-set sizes.
    #[arg(long, default_value = "1,2,5,10", value_delimiter = ',')]
    pub sizes: Vec<usize>,
    /// Strategies.
    #[arg(long, default_value = "scratch,vanilla,finetune", value_delimiter = ',')]
    pub strategies: Vec<String>,
    /// Seeds per (size, strategy).
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// Held-out test cases (generated with the task's phantoms).
    #[arg(long, default_value_t = 10)]
    pub test_cases: usize,
    /// Validation phantoms generated with the task's data: each run keeps
    /// its best checkpoint on them, and `--patience` stops on them.
    #[arg(long, default_value_t = 2)]
    pub val_phantoms: usize,
    /// Results folder, meant to be committed: results.jsonl (one row per
    /// finished run; the runs it holds are skipped), results.csv,
    /// results.md, dice_vs_size.png, learning_curves.png.
    #[arg(long)]
    pub out: PathBuf,
    /// Work folder for the task's data, caches and run checkpoints
    /// [default: OUT/work].
    #[arg(long)]
    pub work: Option<PathBuf>,
    /// Seed of the task's phantom data set.
    #[arg(long, default_value_t = 77)]
    pub data_seed: u64,
    /// In-plane spacing range of the task's phantoms, mm.
    #[arg(long, default_value = "2.5-3")]
    pub inplane_mm: String,
    /// Slice spacing range of the task's phantoms, mm.
    #[arg(long, default_value = "3-5")]
    pub slice_mm: String,
    /// Tile edge for evaluation.
    #[arg(long, default_value_t = 96)]
    pub eval_tile: usize,
    #[command(flatten)]
    pub transfer: TransferArgs,
    #[command(flatten)]
    pub train: TrainArgs,
}

pub fn run(a: &ExperimentCmd) -> Result<()> {
    if let Some(t) = a.train.threads {
        set_threads(t)?;
    }
    let (device, parallel_devices) = choose_devices(&a.train.device, &a.train.devices)?;
    let task = Task::from_name(&a.task).with_context(|| format!("unknown --task {:?}", a.task))?;
    if a.sizes.is_empty() || a.sizes.contains(&0) {
        bail!("--sizes must be positive");
    }
    let strategies: Vec<Strategy> = a
        .strategies
        .iter()
        .map(|s| Strategy::parse(s).with_context(|| format!("unknown strategy {s:?}")))
        .collect::<Result<_>>()?;
    let base = load_base(&a.base)?;
    // A template config: the manifest, spec, seed and case count are set per run.
    let placeholder = Manifest {
        format_version: edge_seg_models::manifest::MANIFEST_FORMAT_VERSION,
        name: task.name().into(),
        vocabulary: task.labels().iter().map(|s| s.to_string()).collect(),
        sources: Default::default(),
        cases: vec![],
    };
    let modality = if task == Task::Prostate {
        Modality::MR
    } else {
        Modality::CT
    };
    let (mut train, spec) = settings_from_base(&a.train, &base, placeholder.vocabulary.len(), modality)?;
    let work = a.work.clone().unwrap_or_else(|| a.out.join("work"));
    train.cache = Some(a.train.cache.clone().unwrap_or_else(|| work.join("cache")));
    let cfg = train_config(
        &train,
        &work.join("data/manifest.json"),
        &placeholder,
        task.name(),
        "",
        Trainable::All,
        Some(spec),
    )?;
    let plan = ExperimentPlan {
        task,
        sizes: a.sizes.clone(),
        strategies,
        seeds: a.seeds,
        test_cases: a.test_cases,
        val_cases: a.val_phantoms,
        transfer: a.transfer.plan(Strategy::Scratch, cfg.iterations, cfg.lr)?,
        config: cfg,
        data_seed: a.data_seed,
        inplane_mm: super::parse_range(&a.inplane_mm).map_err(anyhow::Error::msg)?,
        slice_mm: super::parse_range(&a.slice_mm).map_err(anyhow::Error::msg)?,
        eval_tile: a.eval_tile,
    };
    let results = run_experiment(&plan, &base, &a.out, &work, &device, &parallel_devices, a.train.quiet)?;
    println!(
        "{} runs; results in {}",
        results.len(),
        a.out.join("results.csv").display()
    );
    Ok(())
}
