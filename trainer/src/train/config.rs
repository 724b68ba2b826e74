//! Training configuration, stored with every checkpoint so a run can be
//! resumed exactly.

use std::path::PathBuf;

use edge_seg_models::card::{Intensity, Modality, TrainingStage};
use edge_seg_models::NetworkSpec;
use serde::{Deserialize, Serialize};

use crate::data::Augmentation;
use crate::loss::{LossKind, LossWeights};

/// Learning-rate schedule after a linear warm-up.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Constant,
    /// Cosine decay to 1 % of the base rate.
    Cosine,
    /// Polynomial decay `(1 − t)^0.9` (nnU-Net's).
    Poly,
}

impl Schedule {
    pub fn parse(s: &str) -> Option<Schedule> {
        match s {
            "constant" => Some(Schedule::Constant),
            "cosine" => Some(Schedule::Cosine),
            "poly" => Some(Schedule::Poly),
            _ => None,
        }
    }

    /// Learning rate at iteration `it` (0-based) of `total`.
    pub fn rate(self, base: f64, it: u64, total: u64, warmup: u64) -> f64 {
        if it < warmup {
            return base * (it + 1) as f64 / warmup as f64;
        }
        let span = total.saturating_sub(warmup).max(1) as f64;
        let t = ((it - warmup) as f64 / span).clamp(0.0, 1.0);
        match self {
            Schedule::Constant => base,
            Schedule::Cosine => base * (0.01 + 0.99 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())),
            Schedule::Poly => base * (1.0 - t).powf(0.9),
        }
    }
}

/// Which optimiser.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum OptimizerKind {
    Adam,
    AdamW { weight_decay: f32 },
}

/// Which parameters train.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Trainable {
    All,
    /// Only the last `layers` layers (counting the 1x1x1 head as one).
    Tail {
        layers: usize,
    },
}

/// Everything that defines a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub manifest: PathBuf,
    /// Task name written into the card (`base`, `esophagus`, ...).
    pub task: String,
    pub spec: NetworkSpec,
    /// Scaling of random initial weights (when not starting from given weights).
    #[serde(default)]
    pub weight_init: edge_seg_export::init::WeightInit,
    /// Model spacing `[z, y, x]`, mm.
    pub spacing_mm: [f64; 3],
    /// Training patch (network input), `[z, y, x]`.
    pub patch: [usize; 3],
    pub modality: Modality,
    pub intensity: Intensity,
    pub crop_to_body: bool,
    pub loss: LossKind,
    pub loss_weights: LossWeights,
    pub iterations: u64,
    pub batch: usize,
    pub lr: f64,
    pub schedule: Schedule,
    pub warmup: u64,
    pub optimizer: OptimizerKind,
    /// Validate (and checkpoint) every this many iterations; 0 = only at the end.
    pub val_every: u64,
    /// Stop once this many validations in a row have not improved on the
    /// best validation Dice (`iterations` is then the cap); `None` trains to
    /// the end.
    #[serde(default)]
    pub patience: Option<u64>,
    pub seed: u64,
    pub foreground_fraction: f64,
    /// Fraction of patches drawn from completely annotated cases (0: all
    /// cases equally often).
    #[serde(default)]
    pub complete_patches: f64,
    pub augmentation: Augmentation,
    pub trainable: Trainable,
    /// Use at most this many training cases (all when `None`), chosen in
    /// manifest order.
    pub max_train_cases: Option<usize>,
    /// Validate on at most this many validation cases (all when `None`).
    pub max_val_cases: Option<usize>,
    /// Strategy name for the card's provenance (`base`, `scratch`, ...).
    pub strategy: String,
    /// Base model the run started from, for provenance.
    pub base_model: Option<String>,
    /// The base model's `weights_sha256`, for provenance.
    #[serde(default)]
    pub base_weights_sha256: Option<String>,
    /// Training stages before this run (those of the checkpoint given to
    /// `--init`, or fine-tuning's first phase), for provenance.
    #[serde(default)]
    pub prior_stages: Vec<TrainingStage>,
    /// Cache folder for preprocessed cases.
    pub cache: PathBuf,
}

impl TrainConfig {
    /// This run as a provenance stage, after `iterations` iterations: its
    /// strategy, loss and the options that shape the result.
    pub fn stage(&self, iterations: u64) -> TrainingStage {
        let mut o = vec![
            format!("lr {:e} {:?}, warmup {}", self.lr, self.schedule, self.warmup).to_lowercase(),
            format!("{:?}", self.optimizer).to_lowercase(),
            format!("batch {}, patch {}", self.batch, self.patch[0]),
            format!("spacing {:?} mm", self.spacing_mm),
            format!("seed {}", self.seed),
            format!("foreground {}", self.foreground_fraction),
        ];
        if self.complete_patches > 0.0 {
            o.push(format!("complete-patches {}", self.complete_patches));
        }
        if self.loss_weights.class_balance > 0.0 {
            o.push(format!("class-balance {}", self.loss_weights.class_balance));
        }
        if self.loss_weights.dice_present_only {
            o.push("dice-present-only".into());
        }
        if let Trainable::Tail { layers } = self.trainable {
            o.push(format!("last {layers} layers trained"));
        }
        if let Some(n) = self.max_train_cases {
            o.push(format!("first {n} training cases"));
        }
        if let Some(p) = self.patience {
            o.push(format!(
                "stops after {p} validations every {} without improvement, cap {}",
                self.val_every, self.iterations
            ));
        }
        TrainingStage {
            name: self.strategy.clone(),
            loss: self.loss.name().to_string(),
            iterations,
            options: o.join(", "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        assert!((Schedule::Constant.rate(1.0, 0, 100, 10) - 0.1).abs() < 1e-12);
        assert!((Schedule::Constant.rate(1.0, 50, 100, 10) - 1.0).abs() < 1e-12);
        assert!((Schedule::Cosine.rate(1.0, 10, 110, 10) - 1.0).abs() < 1e-12);
        assert!((Schedule::Cosine.rate(1.0, 110, 110, 10) - 0.01).abs() < 1e-9);
        assert!(Schedule::Poly.rate(1.0, 109, 110, 10) < 0.02);
        let mut last = f64::INFINITY;
        for it in 10..110 {
            let r = Schedule::Cosine.rate(1.0, it, 110, 10);
            assert!(r <= last);
            last = r;
        }
    }
}
