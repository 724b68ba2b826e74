//! Training: base models and transfer runs share this loop.
//!
//! Patches from the sampler → U-Net → sparse-label loss → Adam(W); every
//! `val_every` iterations a sliding-window validation over whole validation
//! cases (on the model grid, with the runtime's exact overlap-tiling), and
//! checkpoints `last/` (and `best/` when the validation Dice improves),
//! written atomically. `metrics.jsonl` gets one line per iteration and per
//! validation; a learning-curve PNG is drawn at the end.

pub mod adam;
pub mod checkpoint;
pub mod config;
pub mod parallel;
pub mod report;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::module::{Flag, Module, ModuleMapper, Param};
use burn::prelude::*;
use edge_seg_export::{Checkpoint, Tensor as WeightTensor};
use edge_seg_models::card::{Decode, Provenance};
use edge_seg_models::labels::left_right_permutation;
use edge_seg_models::manifest::Split;
use edge_seg_models::ModelCard;
use edge_seg_runtime::preprocess::PreprocessSpec;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::data::{prepare_cases, Dataset, PreparedCase, Sampler, SamplerConfig};
use crate::loss::BatchLabels;
use crate::metrics::dice;
use crate::predict::predict_image_labels;
use crate::unet::{LiveChannels, UNet};
pub use adam::Adam;
pub use checkpoint::{read_state, recover, write_checkpoint, TrainState, OPTIMIZER_FILE};
pub use config::{OptimizerKind, Schedule, TrainConfig, Trainable};

/// How a run starts when there is nothing to resume.
#[derive(Clone, Debug)]
pub enum Init {
    /// Random weights from the config's seed, scaled by its `weight_init`.
    Random,
    /// Given weights (transfer from a base model).
    Weights(BTreeMap<String, WeightTensor>),
}

/// How a run behaves, beyond what defines its result.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub quiet: bool,
    /// Continue from `out/last` if present.
    pub resume: bool,
    /// Stop after this many iterations (for tests of resume), leaving a
    /// checkpoint as if interrupted.
    pub stop_after: Option<u64>,
    /// Further devices that each take a share of every batch (data
    /// parallel, [`parallel`]); the run's device holds the model and steps
    /// the optimiser.
    pub parallel_devices: Vec<Device>,
}

/// What a finished run reports.
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    /// Iterations trained (fewer than configured when stopped early).
    pub iterations: u64,
    /// Validation stopped improving before the configured iterations.
    pub stopped_early: bool,
    pub best_val_dice: Option<f64>,
    pub best_iteration: Option<u64>,
    /// Validation Dice by iteration, over the whole run (resumes included).
    pub validation: Vec<(u64, f64)>,
    pub seconds: f64,
    pub final_loss: f64,
    pub out: PathBuf,
}

/// Validation result.
#[derive(Clone, Debug)]
pub struct Validation {
    pub mean_dice: f64,
    pub per_class: BTreeMap<String, f64>,
}

/// Freeze every parameter whose scheme name is not in `trainable`.
struct Freeze<'a> {
    path: Vec<String>,
    trainable: &'a [String],
}

impl ModuleMapper for Freeze<'_> {
    fn enter_module(&mut self, name: &str, _ty: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _ty: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let train = self.trains();
        p.set_require_grad(train)
    }
    /// A frozen batch normalisation also keeps its running statistics: it
    /// normalises by them, as at inference, instead of by the batch's.
    fn map_flag(&mut self, flag: Param<Flag>) -> Param<Flag> {
        let train = self.trains();
        flag.with_value(train)
    }
}

impl Freeze<'_> {
    /// Whether the tensor at the current path trains (a normalisation trains
    /// with its convolution).
    fn trains(&self) -> bool {
        let name = crate::unet::scheme_name(&self.path);
        let layer = name.rsplit_once('.').map(|(l, _)| l.to_string()).unwrap_or_default();
        let layer = edge_seg_models::weights::conv_of_norm(&layer).unwrap_or(layer);
        self.trainable.contains(&layer)
    }
}

/// Layer names that train under `t`.
pub fn trainable_layers(spec: &edge_seg_models::NetworkSpec, t: &Trainable) -> Vec<String> {
    let layers: Vec<String> = spec.layers().into_iter().map(|l| l.name).collect();
    match t {
        Trainable::All => layers,
        Trainable::Tail { layers: k } => layers[layers.len().saturating_sub(*k)..].to_vec(),
    }
}

