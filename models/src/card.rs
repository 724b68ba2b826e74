//! The model card: everything the runtime needs to know about a model, stored
//! as JSON in the ONNX `metadata_props` (key [`CARD_METADATA_KEY`]) and in a
//! `.card.json` beside checkpoints.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::spec::{NetworkSpec, SpecError};

/// The card format this build reads and writes.
pub const CARD_FORMAT_VERSION: u32 = 1;

/// Key of the card in an ONNX model's `metadata_props`.
pub const CARD_METADATA_KEY: &str = "edge_seg.card";

/// Imaging modality.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Modality {
    CT,
    MR,
}

impl Modality {
    pub fn parse(s: &str) -> Option<Modality> {
        match s.to_ascii_uppercase().as_str() {
            "CT" => Some(Modality::CT),
            "MR" | "MRI" => Some(Modality::MR),
            _ => None,
        }
    }
}

impl std::fmt::Display for Modality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Modality::CT => "CT",
            Modality::MR => "MR",
        })
    }
}

/// What the network's `scores` output holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    Probabilities,
    Logits,
}

/// How voxel intensities are mapped before the network.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Intensity {
    /// Clip to `[min, max]` (CT: Hounsfield units); with `rescale`, map the
    /// window linearly onto `[-1, 1]`.
    Window { min: f32, max: f32, rescale: bool },
    /// Z-score over the non-zero voxels (MR).
    ZScore,
}

impl Intensity {
    /// The paper's CT transform: clip to [-500, 400] HU, rescaled to [-1, 1].
    pub fn ct_default() -> Self {
        Intensity::Window {
            min: -500.0,
            max: 400.0,
            rescale: true,
        }
    }

    /// The value an out-of-body voxel (air for CT, zero for MR) takes after
    /// the transform: a natural padding value for tiles.
    pub fn background_value(&self) -> f32 {
        match *self {
            Intensity::Window { rescale: true, .. } => -1.0,
            Intensity::Window { min, .. } => min,
            Intensity::ZScore => 0.0,
        }
    }
}

/// How class scores become a label per voxel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decode {
    /// The class with the highest score.
    Argmax,
    /// The foreground class with the highest probability if it is ≥ 0.5,
    /// else background.
    Threshold,
}

/// The network's input and output tile, `[z, y, x]` voxels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tile {
    pub input: [usize; 3],
    pub output: [usize; 3],
}

/// One training run that led to a model: a base run, a run continued from
/// another's weights (`--init`), or a phase of fine-tuning.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainingStage {
    /// `base`, `scratch`, `vanilla`, `finetune phase 1`, ...
    pub name: String,
    pub loss: String,
    pub iterations: u64,
    /// The options that shape the result, e.g. `lr 2e-3 cosine, warmup 50,
    /// batch 2, patch 48, seed 11, class-balance 0.75`.
    pub options: String,
}

/// Where a model came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Provenance {
    /// Name of the base model it was transferred from (`default` for the
    /// shipped base, else its checkpoint folder).
    pub base_model: Option<String>,
    /// The base model's `weights_sha256`, so the exact base can be found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_weights_sha256: Option<String>,
    /// `base`, `scratch`, `vanilla` or `finetune`.
    pub strategy: Option<String>,
    pub training_scans: Option<usize>,
    /// Mean validation Dice over foreground classes.
    pub validation_dice: Option<f64>,
    /// The data set's name (from its manifest), never a path.
    pub dataset: Option<String>,
    /// True when the model was trained on synthetic phantoms only.
    pub synthetic_data: bool,
    /// Iterations over all of `stages` (those of this model's own training:
    /// a task model's base has its own card).
    pub iterations: Option<u64>,
    pub loss: Option<String>,
    /// Every training stage that led to these weights, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<TrainingStage>,
    /// Normalisation the network was trained with and how the exported
    /// graph holds it (absent: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normalisation: Option<String>,
}

/// The model card.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCard {
    pub format_version: u32,
    pub task: String,
    pub modality: Modality,
    /// Ordered label names, index 0 = background.
    pub labels: Vec<String>,
    /// Voxel spacing the network expects, mm, in `axis_order` (z, y, x).
    pub spacing_mm: [f64; 3],
    /// World orientation of the network's axes (always `RAS`).
    pub orientation: String,
    /// Array axis order of the network's spatial dims (always `zyx`).
    pub axis_order: String,
    pub output: OutputKind,
    pub intensity: Intensity,
    pub network: NetworkSpec,
    pub tile: Tile,
    pub decode: Decode,
    #[serde(default)]
    pub provenance: Provenance,
    /// Coded names (SNOMED CT) of structures, by label name, for DICOM
    /// Segmentations; labels not listed use the built-in codes
    /// ([`crate::terminology::builtin_code`]) or a private code.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub terminology: std::collections::BTreeMap<String, crate::terminology::StructureCode>,
    /// SHA-256 of the weights as stored (see `weights::weights_sha256`).
    pub weights_sha256: String,
}

