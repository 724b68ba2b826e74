//! The transfer experiment: for a task, every (training-set size, strategy,
//! seed) run with the same budget (a cap on iterations, and optionally a
//! patience on validation Dice), each evaluated on the same held-out test
//! cases (Dice and HD95 per class on the scans' own grids), summarised as
//! `results.csv`, a Markdown table with paired bootstrap intervals, and a
//! plot of Dice against training-set size.
//!
//! The results folder holds one row per finished run in `results.jsonl`
//! and is meant to be committed: the same command on a fresh clone skips
//! every run already there. Data, caches and checkpoints live in a separate
//! work folder.
//!
//! - [`report`]: a task's tables and plot, and the summary over tasks;
//! - [`bases`]: the same strategies transferred from different base models.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use burn::prelude::*;
use edge_seg_models::card::Modality;
use edge_seg_models::labels::Task;
use edge_seg_models::manifest::Split;
use serde::{Deserialize, Serialize};

use crate::base_model::BaseModel;
use crate::data::Dataset;
use crate::device::Chosen;
use crate::metrics::{dice, hd95};
use crate::phantom::{generate, PhantomOptions};
use crate::predict::CheckpointPredictor;
use crate::train::{CannotResume, RunOptions, TrainConfig};
use crate::transfer::{transfer, Strategy, TransferPlan};

pub mod comparison;
pub mod report;

pub use report::{paired_difference, write_summaries, PairedDifference};

/// One finished run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunResult {
    pub task: String,
    pub strategy: String,
    pub size: usize,
    pub seed: u64,
    pub dice: f64,
    pub hd95_mm: Option<f64>,
    pub dice_per_class: BTreeMap<String, f64>,
    pub hd95_per_class: BTreeMap<String, f64>,
    pub train_seconds: f64,
    /// Iterations trained (both phases for fine-tuning).
    pub iterations: u64,
    pub test_cases: usize,
    /// Mean Dice over the classes of each test case, in test-case order
    /// (pairs runs of the same seed for the paired comparison).
    #[serde(default)]
    pub dice_per_case: Vec<f64>,
    /// Validation stopped improving before the iteration cap.
    #[serde(default)]
    pub stopped_early: bool,
    /// The `--device` the run trained on, resolved.
    #[serde(default)]
    pub device: String,
    /// Fingerprint of the test phantoms the run was scored on
    /// ([`test_set_fingerprint`]): rows are compared only on one test set.
    #[serde(default)]
    pub test_set: String,
    /// `weights_sha256` of the base model the transfers started from.
    #[serde(default)]
    pub base_weights_sha256: String,
    /// Validation Dice by iteration (fine-tuning's phase 2 counted after
    /// the iterations phase 1 trained): the learning curve behind
    /// `iterations`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation: Vec<(u64, f64)>,
}

/// The results folder's record of finished runs, one JSON object a line.
pub const RESULTS_FILE: &str = "results.jsonl";

/// The results file of `out` and its text (empty when it does not exist yet).
fn results_text(out: &Path) -> Result<(PathBuf, String)> {
    let path = out.join(RESULTS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) => Ok((path, t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((path, String::new())),
        Err(e) => Err(e).with_context(|| format!("{}: cannot read", path.display())),
    }
}

/// The finished runs recorded in `out` (none when the file is absent).
pub fn read_results(out: &Path) -> Result<Vec<RunResult>> {
    let (path, text) = results_text(out)?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{}: line {}: not a run result", path.display(), i + 1))
        })
        .collect()
}