/// The cross-entropy class weights of `power` (see
/// [`crate::loss::balanced_class_weights`]) from the training cases'
/// labels; empty for power 0.
pub fn training_class_weights(cases: &[PreparedCase], classes: usize, power: f32) -> Vec<f32> {
    if power == 0.0 {
        return Vec::new();
    }
    let mut labelled = vec![0u64; classes];
    let mut total = vec![0u64; classes];
    for case in cases {
        let mut counts = vec![0u64; 256];
        for &l in case.labels.iter() {
            counts[l as usize] += 1;
        }
        for &k in case.annotated.iter().filter(|&&k| k < classes) {
            labelled[k] += counts[k];
            total[k] += case.labels.len() as u64;
        }
    }
    crate::loss::balanced_class_weights(&labelled, &total, power)
}

/// Apply the trainable set to a model.
pub fn apply_trainable(model: UNet, spec: &edge_seg_models::NetworkSpec, t: &Trainable) -> UNet {
    let names = trainable_layers(spec, t);
    model.map(&mut Freeze {
        path: Vec::new(),
        trainable: &names,
    })
}

/// The card for a checkpoint of this run.
pub fn card_for(
    cfg: &TrainConfig,
    dataset: &str,
    vocabulary: &[String],
    train_cases: usize,
    val_dice: Option<f64>,
    iteration: u64,
) -> Result<ModelCard> {
    let mut card = ModelCard::new(
        &cfg.task,
        cfg.modality,
        vocabulary,
        cfg.spec.clone(),
        cfg.spacing_mm,
        cfg.intensity,
        cfg.patch,
    )?;
    card.decode = Decode::Argmax;
    let mut stages = cfg.prior_stages.clone();
    stages.push(cfg.stage(iteration));
    card.provenance = Provenance {
        base_model: cfg.base_model.clone(),
        base_weights_sha256: cfg.base_weights_sha256.clone(),
        strategy: Some(cfg.strategy.clone()),
        training_scans: Some(train_cases),
        validation_dice: val_dice,
        dataset: Some(dataset.to_string()),
        synthetic_data: false,
        iterations: Some(stages.iter().map(|s| s.iterations).sum()),
        loss: Some(cfg.loss.name().to_string()),
        stages,
        normalisation: None,
    };
    Ok(card)
}

/// A warning when some convolution has no active channel on a batch: its
/// ReLUs pass no gradient, so every layer that reaches the output only
/// through it has stopped learning.
/// Patience: true once the last `patience` validations (`val_every`
/// iterations apart) brought no new best. It starts counting only when a validation has found something (best
/// Dice above zero): a network that still predicts background everywhere has
/// not begun to learn, and early validations at zero say nothing about when
/// it will.
pub fn patience_exhausted(
    patience: Option<u64>,
    val_every: u64,
    best: Option<f64>,
    best_iteration: Option<u64>,
    done: u64,
) -> bool {
    match (patience, best, best_iteration) {
        (Some(p), Some(dice), Some(at)) => dice > 0.0 && done >= at + p * val_every,
        _ => false,
    }
}

pub fn dead_layer_warning(live: &[LiveChannels]) -> Option<String> {
    let dead: Vec<&str> = live.iter().filter(|l| l.live == 0).map(|l| l.layer.as_str()).collect();
    if dead.is_empty() {
        return None;
    }
    Some(format!(
        "no channel of {} is active on the last training batch, so the layers behind it get no gradient \
         (dead ReLUs); a lower --lr or --weight-init he may avoid this",
        dead.join(", ")
    ))
}

