//! Transfer of a base model to a new task, three ways:
//!
//! - **scratch**: random initialisation, all weights trained;
//! - **vanilla**: every weight from the base model except the head (see
//!   [`HeadInit`]), all weights trained;
//! - **finetune**: weights from the base; phase 1 trains only the tail (the
//!   last K layers, default 2: the last 3x3x3 conv and the 1x1x1 head) with
//!   the rest frozen, phase 2 trains everything at a lower learning rate.
//!   Both phases together use the same iteration budget as the others.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::prelude::*;
use edge_seg_export::{Checkpoint, Tensor as WeightTensor};
use edge_seg_models::weights::{bias_name, is_tensor_of, weight_name, HEAD};
use edge_seg_models::NetworkSpec;

use crate::base_model::BaseModel;
use crate::train::{train, Init, RunOptions, TrainConfig, TrainOutcome, Trainable};
use crate::unet::initial_weights;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    Scratch,
    Vanilla,
    Finetune,
}

impl Strategy {
    pub fn parse(s: &str) -> Option<Strategy> {
        match s {
            "scratch" => Some(Strategy::Scratch),
            "vanilla" => Some(Strategy::Vanilla),
            "finetune" => Some(Strategy::Finetune),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Strategy::Scratch => "scratch",
            Strategy::Vanilla => "vanilla",
            Strategy::Finetune => "finetune",
        }
    }
}

/// How the task's head is initialised when starting from the base.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeadInit {
    /// A new random head for the task's classes.
    Fresh,
    /// The last N output channels of the base head (N = task classes).
    KeepLast,
}

impl HeadInit {
    pub fn parse(s: &str) -> Option<HeadInit> {
        match s {
            "fresh" => Some(HeadInit::Fresh),
            "keep-last" => Some(HeadInit::KeepLast),
            _ => None,
        }
    }
}

/// Transfer settings beyond the training config.
#[derive(Clone, Debug)]
pub struct TransferPlan {
    pub strategy: Strategy,
    pub head: HeadInit,
    /// Layers trained in fine-tuning's first phase.
    pub tail: usize,
    /// Iterations of fine-tuning's first phase (the rest is phase 2).
    pub phase1: u64,
    /// Learning rate of fine-tuning's second phase.
    pub phase2_lr: f64,
}

/// The task network: the base spec with the task's class count.
pub fn task_spec(base: &NetworkSpec, classes: usize) -> NetworkSpec {
    NetworkSpec {
        classes,
        ..base.clone()
    }
}

/// Initial task weights from the base: every tensor except the head, whose
/// initialisation `head` decides.
pub fn weights_from_base(
    base: &Checkpoint,
    task: &NetworkSpec,
    head: HeadInit,
    seed: u64,
) -> Result<BTreeMap<String, WeightTensor>> {
    let mut w = initial_weights(task, seed);
    for (name, t) in w.iter_mut() {
        if is_tensor_of(name, HEAD) {
            continue;
        }
        let b = base
            .weights
            .get(name)
            .with_context(|| format!("the base model has no tensor {name}"))?;
        if b.shape != t.shape {
            bail!(
                "tensor {name}: base shape {:?}, task shape {:?}: the networks differ",
                b.shape,
                t.shape
            );
        }
        *t = b.clone();
    }
    if head == HeadInit::KeepLast {
        let n = task.classes;
        let bw = &base.weights[&weight_name(HEAD)];
        let bb = &base.weights[&bias_name(HEAD)];
        let c_base = bw.shape[0];
        if c_base < n {
            bail!("keep-last: the base head has {c_base} channels, the task needs {n}");
        }
        let per = bw.values.len() / c_base;
        w.insert(
            weight_name(HEAD),
            WeightTensor {
                shape: vec![n, bw.shape[1], 1, 1, 1],
                values: bw.values[(c_base - n) * per..].to_vec(),
            },
        );
        w.insert(
            bias_name(HEAD),
            WeightTensor {
                shape: vec![n],
                values: bb.values[c_base - n..].to_vec(),
            },
        );
    }
    Ok(w)
}

/// Where a finished transfer left its final checkpoint.
pub fn final_checkpoint(out: &Path, strategy: Strategy) -> PathBuf {
    let dir = match strategy {
        Strategy::Finetune => out.join("phase2"),
        _ => out.to_path_buf(),
    };
    if dir.join("best").exists() {
        dir.join("best")
    } else {
        dir.join("last")
    }
}

