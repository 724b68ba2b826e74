//! `edge-seg-train base`: train a base model on a (sparse) dataset.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use edge_seg_export::init::WeightInit;
use edge_seg_models::card::{Intensity, Modality};
use edge_seg_models::spec::{ChannelPlan, NetworkSpec, Norm, Padding, Upsampling};
use edge_seg_models::Manifest;

use crate::data::Augmentation;
use crate::device::{choose_devices, set_threads};
use crate::loss::{LossKind, LossWeights};
use crate::train::{train, Init, OptimizerKind, RunOptions, Schedule, TrainConfig, Trainable};

/// The network: a named spec or a JSON file, with overrides.
#[derive(Debug, Args, Clone)]
pub struct SpecArgs {
    /// Network: `paper` (4 levels, 32 filters), `small` (4 levels, 8 filters)
    /// or a JSON file with a NetworkSpec [default: small; transfer: the base's].
    #[arg(long)]
    pub spec: Option<String>,
    /// Override the number of levels.
    #[arg(long)]
    pub levels: Option<usize>,
    /// Override the base number of filters.
    #[arg(long)]
    pub filters: Option<usize>,
    /// Override the channel plan: cicek or doubling.
    #[arg(long)]
    pub plan: Option<String>,
    /// Override the padding: valid or same.
    #[arg(long)]
    pub padding: Option<String>,
    /// Override the upsampling: nearest or transposed.
    #[arg(long)]
    pub upsampling: Option<String>,
    /// Override the normalisation after each convolution: none or batch
    /// (batch normalisation; export folds it into the convolutions).
    #[arg(long)]
    pub norm: Option<String>,
}

/// Network and optimisation settings shared by `base` and `transfer`.
#[derive(Debug, Args, Clone)]
pub struct TrainArgs {
    #[command(flatten)]
    pub network: SpecArgs,
    /// Model spacing in mm: one value (isotropic) or z,y,x [default: 3;
    /// transfer: the base's].
    #[arg(long)]
    pub spacing: Option<String>,
    /// Training patch (network input) edge, voxels; must be a legal input size
    /// [default: the largest legal size up to 116; transfer: the base's tile].
    #[arg(long)]
    pub patch: Option<usize>,
    /// naive, masked or marginal.
    #[arg(long, default_value = "masked")]
    pub loss: String,
    #[arg(long, default_value_t = 1.0)]
    pub dice_weight: f32,
    #[arg(long, default_value_t = 1.0)]
    pub ce_weight: f32,
    /// Average the Dice term only over annotated classes present in the
    /// patch (by default an absent annotated class counts too, pushing its
    /// probability towards zero everywhere in the patch).
    #[arg(long)]
    pub dice_present_only: bool,
    /// Weigh each foreground class's voxels in the cross-entropy by
    /// (largest class's share / its share)^P of the voxels of the training
    /// cases that annotate it: 0.5 gives a class 50 times smaller than the
    /// largest about 7 times the weight. 0 weighs every voxel alike.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub class_balance: f32,
    #[arg(long, default_value_t = 2000)]
    pub iterations: u64,
    #[arg(long, default_value_t = 2)]
    pub batch: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// constant, cosine or poly.
    #[arg(long, default_value = "cosine")]
    pub schedule: String,
    #[arg(long, default_value_t = 50)]
    pub warmup: u64,
    /// adam or adamw.
    #[arg(long, default_value = "adam")]
    pub optimizer: String,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 1e-4)]
    pub weight_decay: f32,
    /// Validate on at most this many validation cases.
    #[arg(long)]
    pub val_cases: Option<usize>,
    /// Validate and checkpoint every N iterations (0: only at the end).
    #[arg(long, default_value_t = 250)]
    pub val_every: u64,
    /// Stop once N validations in a row bring no better validation Dice
    /// (--iterations is then the cap; the best checkpoint is kept).
    #[arg(long, value_name = "N")]
    pub patience: Option<u64>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fraction of patches centred on a foreground voxel.
    #[arg(long, default_value_t = 0.67)]
    pub foreground: f64,
    /// Fraction of patches drawn from completely annotated cases, the only
    /// ones that teach the masked loss what background is (0: every case
    /// equally often).
    #[arg(long, default_value_t = 0.0)]
    pub complete_patches: f64,
    /// Augmentation: none, standard (scaling + intensity) or full (also flips and rotations).
    #[arg(long, default_value = "standard")]
    pub augment: String,
    /// CT intensity window in HU, `MIN,MAX`, rescaled to [-1, 1] (default
    /// the paper's -500,400). A window that starts below lung (about -860
    /// HU) tells lung and airway apart from the air around the body.
    #[arg(long, allow_hyphen_values = true)]
    pub window: Option<String>,
    /// Random initial weights: glorot (the paper's) or he (scaled by fan-in
    /// only, which keeps the signal through deep ReLU stacks without
    /// normalisation).
    #[arg(long, default_value = "glorot")]
    pub weight_init: String,
    /// Crop scans to the body before resampling.
    #[arg(long)]
    pub crop_body: bool,
    /// cpu (Flex), torch, torch-cuda[:N] (feature `tch`), wgpu[:N] (feature
    /// `wgpu`), cuda[:N] (feature `cuda`) or auto (the fastest built and present).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Train data parallel on several devices, comma-separated (e.g.
    /// `torch-cuda:0,torch-cuda:1`): each takes a share of every batch, the
    /// first holds the model and steps the optimiser. Replaces --device.
    #[arg(long, value_delimiter = ',', conflicts_with = "device")]
    pub devices: Vec<String>,
    /// CPU threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Preprocessed-case cache (default: .edge-seg-cache beside the manifest).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    #[arg(long)]
    pub quiet: bool,
    /// Stop after this many iterations as if interrupted (for testing resume).
    #[arg(long, hide = true)]
    pub stop_after: Option<u64>,
}