/// Mean Dice over the foreground classes annotated in each validation case.
pub fn validate(
    model: &UNet,
    device: &Device,
    cfg: &TrainConfig,
    cases: &[PreparedCase],
    vocabulary: &[String],
) -> Result<Validation> {
    let mut per_class: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    let pad = cfg.intensity.background_value();
    for case in cases {
        let pred = predict_image_labels(model, device, &cfg.spec, &case.image, cfg.patch, pad, Decode::Argmax)?;
        let truth = case.labels.mapv(|v| v as u16);
        for &c in &case.annotated {
            if let Some(d) = dice(pred.view(), truth.view(), c as u16) {
                per_class.entry(c).or_default().push(d);
            }
        }
    }
    let per_class: BTreeMap<String, f64> = per_class
        .into_iter()
        .map(|(c, v)| (vocabulary[c].clone(), v.iter().sum::<f64>() / v.len() as f64))
        .collect();
    let mean = if per_class.is_empty() {
        0.0
    } else {
        per_class.values().sum::<f64>() / per_class.len() as f64
    };
    Ok(Validation {
        mean_dice: mean,
        per_class,
    })
}

/// A run cannot resume from its checkpoint: it was trained with another
/// configuration, or its optimiser state is missing or unreadable (another
/// version's format). Callers that own the run folder (the experiment grid)
/// start it over.
#[derive(Debug)]
pub struct CannotResume {
    /// The checkpoint that would have been resumed.
    pub dir: PathBuf,
    pub why: String,
}

impl std::fmt::Display for CannotResume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.dir.display(), self.why)
    }
}

impl std::error::Error for CannotResume {}