/// Append one run to `out`'s results, keeping the rows already there byte
/// for byte (a committed file changes only by the new line).
fn append_result(out: &Path, r: &RunResult) -> Result<()> {
    let (path, mut text) = results_text(out)?;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&serde_json::to_string(r)?);
    text.push('\n');
    edge_seg_models::atomic::write_bytes(&path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The grid and how each run trains.
#[derive(Clone, Debug)]
pub struct ExperimentPlan {
    pub task: Task,
    pub sizes: Vec<usize>,
    pub strategies: Vec<Strategy>,
    pub seeds: u64,
    pub test_cases: usize,
    /// Validation phantoms generated with the task's data (for patience and
    /// the best checkpoint).
    pub val_cases: usize,
    /// Template for every run (spec, spacing, iterations...). `manifest`,
    /// `seed`, `max_train_cases` are set per run.
    pub config: TrainConfig,
    pub transfer: TransferPlan,
    /// Phantom generation for the task's data set.
    pub data_seed: u64,
    pub inplane_mm: (f64, f64),
    pub slice_mm: (f64, f64),
    /// Tile edge for evaluation.
    pub eval_tile: usize,
}

/// Training phantoms generated for a task whatever sizes are asked for (more
/// when a size exceeds it), so that the validation and test phantoms, which
/// are generated after the training ones, are the same for a grid run in
/// parts (`--sizes 1` today, `--sizes 10` on another machine).
pub const TRAIN_POOL: usize = 10;

/// SHA-256 (hex, first 16 digits) of the test cases' label maps, shape and
/// voxels, in manifest order: names the test set a row was scored on.
pub fn test_set_fingerprint(manifest: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let ds = Dataset::load(manifest)?;
    let mut h = Sha256::new();
    for case in ds.manifest.cases_in(Split::Test) {
        let (_, truth) = ds.read_case(case)?;
        let truth = truth.ok_or_else(|| anyhow!("test case {} has no labels", case.id))?;
        for d in truth.shape() {
            h.update((*d as u64).to_le_bytes());
        }
        for v in truth.iter() {
            h.update(v.to_le_bytes());
        }
    }
    Ok(hex::encode(h.finalize())[..16].to_string())
}

fn run_name(task: &str, strategy: &str, size: usize, seed: u64) -> String {
    format!("{task}-{strategy}-n{size}-s{seed}")
}

/// The task's phantom data set in the work folder (generated once, then
/// reused).
pub fn task_dataset(plan: &ExperimentPlan, work: &Path) -> Result<PathBuf> {
    let data = work.join("data");
    let pool = (*plan.sizes.iter().max().unwrap_or(&1)).max(TRAIN_POOL);
    let existing = std::fs::read_dir(&data)
        .ok()
        .and_then(|mut rd| rd.find_map(|e| e.ok().map(|e| e.path().join("manifest.json")).filter(|p| p.exists())));
    if let Some(m) = existing {
        let ds = Dataset::load(&m)?;
        let m_ = &ds.manifest;
        if m_.cases_in(Split::Train).count() == pool
            && m_.cases_in(Split::Val).count() == plan.val_cases
            && m_.cases_in(Split::Test).count() == plan.test_cases
        {
            return Ok(m);
        }
        // Generated for another layout: start the data set over.
        std::fs::remove_dir_all(&data).with_context(|| format!("cannot remove {}", data.display()))?;
    }
    let g = generate(
        &PhantomOptions {
            out: data,
            cases: pool,
            seed: plan.data_seed,
            modality: if plan.task == Task::Prostate {
                Modality::MR
            } else {
                Modality::CT
            },
            task: Some(plan.task),
            sparse: false,
            complete_fraction: 1.0,
            label_all: false,
            structures: Vec::new(),
            val: plan.val_cases,
            test: plan.test_cases,
            inplane_mm: plan.inplane_mm,
            slice_mm: plan.slice_mm,
            orientations: vec!["LPS".into(), "RAS".into(), "LAS".into()],
            dataset_id: 950 + Task::ALL.iter().position(|t| *t == plan.task).unwrap_or(0) as u32,
            name: None,
        },
        |_, _| {},
    )?;
    Ok(g.manifest)
}

/// Evaluate a checkpoint on the test cases, predicting on `device`: mean
/// Dice and HD95 per class.
pub fn evaluate(ckpt: &Path, manifest: &Path, tile: usize, device: &Device) -> Result<Evaluation> {
    let model = CheckpointPredictor::from_checkpoint(ckpt, device.clone())?;
    let ds = Dataset::load(manifest)?;
    let tile = crate::predict::tile_for(&model.card.network, tile);
    let mut dices: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut hds: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let cases: Vec<_> = ds.manifest.cases_in(Split::Test).collect();
    let mut per_case = Vec::new();
    for case in &cases {
        let (vol, truth) = ds.read_case(case)?;
        let truth = truth.ok_or_else(|| anyhow!("test case {} has no labels", case.id))?;
        let pred = model.predict_volume(&vol, &ds.resolve(&case.image), tile)?;
        let spacing_kji = edge_seg_runtime::geometry::reversed(vol.spacing());
        let mut case_dice = Vec::new();
        for (c, name) in ds.manifest.vocabulary.iter().enumerate().skip(1) {
            // An absent-and-not-predicted class has no Dice; count a miss as 0.
            if let Some(d) = dice(pred.view(), truth.view(), c as u16) {
                dices.entry(name.clone()).or_default().push(d);
                case_dice.push(d);
            }
            if let Some(h) = hd95(pred.view(), truth.view(), c as u16, spacing_kji) {
                hds.entry(name.clone()).or_default().push(h);
            }
        }
        per_case.push(if case_dice.is_empty() {
            0.0
        } else {
            case_dice.iter().sum::<f64>() / case_dice.len() as f64
        });
    }
    let mean = |m: BTreeMap<String, Vec<f64>>| -> BTreeMap<String, f64> {
        m.into_iter()
            .map(|(k, v)| (k, v.iter().sum::<f64>() / v.len() as f64))
            .collect()
    };
    Ok(Evaluation {
        dice_per_class: mean(dices),
        hd95_per_class: mean(hds),
        dice_per_case: per_case,
    })
}

/// A checkpoint's scores on the test cases.
pub struct Evaluation {
    /// Mean over the test cases, per class.
    pub dice_per_class: BTreeMap<String, f64>,
    pub hd95_per_class: BTreeMap<String, f64>,
    /// Mean over the classes, per test case.
    pub dice_per_case: Vec<f64>,
}

/// Run the grid, skipping the runs `out`'s results already hold, and write
/// the summaries after each run (so an interrupted grid keeps what it did).
/// Data, caches and run folders go to `work`.
pub fn run_experiment(
    plan: &ExperimentPlan,
    base_model: &BaseModel,
    out: &Path,
    work: &Path,
    device: &Chosen,
    parallel_devices: &[Device],
    quiet: bool,
) -> Result<Vec<RunResult>> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut results = read_results(out)?;
    let base = &base_model.checkpoint;
    let todo: Vec<(usize, Strategy, u64)> = plan
        .sizes
        .iter()
        .flat_map(|&size| {
            plan.strategies
                .iter()
                .flat_map(move |&st| (0..plan.seeds).map(move |seed| (size, st, seed)))
        })
        .filter(|(size, st, seed)| {
            !results
                .iter()
                .any(|r| r.task == plan.task.name() && r.strategy == st.name() && r.size == *size && r.seed == *seed)
        })
        .collect();
    let total = plan.sizes.len() * plan.strategies.len() * plan.seeds as usize;
    if !quiet {
        eprintln!(
            "{}: {} of {total} runs recorded in {}; {} to do",
            plan.task.name(),
            total - todo.len(),
            out.join(RESULTS_FILE).display(),
            todo.len()
        );
    }
    if todo.is_empty() {
        write_summaries(&results, out)?;
        return Ok(results);
    }
    let manifest = task_dataset(plan, work)?;
    let vocabulary = Dataset::load(&manifest)?.manifest.vocabulary;
    let test_set = test_set_fingerprint(&manifest)?;
    let base_sha = &base.card.weights_sha256;
    if let Some(r) = results
        .iter()
        .find(|r| r.task == plan.task.name() && &r.base_weights_sha256 != base_sha)
    {
        bail!(
            "{}: the run {} started from another base model (weights {:?}, this one {base_sha:?}): \
             use a new --out folder",
            out.join(RESULTS_FILE).display(),
            run_name(&r.task, &r.strategy, r.size, r.seed),
            r.base_weights_sha256
        );
    }
    if let Some(r) = results
        .iter()
        .find(|r| r.task == plan.task.name() && r.test_set != test_set)
    {
        bail!(
            "{}: the run {} was scored on test set {:?}, but this grid's test phantoms are {test_set:?} \
             (another data seed, test count or training pool): use a new --out folder",
            out.join(RESULTS_FILE).display(),
            run_name(&r.task, &r.strategy, r.size, r.seed),
            r.test_set
        );
    }
    for (n, &(size, strategy, seed)) in todo.iter().enumerate() {
        let name = run_name(plan.task.name(), strategy.name(), size, seed);
        let dir = work.join("runs").join(&name);
        let mut cfg = plan.config.clone();
        cfg.manifest = manifest.clone();
        cfg.spec = crate::transfer::task_spec(&base.card.network, vocabulary.len());
        cfg.task = plan.task.name().to_string();
        cfg.seed = 1000 * seed + size as u64;
        cfg.max_train_cases = Some(size);
        cfg.modality = if plan.task == Task::Prostate {
            Modality::MR
        } else {
            Modality::CT
        };
        // CT tasks keep a window given on the command line.
        cfg.intensity = match (cfg.modality, plan.config.intensity) {
            (Modality::CT, w @ edge_seg_models::card::Intensity::Window { .. }) => w,
            (Modality::CT, _) => edge_seg_models::card::Intensity::ct_default(),
            (Modality::MR, _) => edge_seg_models::card::Intensity::ZScore,
        };
        let tp = TransferPlan {
            strategy,
            ..plan.transfer.clone()
        };
        // A run not in the results resumes from its last checkpoint (an
        // interrupted grid loses at most the iterations since it), unless
        // that checkpoint cannot be resumed (other settings, or an optimiser
        // state this version cannot read): then it starts over.
        let opts = RunOptions {
            quiet: true,
            resume: true,
            parallel_devices: parallel_devices.to_vec(),
            ..Default::default()
        };
        let run = || transfer(&cfg, base_model, &tp, &dir, &device.device, &opts);
        let (outcome, final_ckpt) = match run() {
            Err(e) if e.downcast_ref::<CannotResume>().is_some() => {
                eprintln!("warning: {name}: {e}; starting it over");
                std::fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
                run()?
            }
            r => r?,
        };
        // Training time summed over every sitting the run took.
        let train_seconds = outcome.seconds;
        let ev = evaluate(&final_ckpt, &manifest, plan.eval_tile, &device.device)?;
        let classes = vocabulary.len() - 1;
        let dice = ev.dice_per_class.values().sum::<f64>() / classes as f64;
        let hd95_mm = if ev.hd95_per_class.is_empty() {
            None
        } else {
            Some(ev.hd95_per_class.values().sum::<f64>() / ev.hd95_per_class.len() as f64)
        };
        let r = RunResult {
            task: plan.task.name().into(),
            strategy: strategy.name().into(),
            size,
            seed,
            dice,
            hd95_mm,
            test_cases: ev.dice_per_case.len(),
            dice_per_class: ev.dice_per_class,
            hd95_per_class: ev.hd95_per_class,
            train_seconds,
            iterations: outcome.iterations,
            dice_per_case: ev.dice_per_case,
            stopped_early: outcome.stopped_early,
            device: device.name.clone(),
            test_set: test_set.clone(),
            base_weights_sha256: base_sha.clone(),
            validation: outcome.validation,
        };
        if !quiet {
            eprintln!(
                "[{}/{}] {name}: Dice {:.3} after {} iterations{} ({:.0} s)",
                n + 1,
                todo.len(),
                r.dice,
                r.iterations,
                if r.stopped_early { ", stopped early" } else { "" },
                train_seconds
            );
        }
        append_result(out, &r)?;
        results.push(r);
        write_summaries(&results, out)?;
    }
    Ok(results)
}
