//! What `transfer` and `experiment` share: the transfer flags, and the
//! task's training settings derived from the base model.

use anyhow::{bail, Context, Result};
use clap::Args;
use edge_seg_models::card::{Intensity, Modality};
use edge_seg_models::spec::NetworkSpec;

use super::base::{override_spec, parse_spacing, parse_window, TrainArgs};
use crate::base_model::BaseModel;
use crate::transfer::{task_spec, HeadInit, Strategy, TransferPlan};

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
    pub fn plan(&self, strategy: Strategy, iterations: u64, lr: f64) -> Result<TransferPlan> {
        Ok(TransferPlan {
            strategy,
            head: HeadInit::parse(&self.head).with_context(|| "--head must be fresh or keep-last")?,
            tail: self.tail.max(1),
            phase1: self.phase1.unwrap_or(iterations / 2),
            phase2_lr: self.phase2_lr.unwrap_or(lr),
        })
    }
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