/// Run (or resume) training into `out`.
pub fn train(cfg: &TrainConfig, init: Init, out: &Path, device: &Device, opts: &RunOptions) -> Result<TrainOutcome> {
    let resume_from = recover(out)?;
    if resume_from.is_some() && !opts.resume {
        bail!(
            "{} already holds a training run; pass --resume to continue it, or choose another --out",
            out.display()
        );
    }
    // Whether the run can resume is settled here, before any data is read: the
    // checkpoint folder, its training state and its optimiser, or nothing.
    let resumed = match resume_from {
        Some(dir) => {
            let s = read_state(&dir)?;
            if &s.config != cfg {
                return Err(CannotResume {
                    dir: dir.clone(),
                    why: "the run there was started with a different configuration; resume with the same settings"
                        .into(),
                }
                .into());
            }
            let path = dir.join(OPTIMIZER_FILE);
            let optim = std::fs::read(&path)
                .map_err(anyhow::Error::from)
                .and_then(|bytes| Adam::new(cfg.optimizer).from_bytes(&path, &bytes))
                .map_err(|e| CannotResume {
                    dir: dir.clone(),
                    why: format!("its optimiser state {OPTIMIZER_FILE} cannot be read ({e:#})"),
                })?;
            Some((dir, s, optim))
        }
        None => None,
    };
    let ds = Dataset::load(&cfg.manifest)?;
    let vocabulary = ds.manifest.vocabulary.clone();
    if vocabulary.len() != cfg.spec.classes {
        bail!(
            "the manifest's vocabulary has {} labels but the network has {} classes",
            vocabulary.len(),
            cfg.spec.classes
        );
    }
    let pre = PreprocessSpec {
        spacing_zyx: cfg.spacing_mm,
        intensity: cfg.intensity,
        crop_to_body: cfg.crop_to_body,
        modality: cfg.modality,
    };
    let bar = if opts.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}").unwrap());
    bar.set_message("preparing cases");
    let mut train_cases = prepare_cases(&ds, &pre, &cfg.cache, &[Split::Train], |d, t| {
        bar.set_length(t as u64);
        bar.set_position(d as u64);
    })?;
    if let Some(n) = cfg.max_train_cases {
        train_cases.truncate(n);
    }
    if train_cases.is_empty() {
        bail!("{}: no training cases", cfg.manifest.display());
    }
    let mut val_cases = prepare_cases(&ds, &pre, &cfg.cache, &[Split::Val], |_, _| {})?;
    if let Some(n) = cfg.max_val_cases {
        val_cases.truncate(n);
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let output = cfg.spec.output_shape(cfg.patch)?;
    let sampler_cfg = SamplerConfig {
        input: cfg.patch,
        output,
        foreground_fraction: cfg.foreground_fraction,
        complete_patches: cfg.complete_patches,
        pad_value: cfg.intensity.background_value(),
        augmentation: cfg.augmentation.clone(),
        mirror_permutation: left_right_permutation(&vocabulary),
    };
    let mut sampler = Sampler::new(&train_cases, sampler_cfg, cfg.seed);
    let ad = device.clone().autodiff();
    let step_devices = parallel::step_devices(device, &opts.parallel_devices);
    parallel::check_split(cfg.batch, step_devices.len())?;
    let (weights, mut optim, start, state) = match resumed {
        Some((dir, s, optim)) => {
            let ckpt = Checkpoint::read(&dir)?;
            sampler.restore(s.sampler);
            (ckpt.weights, optim, s.iteration, Some(s))
        }
        None => {
            let w = match init {
                Init::Random => crate::unet::initial_weights_with(&cfg.spec, cfg.seed, cfg.weight_init),
                Init::Weights(w) => w,
            };
            (w, Adam::new(cfg.optimizer), 0, None)
        }
    };
    let mut model = apply_trainable(UNet::new(&cfg.spec, &weights, &ad)?, &cfg.spec, &cfg.trainable);
    let mut best = state.as_ref().and_then(|s| s.best_val_dice);
    let mut best_iteration = state.as_ref().and_then(|s| s.best_iteration);
    let elapsed_before = state.as_ref().map(|s| s.elapsed_seconds).unwrap_or(0.0);
    let metrics_path = out.join("metrics.jsonl");
    report::truncate_metrics(&metrics_path, start)?;
    let mut metrics = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&metrics_path)
        .with_context(|| format!("cannot open {}", metrics_path.display()))?;
    let annotated: Vec<Vec<usize>> = train_cases.iter().map(|c| c.annotated.clone()).collect();
    let complete: Vec<bool> = train_cases.iter().map(|c| c.complete).collect();
    let class_weights = training_class_weights(&train_cases, cfg.spec.classes, cfg.loss_weights.class_balance);
    if !class_weights.is_empty() && !opts.quiet {
        let listed: Vec<String> = class_weights
            .iter()
            .enumerate()
            .map(|(k, w)| format!("{} {w:.2}", vocabulary.get(k).map(String::as_str).unwrap_or("?")))
            .collect();
        eprintln!("cross-entropy class weights: {}", listed.join(", "));
    }
    bar.set_length(cfg.iterations);
    bar.set_position(start);
    bar.set_style(ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} it {elapsed} (eta {eta})").unwrap());
    let started = Instant::now();
    let mut last_loss = f64::NAN;
    let mut smooth_loss: Option<f64> = None;
    let mut end = match opts.stop_after {
        Some(n) => (start + n).min(cfg.iterations),
        None => cfg.iterations,
    };
    let mut stopped_early = state.as_ref().is_some_and(|s| s.stopped_early);
    if stopped_early {
        end = start;
    }
    for it in start..end {
        let lr = cfg.schedule.rate(cfg.lr, it, cfg.iterations, cfg.warmup);
        let batch = sampler.batch(cfg.batch);
        let [pz, py, px] = cfg.patch;
        let done = it + 1;
        let validate_now = (cfg.val_every > 0 && done % cfg.val_every == 0) || done == cfg.iterations;
        // Kept for the live-channel check after this step.
        let probe = validate_now.then(|| batch.images.clone());
        let targets = BatchLabels {
            labels: batch.labels,
            spatial: output,
            annotated: batch.cases.iter().map(|&c| annotated[c].clone()).collect(),
            complete: batch.cases.iter().map(|&c| complete[c]).collect(),
            classes: cfg.spec.classes,
            class_weights: class_weights.clone(),
        };
        let step_batch = parallel::Batch {
            images: &batch.images,
            patch: cfg.patch,
            targets: &targets,
        };
        let (grads, step_loss) = parallel::gradients(&model, &step_batch, cfg.loss, cfg.loss_weights, &step_devices)?;
        model = optim.step(lr, model, grads);
        let (total, dice_term, ce_term) = (step_loss.total, step_loss.dice, step_loss.ce);
        if !total.is_finite() {
            bail!(
                "the loss became {total} at iteration {}: lower the learning rate",
                it + 1
            );
        }
        last_loss = total;
        smooth_loss = Some(match smooth_loss {
            Some(s) => 0.95 * s + 0.05 * total,
            None => total,
        });
        let elapsed = elapsed_before + started.elapsed().as_secs_f64();
        writeln!(
            metrics,
            "{}",
            json!({"iteration": it + 1, "loss": total, "dice_term": dice_term, "ce_term": ce_term, "lr": lr, "seconds": elapsed})
        )?;
        bar.set_position(done);
        let rate = (done - start) as f64 / started.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!(
            "loss {:.3} best dice {} {:.2} it/s",
            smooth_loss.unwrap_or(total),
            best.map(|b| format!("{b:.3}")).unwrap_or_else(|| "-".into()),
            rate
        ));
        if validate_now || Some(done) == opts.stop_after.map(|n| start + n) {
            let eval_model = model.valid();
            let val = if validate_now && !val_cases.is_empty() {
                Some(validate(&eval_model, device, cfg, &val_cases, &vocabulary)?)
            } else {
                None
            };
            if let Some(v) = &val {
                writeln!(
                    metrics,
                    "{}",
                    json!({"iteration": done, "val_dice": v.mean_dice, "val_dice_per_class": v.per_class, "seconds": elapsed})
                )?;
                bar.println(format!("iteration {done}: validation Dice {:.4}", v.mean_dice));
            }
            if let Some(images) = probe {
                let x = Tensor::<5>::from_data(TensorData::new(images, [cfg.batch, 1, pz, py, px]), device);
                let live = eval_model.live_channels(x);
                writeln!(metrics, "{}", json!({"iteration": done, "live_channels": live}))?;
                if let Some(warning) = dead_layer_warning(&live) {
                    bar.println(format!("iteration {done}: warning: {warning}"));
                }
            }
            metrics.flush()?;
            metrics.sync_all()?;
            let improved = match (&val, best) {
                (Some(v), Some(b)) => v.mean_dice > b,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if improved {
                best = val.as_ref().map(|v| v.mean_dice);
                best_iteration = Some(done);
            }
            let card = card_for(
                cfg,
                &ds.manifest.name,
                &vocabulary,
                train_cases.len(),
                val.as_ref().map(|v| v.mean_dice),
                done,
            )?;
            let ckpt = Checkpoint {
                card,
                weights: eval_model.weights(),
            };
            stopped_early = val.is_some()
                && done < cfg.iterations
                && patience_exhausted(cfg.patience, cfg.val_every, best, best_iteration, done);
            let st = TrainState {
                iteration: done,
                sampler: sampler.state(),
                best_val_dice: best,
                best_iteration,
                config: cfg.clone(),
                elapsed_seconds: elapsed,
                stopped_early,
            };
            let optim_bytes = optim.to_bytes().context("cannot serialise the optimiser")?;
            write_checkpoint(&out.join("last"), &ckpt, Some(&optim_bytes), &st)?;
            if improved || (val.is_none() && val_cases.is_empty() && done == cfg.iterations) {
                write_checkpoint(&out.join("best"), &ckpt, None, &st)?;
            }
            if stopped_early {
                writeln!(
                    metrics,
                    "{}",
                    json!({"iteration": done, "stopped_early": true, "best_iteration": best_iteration})
                )?;
                bar.println(format!(
                    "iteration {done}: no better validation Dice since iteration {}; stopping",
                    best_iteration.unwrap_or(0)
                ));
                end = done;
                break;
            }
        }
    }
    bar.finish_and_clear();
    let done = end;
    if done == cfg.iterations || stopped_early {
        // The checkpoints and metrics are written: a figure that cannot be
        // drawn (no fonts on the machine, say) must not fail the run.
        if let Err(e) = report::plot_learning_curve(&metrics_path, &out.join("learning_curve.png")) {
            eprintln!("warning: {e:#}; the numbers are in {}", metrics_path.display());
        }
    }
    Ok(TrainOutcome {
        iterations: done,
        stopped_early,
        best_val_dice: best,
        best_iteration,
        validation: report::validation_curve(&metrics_path)?,
        seconds: elapsed_before + started.elapsed().as_secs_f64(),
        final_loss: last_loss,
        out: out.to_path_buf(),
    })
}