#[derive(Debug, Args)]
pub struct BaseArgs {
    /// Dataset manifest (JSON).
    #[arg(long)]
    pub manifest: PathBuf,
    /// Output folder: checkpoints best/ and last/, metrics.jsonl, learning_curve.png.
    #[arg(long)]
    pub out: PathBuf,
    /// Start from this checkpoint's weights (same network) instead of a
    /// random initialisation, e.g. to train a model further with a new schedule.
    #[arg(long)]
    pub init: Option<PathBuf>,
    #[command(flatten)]
    pub train: TrainArgs,
}

/// Model spacing (mm) when neither `--spacing` nor a base model gives one.
pub const DEFAULT_SPACING: &str = "3";

/// Comma-separated numbers, e.g. `2.5,1,1`.
fn comma_numbers<T: std::str::FromStr>(s: &str) -> std::result::Result<Vec<T>, T::Err> {
    s.split(',').map(|t| t.trim().parse::<T>()).collect()
}

/// Parse `MIN,MAX` (HU) as a rescaling CT window.
pub fn parse_window(s: &str) -> Result<Intensity> {
    let v: Vec<f32> = comma_numbers(s).with_context(|| format!("invalid --window {s:?}: expected MIN,MAX in HU"))?;
    match v.as_slice() {
        [min, max] if min.is_finite() && max.is_finite() && min < max => Ok(Intensity::Window {
            min: *min,
            max: *max,
            rescale: true,
        }),
        _ => bail!("invalid --window {s:?}: expected MIN,MAX in HU with MIN < MAX"),
    }
}

/// Parse `3` or `2.5,1,1` as a spacing `[z, y, x]`.
pub fn parse_spacing(s: &str) -> Result<[f64; 3]> {
    let v: Vec<f64> = comma_numbers(s).with_context(|| format!("invalid spacing {s:?}"))?;
    let sp = match v.as_slice() {
        [a] => [*a; 3],
        [z, y, x] => [*z, *y, *x],
        _ => bail!("spacing {s:?}: give one value or z,y,x"),
    };
    if !sp.iter().all(|x| x.is_finite() && *x > 0.0) {
        bail!("spacing {s:?} must be positive");
    }
    Ok(sp)
}