/// Why a card cannot be used.
#[derive(Debug, Error)]
pub enum CardError {
    #[error("model card is not valid JSON for this format: {0}")]
    Json(#[from] serde_json::Error),
    #[error("model card format_version {found} is not supported (this build reads version {CARD_FORMAT_VERSION})")]
    UnknownVersion { found: u32 },
    #[error("model card network: {0}")]
    Network(#[from] SpecError),
    #[error("model card lists {labels} labels but the network has {classes} classes")]
    LabelCount { labels: usize, classes: usize },
    #[error("model card label 0 must be \"background\", found {0:?}")]
    FirstLabel(String),
    #[error("model card label {0:?} appears twice")]
    DuplicateLabel(String),
    #[error("terminology names {0:?}, which is not one of the card's labels")]
    TerminologyLabel(String),
    #[error("model card label {index} is empty")]
    EmptyLabel { index: usize },
    #[error("model card spacing_mm {0:?} must be three finite values > 0")]
    Spacing([f64; 3]),
    #[error("model card orientation {0:?} is not supported (expected \"RAS\")")]
    Orientation(String),
    #[error("model card axis_order {0:?} is not supported (expected \"zyx\")")]
    AxisOrder(String),
    #[error("model card tile input {input:?}: {reason}")]
    TileInput { input: [usize; 3], reason: SpecError },
    #[error("model card tile output {claimed:?} does not match the network's output {computed:?} for input {input:?}")]
    TileOutput {
        input: [usize; 3],
        claimed: [usize; 3],
        computed: [usize; 3],
    },
    #[error("model card intensity window [{min}, {max}] must be finite with min < max")]
    Window { min: f32, max: f32 },
    #[error("model card has {0} input channels; edge-seg reads single-channel scans")]
    InChannels(usize),
    #[error("model card weights_sha256 {0:?} is not 64 hexadecimal digits")]
    WeightsHash(String),
}

impl ModelCard {
    /// A card for `network` with argmax decoding, probability output, the
    /// network's output tile for `tile_input`, no provenance, and an unset
    /// weight hash (all zeros; set it when the weights are known).
    pub fn new(
        task: &str,
        modality: Modality,
        labels: &[impl AsRef<str>],
        network: NetworkSpec,
        spacing_mm: [f64; 3],
        intensity: Intensity,
        tile_input: [usize; 3],
    ) -> Result<ModelCard, CardError> {
        let output = network
            .output_shape(tile_input)
            .map_err(|reason| CardError::TileInput {
                input: tile_input,
                reason,
            })?;
        let card = ModelCard {
            format_version: CARD_FORMAT_VERSION,
            task: task.to_string(),
            modality,
            labels: labels.iter().map(|l| l.as_ref().to_string()).collect(),
            spacing_mm,
            orientation: "RAS".into(),
            axis_order: "zyx".into(),
            output: OutputKind::Probabilities,
            intensity,
            network,
            tile: Tile {
                input: tile_input,
                output,
            },
            decode: Decode::Argmax,
            provenance: Provenance::default(),
            terminology: Default::default(),
            weights_sha256: "0".repeat(64),
        };
        card.validate()?;
        Ok(card)
    }

    /// Parse and validate a card.
    pub fn from_json(text: &str) -> Result<ModelCard, CardError> {
        let card: ModelCard = serde_json::from_str(text)?;
        card.validate()?;
        Ok(card)
    }

    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a card always serialises")
    }

    pub fn classes(&self) -> usize {
        self.network.classes
    }

    /// The coded name of label `index`: the card's own, the built-in one,
    /// or a private code.
    pub fn structure_code(&self, index: usize) -> crate::terminology::StructureCode {
        let name = &self.labels[index];
        self.terminology
            .get(name)
            .cloned()
            .or_else(|| crate::terminology::builtin_code(name))
            .unwrap_or_else(|| crate::terminology::private_code(name))
    }

    /// Check the card is self-consistent.
    pub fn validate(&self) -> Result<(), CardError> {
        if self.format_version != CARD_FORMAT_VERSION {
            return Err(CardError::UnknownVersion {
                found: self.format_version,
            });
        }
        self.network.validate()?;
        if self.network.in_channels != 1 {
            return Err(CardError::InChannels(self.network.in_channels));
        }
        if self.labels.len() != self.network.classes {
            return Err(CardError::LabelCount {
                labels: self.labels.len(),
                classes: self.network.classes,
            });
        }
        if self.labels[0] != "background" {
            return Err(CardError::FirstLabel(self.labels[0].clone()));
        }
        for (i, l) in self.labels.iter().enumerate() {
            if l.trim().is_empty() {
                return Err(CardError::EmptyLabel { index: i });
            }
            if self.labels[..i].contains(l) {
                return Err(CardError::DuplicateLabel(l.clone()));
            }
        }
        if let Some(name) = self.terminology.keys().find(|n| !self.labels.contains(n)) {
            return Err(CardError::TerminologyLabel(name.clone()));
        }
        if !self.spacing_mm.iter().all(|s| s.is_finite() && *s > 0.0) {
            return Err(CardError::Spacing(self.spacing_mm));
        }
        if self.orientation != "RAS" {
            return Err(CardError::Orientation(self.orientation.clone()));
        }
        if self.axis_order != "zyx" {
            return Err(CardError::AxisOrder(self.axis_order.clone()));
        }
        let computed = self
            .network
            .output_shape(self.tile.input)
            .map_err(|reason| CardError::TileInput {
                input: self.tile.input,
                reason,
            })?;
        if computed != self.tile.output {
            return Err(CardError::TileOutput {
                input: self.tile.input,
                claimed: self.tile.output,
                computed,
            });
        }
        if let Intensity::Window { min, max, .. } = self.intensity {
            if !(min.is_finite() && max.is_finite() && min < max) {
                return Err(CardError::Window { min, max });
            }
        }
        if self.weights_sha256.len() != 64 || !self.weights_sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CardError::WeightsHash(self.weights_sha256.clone()));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::labels::BASE_LABELS;

    pub(crate) fn example_card() -> ModelCard {
        let network = NetworkSpec {
            base_filters: 8,
            ..NetworkSpec::paper(BASE_LABELS.len())
        };
        ModelCard {
            format_version: CARD_FORMAT_VERSION,
            task: "base".into(),
            modality: Modality::CT,
            labels: BASE_LABELS.iter().map(|s| s.to_string()).collect(),
            spacing_mm: [3.0, 3.0, 3.0],
            orientation: "RAS".into(),
            axis_order: "zyx".into(),
            output: OutputKind::Probabilities,
            intensity: Intensity::ct_default(),
            network,
            tile: Tile {
                input: [132; 3],
                output: [44; 3],
            },
            decode: Decode::Argmax,
            provenance: Provenance {
                synthetic_data: true,
                ..Default::default()
            },
            terminology: Default::default(),
            weights_sha256: "0".repeat(64),
        }
    }

    #[test]
    fn card_round_trips_through_json() {
        let card = example_card();
        let back = ModelCard::from_json(&card.to_json_pretty()).unwrap();
        assert_eq!(card, back);
    }

    fn err(card: ModelCard) -> String {
        ModelCard::from_json(&card.to_json_pretty()).unwrap_err().to_string()
    }

    #[test]
    fn validation_names_each_problem() {
        let c = example_card();
        assert!(err(ModelCard {
            format_version: 7,
            ..c.clone()
        })
        .contains("format_version 7"));
        let mut few = c.clone();
        few.labels.pop();
        assert!(err(few).contains("13 labels but the network has 14"));
        let mut tile = c.clone();
        tile.tile.input = [132, 133, 132];
        let message = err(tile.clone());
        assert!(message.contains("133 is not legal"));
        // The reason is part of the message, not also a chained source that
        // error reporters would print a second time.
        let e = tile.validate().unwrap_err();
        assert!(std::error::Error::source(&e).is_none(), "{message}");
        let mut out = c.clone();
        out.tile.output = [40; 3];
        assert!(err(out).contains("does not match"));
        // NaN cannot travel through JSON (it becomes null): check it directly.
        let nan = ModelCard {
            spacing_mm: [1.0, f64::NAN, 1.0],
            ..c.clone()
        };
        assert!(nan.validate().unwrap_err().to_string().contains("spacing"));
        assert!(err(ModelCard {
            spacing_mm: [1.0, 0.0, 1.0],
            ..c.clone()
        })
        .contains("spacing"));
        let window = Intensity::Window {
            min: 10.0,
            max: -10.0,
            rescale: false,
        };
        assert!(err(ModelCard {
            intensity: window,
            ..c.clone()
        })
        .contains("window"));
        assert!(err(ModelCard {
            weights_sha256: "abc".into(),
            ..c.clone()
        })
        .contains("weights_sha256"));
        assert!(err(ModelCard {
            orientation: "LPS".into(),
            ..c.clone()
        })
        .contains("orientation"));
        let mut dup = c.clone();
        dup.labels[2] = "liver".into();
        assert!(err(dup).contains("twice"));
    }

    #[test]
    fn wrong_types_and_unknown_fields_are_errors() {
        let mut v: serde_json::Value = serde_json::to_value(example_card()).unwrap();
        v["labels"] = serde_json::json!(3);
        assert!(ModelCard::from_json(&v.to_string()).is_err());
        let mut v: serde_json::Value = serde_json::to_value(example_card()).unwrap();
        v["surprise"] = serde_json::json!(true);
        assert!(ModelCard::from_json(&v.to_string())
            .unwrap_err()
            .to_string()
            .contains("surprise"));
        assert!(ModelCard::from_json("").is_err());
        assert!(ModelCard::from_json("{\"format_version\": 1}").is_err());
    }

    #[test]
    fn intensity_json_form() {
        let j = serde_json::to_string(&Intensity::ct_default()).unwrap();
        assert_eq!(j, r#"{"kind":"window","min":-500.0,"max":400.0,"rescale":true}"#);
        let z: Intensity = serde_json::from_str(r#"{"kind":"z_score"}"#).unwrap();
        assert_eq!(z, Intensity::ZScore);
    }
}
