//! `edge-seg-train transfer`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use edge_seg_models::card::Modality;
use edge_seg_models::Manifest;

use super::base::{train_config, TrainArgs};
use super::transfer_settings::{settings_from_base, TransferArgs};
use crate::base_model::load_base;
use crate::device::{choose_devices, set_threads};
use crate::train::{RunOptions, Trainable};
use crate::transfer::{transfer, Strategy};

#[derive(Debug, Args)]
pub struct TransferCmd {
    /// Base model: `default` (the shipped base) or a checkpoint directory.
    /// The task network, spacing, patch and intensity window default to the
    /// base's; a flag that contradicts them is refused.
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

pub fn run(a: &TransferCmd) -> Result<()> {
    if let Some(t) = a.train.threads {
        set_threads(t)?;
    }
    let (chosen, parallel_devices) = choose_devices(&a.train.device, &a.train.devices)?;
    let device = chosen.device;
    let base = load_base(&a.base)?;
    let text =
        std::fs::read_to_string(&a.manifest).with_context(|| format!("{}: cannot read", a.manifest.display()))?;
    let manifest = Manifest::from_json(&text).with_context(|| format!("{}: invalid manifest", a.manifest.display()))?;
    let strategy = Strategy::parse(&a.strategy).with_context(|| "--strategy must be scratch, vanilla or finetune")?;
    let modality = manifest.cases.first().map(|c| c.modality).unwrap_or(Modality::CT);
    let (train, spec) = settings_from_base(&a.train, &base, manifest.vocabulary.len(), modality)?;
    let mut cfg = train_config(
        &train,
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
        parallel_devices,
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