/// The network spec from `--spec` and the overrides.
pub fn network_spec(a: &SpecArgs, classes: usize) -> Result<NetworkSpec> {
    let spec = match a.spec.as_deref().unwrap_or("small") {
        "paper" => NetworkSpec::paper(classes),
        "small" => NetworkSpec {
            base_filters: 8,
            ..NetworkSpec::paper(classes)
        },
        path => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("{path}: cannot read the network spec"))?;
            let s: NetworkSpec =
                serde_json::from_str(&text).with_context(|| format!("{path}: invalid network spec"))?;
            if s.classes != classes {
                bail!(
                    "{path}: the spec has {} classes, the manifest's vocabulary {classes}",
                    s.classes
                );
            }
            s
        }
    };
    override_spec(a, spec)
}

/// `spec` with the network flags of `a` (all but `--spec`) applied.
pub fn override_spec(a: &SpecArgs, mut spec: NetworkSpec) -> Result<NetworkSpec> {
    if let Some(l) = a.levels {
        spec.levels = l;
    }
    if let Some(f) = a.filters {
        spec.base_filters = f;
    }
    if let Some(p) = &a.plan {
        spec.channel_plan = match p.as_str() {
            "cicek" => ChannelPlan::Cicek,
            "doubling" => ChannelPlan::Doubling,
            _ => bail!("--plan must be cicek or doubling"),
        };
    }
    if let Some(p) = &a.padding {
        spec.padding = match p.as_str() {
            "valid" => Padding::Valid,
            "same" => Padding::Same,
            _ => bail!("--padding must be valid or same"),
        };
    }
    if let Some(u) = &a.upsampling {
        spec.upsampling = match u.as_str() {
            "nearest" => Upsampling::Nearest,
            "transposed" => Upsampling::Transposed,
            _ => bail!("--upsampling must be nearest or transposed"),
        };
    }
    if let Some(n) = &a.norm {
        spec.norm = match n.as_str() {
            "none" => Norm::None,
            "batch" => Norm::Batch,
            _ => bail!("--norm must be none or batch"),
        };
    }
    spec.validate()?;
    Ok(spec)
}

fn augmentation(name: &str) -> Result<Augmentation> {
    Ok(match name {
        "none" => Augmentation::none(),
        "standard" => Augmentation::standard(),
        "full" => Augmentation {
            flips: true,
            rot90: true,
            ..Augmentation::standard()
        },
        _ => bail!("--augment must be none, standard or full"),
    })
}