/// Run a transfer. `cfg` is the task's training config (spec already the
/// task spec, `iterations` the whole budget).
pub fn transfer(
    cfg: &TrainConfig,
    base_model: &BaseModel,
    plan: &TransferPlan,
    out: &Path,
    device: &Device,
    opts: &RunOptions,
) -> Result<(TrainOutcome, PathBuf)> {
    let mut cfg = cfg.clone();
    cfg.strategy = plan.strategy.name().to_string();
    let base = &base_model.checkpoint;
    cfg.base_model = Some(base_model.name.clone());
    cfg.base_weights_sha256 = Some(base.card.weights_sha256.clone());
    let outcome = match plan.strategy {
        Strategy::Scratch => {
            cfg.base_model = None;
            cfg.base_weights_sha256 = None;
            train(&cfg, Init::Random, out, device, opts)?
        }
        Strategy::Vanilla => {
            let w = weights_from_base(base, &cfg.spec, plan.head, cfg.seed)?;
            train(&cfg, Init::Weights(w), out, device, opts)?
        }
        Strategy::Finetune => {
            if plan.phase1 == 0 || plan.phase1 >= cfg.iterations {
                bail!(
                    "fine-tuning's first phase ({} iterations) must be shorter than the budget ({})",
                    plan.phase1,
                    cfg.iterations
                );
            }
            let w = weights_from_base(base, &cfg.spec, plan.head, cfg.seed)?;
            let mut p1 = cfg.clone();
            p1.iterations = plan.phase1;
            p1.trainable = Trainable::Tail { layers: plan.tail };
            let phase1_dir = out.join("phase1");
            let phase1_done = phase1_dir.join("last/train_state.json").exists()
                && crate::train::read_state(&phase1_dir.join("last"))
                    .map(|s| s.iteration == p1.iterations || s.stopped_early)
                    .unwrap_or(false);
            if !phase1_done {
                train(&p1, Init::Weights(w), &phase1_dir, device, opts)?;
            }
            let after1 = Checkpoint::read(&phase1_dir.join("last"))?;
            let mut p2 = cfg.clone();
            p2.iterations = cfg.iterations - plan.phase1;
            p2.lr = plan.phase2_lr;
            p2.warmup = 0;
            p2.trainable = Trainable::All;
            p2.seed = cfg.seed.wrapping_add(1);
            p2.prior_stages = after1.card.provenance.stages.clone();
            let mut o = train(&p2, Init::Weights(after1.weights), &out.join("phase2"), device, opts)?;
            // Phase 1 may have stopped early: count the iterations it trained,
            // and draw one curve over both phases.
            let phase1 = crate::train::read_state(&phase1_dir.join("last"))?;
            let phase1_used = phase1.iteration;
            o.iterations += phase1_used;
            o.seconds += phase1.elapsed_seconds;
            let mut curve = crate::train::report::validation_curve(&phase1_dir.join("metrics.jsonl"))?;
            curve.extend(o.validation.iter().map(|&(it, d)| (it + phase1_used, d)));
            o.validation = curve;
            o
        }
    };
    Ok((outcome, final_checkpoint(out, plan.strategy)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge_seg_models::card::{Intensity, Modality};
    use edge_seg_models::labels::BASE_LABELS;
    use edge_seg_models::ModelCard;

    fn base() -> Checkpoint {
        let spec = NetworkSpec {
            levels: 2,
            base_filters: 2,
            ..NetworkSpec::paper(BASE_LABELS.len())
        };
        let card = ModelCard::new(
            "base",
            Modality::CT,
            &BASE_LABELS,
            spec,
            [4.0; 3],
            Intensity::ct_default(),
            [20; 3],
        )
        .unwrap();
        Checkpoint::random(card, 3)
    }

    #[test]
    fn vanilla_takes_every_base_weight_but_the_head() {
        let b = base();
        let task = task_spec(&b.card.network, 2);
        let w = weights_from_base(&b, &task, HeadInit::Fresh, 1).unwrap();
        for (name, t) in &w {
            if is_tensor_of(name, HEAD) {
                assert_eq!(t.shape[0], 2);
                assert_ne!(t.values, b.weights[name].values[..t.values.len()].to_vec());
            } else {
                assert_eq!(t, &b.weights[name], "{name}");
            }
        }
        assert_eq!(w.len(), b.weights.len());
    }

    #[test]
    fn keep_last_copies_the_last_channels() {
        let b = base();
        let task = task_spec(&b.card.network, 3);
        let w = weights_from_base(&b, &task, HeadInit::KeepLast, 1).unwrap();
        let bw = &b.weights["head.weight"];
        let cin = bw.shape[1];
        let c_base = bw.shape[0];
        for c in 0..3 {
            for i in 0..cin {
                assert_eq!(
                    w["head.weight"].values[c * cin + i],
                    bw.values[(c_base - 3 + c) * cin + i]
                );
            }
            assert_eq!(w["head.bias"].values[c], b.weights["head.bias"].values[c_base - 3 + c]);
        }
    }

    #[test]
    fn mismatched_networks_are_refused() {
        let b = base();
        let other = NetworkSpec {
            base_filters: 4,
            ..task_spec(&b.card.network, 2)
        };
        let e = weights_from_base(&b, &other, HeadInit::Fresh, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("networks differ"), "{e}");
    }
}