/// A 2-level, 2-filter network with `classes` classes: the unit tests'
/// network.
#[cfg(test)]
pub(crate) fn tiny_spec(classes: usize, norm: edge_seg_models::spec::Norm) -> edge_seg_models::NetworkSpec {
    use edge_seg_models::spec::{ChannelPlan, Padding, Upsampling};
    edge_seg_models::NetworkSpec {
        levels: 2,
        base_filters: 2,
        channel_plan: ChannelPlan::Doubling,
        padding: Padding::Same,
        upsampling: Upsampling::Nearest,
        in_channels: 1,
        classes,
        norm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge_seg_models::spec::{Norm, Padding};

    fn case(labels: [u8; 8], annotated: Vec<usize>) -> PreparedCase {
        PreparedCase {
            id: "c".into(),
            split: Split::Train,
            image: ndarray::Array3::zeros((2, 2, 2)),
            labels: ndarray::Array3::from_shape_vec((2, 2, 2), labels.to_vec()).unwrap(),
            annotated,
            complete: false,
            spacing_zyx: [1.0; 3],
        }
    }

    /// Shares count only the cases that annotate a class: the second case's
    /// class-1 voxels (not annotated there) do not make class 1 larger.
    #[test]
    fn class_weights_come_from_the_annotating_cases() {
        let cases = [
            case([1, 1, 1, 1, 0, 0, 0, 0], vec![1]),
            case([2, 1, 1, 1, 1, 1, 1, 0], vec![2]),
        ];
        let w = training_class_weights(&cases, 3, 1.0);
        assert_eq!(w, vec![1.0, 1.0, 4.0]);
        assert!(training_class_weights(&cases, 3, 0.0).is_empty());
    }

    /// Freezing all but the last layers freezes their batch normalisations
    /// too: a training pass moves only the trainable layers' running
    /// statistics.
    #[test]
    fn frozen_layers_keep_their_normalisation_statistics() {
        let spec = edge_seg_models::NetworkSpec {
            levels: 2,
            base_filters: 2,
            padding: Padding::Same,
            norm: Norm::Batch,
            ..edge_seg_models::NetworkSpec::paper(3)
        };
        let ad = Device::flex().autodiff();
        let w = crate::unet::initial_weights(&spec, 1);
        let tail = Trainable::Tail { layers: 2 };
        assert_eq!(trainable_layers(&spec, &tail), ["dec0.conv1", "head"]);
        let model = apply_trainable(UNet::new(&spec, &w, &ad).unwrap(), &spec, &tail);
        let v: Vec<f32> = (0..512).map(|i| 3.0 + (i % 7) as f32).collect();
        let _ = model.forward_logits(Tensor::<5>::from_data(TensorData::new(v, [1, 1, 8, 8, 8]), &ad));
        let after = model.valid().weights();
        assert_eq!(after["enc0.norm0.running_mean"], w["enc0.norm0.running_mean"]);
        assert_eq!(after["dec0.norm0.running_var"], w["dec0.norm0.running_var"]);
        assert_ne!(after["dec0.norm1.running_mean"], w["dec0.norm1.running_mean"]);
    }

    /// Patience counts from the last new best, and only once a validation
    /// has found something: validations at Dice 0 never end a run.
    #[test]
    fn patience_waits_for_the_first_structure_found() {
        // Best 0.4 at 300: five validations 100 apart without a better one end it at 800.
        assert!(!patience_exhausted(Some(5), 100, Some(0.4), Some(300), 700));
        assert!(patience_exhausted(Some(5), 100, Some(0.4), Some(300), 800));
        // A network still at Dice 0 after 5,000 iterations keeps training.
        assert!(!patience_exhausted(Some(5), 100, Some(0.0), Some(100), 5000));
        assert!(!patience_exhausted(None, 100, Some(0.4), Some(300), 5000));
        assert!(!patience_exhausted(Some(5), 100, None, None, 5000));
    }

    #[test]
    fn dead_layer_warning_names_only_dead_layers() {
        let layer = |name: &str, live| LiveChannels {
            layer: name.into(),
            live,
            channels: 8,
        };
        assert_eq!(
            dead_layer_warning(&[layer("enc0.conv0", 3), layer("dec0.conv1", 8)]),
            None
        );
        let w = dead_layer_warning(&[layer("enc0.conv0", 3), layer("enc2.conv1", 0), layer("dec2.conv0", 0)]).unwrap();
        assert!(w.contains("enc2.conv1, dec2.conv0"), "{w}");
        assert!(!w.contains("enc0.conv0"), "{w}");
    }
}