/// A training config from the shared arguments.
pub fn train_config(
    a: &TrainArgs,
    manifest_path: &Path,
    manifest: &Manifest,
    task: &str,
    strategy: &str,
    trainable: Trainable,
    spec: Option<NetworkSpec>,
) -> Result<TrainConfig> {
    let classes = manifest.vocabulary.len();
    let spec = match spec {
        Some(s) => s,
        None => network_spec(&a.network, classes)?,
    };
    let modality = manifest.cases.first().map(|c| c.modality).unwrap_or(Modality::CT);
    let intensity = match (modality, &a.window) {
        (Modality::CT, None) => Intensity::ct_default(),
        (Modality::CT, Some(w)) => parse_window(w)?,
        (Modality::MR, None) => Intensity::ZScore,
        (Modality::MR, Some(_)) => bail!("--window applies to CT; this data set is MR (z-score normalised)"),
    };
    let patch_edge = match a.patch {
        Some(p) => {
            if !spec.is_legal_input(p) {
                bail!(
                    "--patch {p} is not a legal input size for this network; legal sizes near it: {:?}",
                    spec.legal_sizes_near(p)
                );
            }
            p
        }
        None => {
            // The largest legal size up to 116 (a 28³ output for 4 valid levels).
            let legal = spec.legal_input_sizes(116);
            *legal.last().unwrap_or(&spec.smallest_input())
        }
    };
    let cache = match &a.cache {
        Some(c) => c.clone(),
        None => manifest_path.parent().unwrap_or(Path::new(".")).join(".edge-seg-cache"),
    };
    match a.patience {
        Some(0) => bail!("--patience must be at least 1"),
        Some(_) if a.val_every == 0 => bail!("--patience counts validations: give --val-every N > 0"),
        _ => {}
    }
    if !(a.class_balance.is_finite() && a.class_balance >= 0.0) {
        bail!("--class-balance must be a number ≥ 0, not {}", a.class_balance);
    }
    Ok(TrainConfig {
        manifest: manifest_path.to_path_buf(),
        task: task.to_string(),
        spec,
        weight_init: WeightInit::parse(&a.weight_init)
            .with_context(|| format!("--weight-init must be glorot or he, not {:?}", a.weight_init))?,
        spacing_mm: parse_spacing(a.spacing.as_deref().unwrap_or(DEFAULT_SPACING))?,
        patch: [patch_edge; 3],
        modality,
        intensity,
        crop_to_body: a.crop_body,
        loss: LossKind::parse(&a.loss)
            .with_context(|| format!("--loss must be naive, masked or marginal, got {:?}", a.loss))?,
        loss_weights: LossWeights {
            dice: a.dice_weight,
            ce: a.ce_weight,
            dice_present_only: a.dice_present_only,
            class_balance: a.class_balance,
        },
        iterations: a.iterations,
        batch: a.batch.max(1),
        lr: a.lr,
        schedule: Schedule::parse(&a.schedule).with_context(|| "--schedule must be constant, cosine or poly")?,
        warmup: a.warmup,
        optimizer: match a.optimizer.as_str() {
            "adam" => OptimizerKind::Adam,
            "adamw" => OptimizerKind::AdamW {
                weight_decay: a.weight_decay,
            },
            _ => bail!("--optimizer must be adam or adamw"),
        },
        val_every: a.val_every,
        patience: a.patience,
        seed: a.seed,
        foreground_fraction: a.foreground.clamp(0.0, 1.0),
        complete_patches: a.complete_patches.clamp(0.0, 1.0),
        augmentation: augmentation(&a.augment)?,
        trainable,
        max_train_cases: None,
        max_val_cases: a.val_cases,
        strategy: strategy.to_string(),
        base_model: None,
        base_weights_sha256: None,
        prior_stages: Vec::new(),
        cache,
    })
}

pub fn run(a: &BaseArgs) -> Result<()> {
    if let Some(t) = a.train.threads {
        set_threads(t)?;
    }
    let (chosen, parallel_devices) = choose_devices(&a.train.device, &a.train.devices)?;
    let device = chosen.device;
    let text =
        std::fs::read_to_string(&a.manifest).with_context(|| format!("{}: cannot read", a.manifest.display()))?;
    let manifest = Manifest::from_json(&text).with_context(|| format!("{}: invalid manifest", a.manifest.display()))?;
    let mut cfg = train_config(&a.train, &a.manifest, &manifest, "base", "base", Trainable::All, None)?;
    let opts = RunOptions {
        quiet: a.train.quiet,
        resume: a.train.resume,
        stop_after: a.train.stop_after,
        parallel_devices,
    };
    let init = match &a.init {
        None => Init::Random,
        Some(dir) => {
            let ckpt = edge_seg_export::Checkpoint::read(dir)?;
            if ckpt.card.network != cfg.spec {
                bail!("{}: its network differs from the one asked for", dir.display());
            }
            // This run continues the checkpoint's training: its stages come first.
            cfg.prior_stages = ckpt.card.provenance.stages.clone();
            Init::Weights(ckpt.weights)
        }
    };
    let o = train(&cfg, init, &a.out, &device, &opts)?;
    println!(
        "trained {} iterations in {:.0} s; best validation Dice {} (iteration {}); checkpoints in {}",
        o.iterations,
        o.seconds,
        o.best_val_dice.map(|d| format!("{d:.4}")).unwrap_or_else(|| "-".into()),
        o.best_iteration.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
        o.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_and_bad_ones_are_refused() {
        assert_eq!(
            parse_window("-1000,400").unwrap(),
            Intensity::Window {
                min: -1000.0,
                max: 400.0,
                rescale: true
            }
        );
        for bad in ["400,-1000", "-500", "a,b", "-500,400,3", "nan,4"] {
            let e = parse_window(bad).unwrap_err().to_string();
            assert!(e.contains("--window"), "{bad}: {e}");
        }
    }
}
