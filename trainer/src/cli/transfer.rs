//! `edge-seg-train transfer` and `edge-seg-train experiment`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use edge_seg_export::Checkpoint;
use edge_seg_models::labels::Task;
use edge_seg_models::Manifest;

use super::base::{train_config, TrainArgs};
use crate::device::{parse_device, set_threads};
use crate::experiment::{run_experiment, ExperimentPlan};
use crate::train::{RunOptions, Trainable};
use crate::transfer::{task_spec, transfer, HeadInit, Strategy, TransferPlan};

/// Transfer settings shared by both commands.
#[derive(Debug, Args, Clone)]
pub struct TransferArgs {
    /// Head initialisation for vanilla and finetune: fresh or keep-last.
    #[arg(long, default_value = "fresh")]
    pub head: String,
    /// Layers trained in fine-tuning's first phase (the last 3x3x3 conv and the head: 2).
    #[arg(long, default_value_t = 2)]
    pub tail: usize,
    /// Iterations of fine-tuning's first phase (default: half the budget).
    #[arg(long)]
    pub phase1: Option<u64>,
    /// Learning rate of fine-tuning's second phase (default: a tenth of --lr).
    #[arg(long)]
    pub phase2_lr: Option<f64>,
}

impl TransferArgs {
    fn plan(&self, strategy: Strategy, iterations: u64, lr: f64) -> Result<TransferPlan> {
        Ok(TransferPlan {
            strategy,
            head: HeadInit::parse(&self.head).with_context(|| "--head must be fresh or keep-last")?,
            tail: self.tail.max(1),
            phase1: self.phase1.unwrap_or(iterations / 2),
            phase2_lr: self.phase2_lr.unwrap_or(lr / 10.0),
        })
    }
}

#[derive(Debug, Args)]
pub struct TransferCmd {
    /// Base checkpoint directory.
    #[arg(long)]
    pub base: PathBuf,
    /// The task's dataset manifest.
    #[arg(long)]
    pub manifest: PathBuf,
    /// scratch, vanilla or finetune.
    #[arg(long)]
    pub strategy: String,
    /// Use only the first N training cases.
    #[arg(long)]
    pub train_cases: Option<usize>,
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub transfer: TransferArgs,
    #[command(flatten)]
    pub train: TrainArgs,
}

pub fn run_transfer(a: &TransferCmd) -> Result<()> {
    if let Some(t) = a.train.threads {
        set_threads(t)?;
    }
    let device = parse_device(&a.train.device)?;
    let base = Checkpoint::read(&a.base)?;
    let text =
        std::fs::read_to_string(&a.manifest).with_context(|| format!("{}: cannot read", a.manifest.display()))?;
    let manifest = Manifest::from_json(&text).with_context(|| format!("{}: invalid manifest", a.manifest.display()))?;
    let strategy = Strategy::parse(&a.strategy).with_context(|| "--strategy must be scratch, vanilla or finetune")?;
    // The task network is the base network with the task's classes.
    let spec = task_spec(&base.card.network, manifest.vocabulary.len());
    let mut cfg = train_config(
        &a.train,
        &a.manifest,
        &manifest,
        &manifest.name,
        strategy.name(),
        Trainable::All,
        Some(spec),
    )?;
    cfg.max_train_cases = a.train_cases;
    let plan = a.transfer.plan(strategy, cfg.iterations, cfg.lr)?;
    let opts = RunOptions {
        quiet: a.train.quiet,
        resume: a.train.resume,
        stop_after: None,
    };
    let (o, ckpt) = transfer(&cfg, &base, &plan, &a.out, &device, &opts)?;
    println!(
        "{} transfer: {} iterations in {:.0} s; final checkpoint {}",
        strategy.name(),
        o.iterations,
        o.seconds,
        ckpt.display()
    );
    Ok(())
}

#[derive(Debug, Args)]
pub struct ExperimentCmd {
    /// Base checkpoint directory.
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
    #[arg(long, default_value_t = 2)]
    pub seeds: u64,
    /// Held-out test cases (generated with the task's phantoms).
    #[arg(long, default_value_t = 10)]
    pub test_cases: usize,
    /// Output folder: data/, runs/, results.csv, results.md, dice_vs_size.png.
    #[arg(long)]
    pub out: PathBuf,
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

pub fn run_experiment_cmd(a: &ExperimentCmd) -> Result<()> {
    if let Some(t) = a.train.threads {
        set_threads(t)?;
    }
    let device = parse_device(&a.train.device)?;
    let task = Task::from_name(&a.task).with_context(|| format!("unknown --task {:?}", a.task))?;
    if a.sizes.is_empty() || a.sizes.contains(&0) {
        bail!("--sizes must be positive");
    }
    let strategies: Vec<Strategy> = a
        .strategies
        .iter()
        .map(|s| Strategy::parse(s).with_context(|| format!("unknown strategy {s:?}")))
        .collect::<Result<_>>()?;
    let base = Checkpoint::read(&a.base)?;
    // A template config: the manifest, spec, seed and case count are set per run.
    let placeholder = Manifest {
        format_version: edge_seg_models::manifest::MANIFEST_FORMAT_VERSION,
        name: task.name().into(),
        vocabulary: task.labels().iter().map(|s| s.to_string()).collect(),
        sources: Default::default(),
        cases: vec![],
    };
    let mut train = a.train.clone();
    train.cache = Some(a.train.cache.clone().unwrap_or_else(|| a.out.join("cache")));
    let spec = task_spec(&base.card.network, placeholder.vocabulary.len());
    let mut cfg = train_config(
        &train,
        &a.out.join("data/manifest.json"),
        &placeholder,
        task.name(),
        "",
        Trainable::All,
        Some(spec),
    )?;
    if a.train.spacing == "3" {
        // Default: the base model's spacing.
        cfg.spacing_mm = base.card.spacing_mm;
    }
    cfg.val_every = 0;
    let plan = ExperimentPlan {
        task,
        sizes: a.sizes.clone(),
        strategies,
        seeds: a.seeds,
        test_cases: a.test_cases,
        transfer: a.transfer.plan(Strategy::Scratch, cfg.iterations, cfg.lr)?,
        config: cfg,
        data_seed: a.data_seed,
        inplane_mm: super::parse_range(&a.inplane_mm).map_err(anyhow::Error::msg)?,
        slice_mm: super::parse_range(&a.slice_mm).map_err(anyhow::Error::msg)?,
        eval_tile: a.eval_tile,
    };
    let results = run_experiment(&plan, &a.base, &a.out, &device, a.train.quiet)?;
    println!(
        "{} runs; results in {}",
        results.len(),
        a.out.join("results.csv").display()
    );
    Ok(())
}
