//! `edge-seg-train transfer` and `edge-seg-train experiment`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use edge_seg_models::card::{Intensity, Modality};
use edge_seg_models::labels::Task;
use edge_seg_models::spec::NetworkSpec;
use edge_seg_models::Manifest;

use super::base::{override_spec, parse_spacing, parse_window, train_config, TrainArgs};
use crate::base_model::{load_base, BaseModel};
use crate::device::{choose_devices, set_threads};
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
    /// Learning rate of fine-tuning's second phase (default: --lr; measured
    /// against a tenth of it in docs/experiments/finetune).
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
            phase2_lr: self.phase2_lr.unwrap_or(lr),
        })
    }
}

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

pub fn run_transfer(a: &TransferCmd) -> Result<()> {
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
    /// results.md, dice_vs_size.png.
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

pub fn run_experiment_cmd(a: &ExperimentCmd) -> Result<()> {
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

/// The task's training arguments with the base model's settings filled in,
/// and the task network (the base's, with the task's classes). The network,
/// spacing and (for a task of the base's modality) the intensity window
/// come from the base card, the patch defaults to the base's training tile;
/// a flag that says otherwise is refused, naming both values.
pub fn settings_from_base(
    a: &TrainArgs,
    base: &BaseModel,
    classes: usize,
    modality: Modality,
) -> Result<(TrainArgs, NetworkSpec)> {
    let card = &base.checkpoint.card;
    let name = &base.name;
    let spec = task_spec(&card.network, classes);
    let n = &a.network;
    if let Some(s) = &n.spec {
        bail!("--spec {s}: the task network is the base model's ({name}); drop --spec");
    }
    // The network flags applied to the base's network must leave it unchanged.
    let asked = override_spec(n, spec.clone())?;
    if asked != spec {
        bail!(
            "the network flags ask for {} but the base model {name} is {}: a transferred network must be the base's",
            describe(&asked),
            describe(&spec)
        );
    }
    let mut train = a.clone();
    if let Some(s) = &a.spacing {
        let asked = parse_spacing(s)?;
        if asked != card.spacing_mm {
            bail!(
                "--spacing {s} ({asked:?} mm) contradicts the base model {name}, trained at {:?} mm",
                card.spacing_mm
            );
        }
    }
    train.spacing = Some(
        card.spacing_mm
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(","),
    );
    if modality == card.modality {
        if let Intensity::Window { min, max, .. } = card.intensity {
            if let Some(w) = &a.window {
                if parse_window(w)? != card.intensity {
                    bail!("--window {w} contradicts the base model {name}, trained with the window {min},{max} HU");
                }
            }
            train.window = Some(format!("{min},{max}"));
        }
    }
    if train.patch.is_none() && spec.is_legal_input(card.tile.input[0]) {
        train.patch = Some(card.tile.input[0]);
    }
    Ok((train, spec))
}

/// A spec in words, for messages.
fn describe(s: &NetworkSpec) -> String {
    format!(
        "{} levels, {} filters, {:?} plan, {:?} padding, {:?} upsampling, {:?} normalisation",
        s.levels, s.base_filters, s.channel_plan, s.padding, s.upsampling, s.norm
    )
    .to_lowercase()
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use edge_seg_export::Checkpoint;
    use edge_seg_models::labels::BASE_LABELS;
    use edge_seg_models::spec::{ChannelPlan, Norm, Padding};
    use edge_seg_models::ModelCard;

    use super::*;

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        train: TrainArgs,
    }

    fn args(flags: &[&str]) -> TrainArgs {
        Args::parse_from(std::iter::once("t").chain(flags.iter().copied())).train
    }

    fn base() -> BaseModel {
        let spec = NetworkSpec {
            levels: 3,
            base_filters: 4,
            channel_plan: ChannelPlan::Doubling,
            padding: Padding::Same,
            norm: Norm::Batch,
            ..NetworkSpec::paper(BASE_LABELS.len())
        };
        let window = Intensity::Window {
            min: -1000.0,
            max: 400.0,
            rescale: true,
        };
        let card = ModelCard::new("base", Modality::CT, &BASE_LABELS, spec, [6.0; 3], window, [48; 3]).unwrap();
        BaseModel {
            checkpoint: Checkpoint::random(card, 1),
            name: "default".into(),
        }
    }

    #[test]
    fn settings_default_to_the_base() {
        let (t, spec) = settings_from_base(&args(&[]), &base(), 3, Modality::CT).unwrap();
        assert_eq!(spec.base_filters, 4);
        assert_eq!(spec.norm, Norm::Batch);
        assert_eq!(spec.classes, 3);
        assert_eq!(parse_spacing(t.spacing.as_deref().unwrap()).unwrap(), [6.0; 3]);
        assert_eq!(t.window.as_deref(), Some("-1000,400"));
        assert_eq!(t.patch, Some(48));
        // Flags that agree with the base are accepted; an MR task keeps its own normalisation.
        let agree = args(&[
            "--filters",
            "4",
            "--spacing",
            "6",
            "--window=-1000,400",
            "--patch",
            "64",
        ]);
        let (t, _) = settings_from_base(&agree, &base(), 3, Modality::CT).unwrap();
        assert_eq!(t.patch, Some(64));
        let (t, _) = settings_from_base(&args(&[]), &base(), 2, Modality::MR).unwrap();
        assert_eq!(t.window, None);
    }

    #[test]
    fn flags_that_contradict_the_base_name_both_values() {
        for (flags, want) in [
            (&["--filters", "8"][..], "8 filters"),
            (&["--norm", "none"][..], "none normalisation"),
            (&["--spacing", "3"][..], "[6.0, 6.0, 6.0]"),
            (&["--window=-500,400"][..], "-1000,400"),
            (&["--spec", "paper"][..], "drop --spec"),
        ] {
            let e = settings_from_base(&args(flags), &base(), 3, Modality::CT)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want) && e.contains("default"), "{flags:?}: {e}");
        }
    }
}
