//! The dataset manifest: a label vocabulary, per-source label mappings, and
//! cases with the labels each one annotates.
//!
//! This module checks the manifest's own consistency; whether the files it
//! names exist and agree with each other is checked by the trainer, which
//! reads them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::card::Modality;

/// The manifest format this build reads and writes.
pub const MANIFEST_FORMAT_VERSION: u32 = 1;

/// Which part of an experiment a case belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
}

/// A data source: how its label files number the structures.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Label value in this source's files (as a decimal string, since JSON
    /// keys are strings) → vocabulary name. Several values may map to one
    /// name (e.g. `kidney_left` and `kidney_right` → `kidneys`). Value 0 is
    /// always background and never listed.
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// One scan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub id: String,
    /// Image path, relative to the manifest's directory (or absolute).
    pub image: String,
    /// Label-map path, relative to the manifest's directory (or absolute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Vocabulary names of the structures annotated in this case. A
    /// structure not listed may still be visible in the image, unlabelled.
    pub annotated: Vec<String>,
    pub modality: Modality,
    pub source: String,
    pub split: Split,
}

/// A dataset manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format_version: u32,
    #[serde(default)]
    pub name: String,
    /// Ordered label vocabulary, index 0 = background.
    pub vocabulary: Vec<String>,
    pub sources: BTreeMap<String, Source>,
    pub cases: Vec<Case>,
}

/// Why a manifest is not usable.
#[derive(Debug, Error)]
pub enum ManifestError {
    #[error("manifest is not valid JSON for this format: {0}")]
    Json(#[from] serde_json::Error),
    #[error("manifest format_version {0} is not supported (this build reads version {MANIFEST_FORMAT_VERSION})")]
    UnknownVersion(u32),
    #[error("manifest vocabulary must start with \"background\" and have at least one structure")]
    Vocabulary,
    #[error("manifest vocabulary names {0:?} twice")]
    DuplicateVocabulary(String),
    #[error("manifest vocabulary has {0} labels; at most 65535 are supported")]
    VocabularySize(usize),
    #[error("source {source_name:?}: label value {value:?} must be an integer from 1 to 65535")]
    SourceValue { source_name: String, value: String },
    #[error("source {source_name:?}: label value {value} maps to {name:?}, which is not in the vocabulary")]
    SourceTarget {
        source_name: String,
        value: String,
        name: String,
    },
    #[error("manifest has no cases")]
    NoCases,
    #[error("case {0:?} appears twice")]
    DuplicateCase(String),
    #[error("case #{0} has an empty id")]
    EmptyId(usize),
    #[error("case {case:?}: source {source_name:?} is not defined in \"sources\"")]
    UnknownSource { case: String, source_name: String },
    #[error("case {case:?}: annotated label {label:?} is not in the vocabulary")]
    UnknownAnnotated { case: String, label: String },
    #[error("case {case:?}: annotated label {label:?} cannot appear in its label file: source {source_name:?} maps no value to it")]
    UnmappedAnnotated {
        case: String,
        label: String,
        source_name: String,
    },
    #[error("case {case:?}: lists annotated labels but has no label file")]
    MissingLabelPath { case: String },
    #[error("case {case:?}: an empty image path")]
    EmptyImage { case: String },
}

impl Manifest {
    pub fn from_json(text: &str) -> Result<Manifest, ManifestError> {
        let m: Manifest = serde_json::from_str(text)?;
        m.validate()?;
        Ok(m)
    }

    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a manifest always serialises")
    }

    pub fn validate(&self) -> Result<(), ManifestError> {
        if self.format_version != MANIFEST_FORMAT_VERSION {
            return Err(ManifestError::UnknownVersion(self.format_version));
        }
        if self.vocabulary.len() < 2 || self.vocabulary[0] != "background" {
            return Err(ManifestError::Vocabulary);
        }
        if self.vocabulary.len() > 65535 {
            return Err(ManifestError::VocabularySize(self.vocabulary.len()));
        }
        for (i, v) in self.vocabulary.iter().enumerate() {
            if self.vocabulary[..i].contains(v) {
                return Err(ManifestError::DuplicateVocabulary(v.clone()));
            }
        }
        for (source_name, source) in &self.sources {
            for (value, name) in &source.labels {
                match value.parse::<u32>() {
                    Ok(1..=65535) => {}
                    _ => {
                        return Err(ManifestError::SourceValue {
                            source_name: source_name.clone(),
                            value: value.clone(),
                        })
                    }
                }
                if self.vocabulary_index(name).is_none_or(|i| i == 0) {
                    return Err(ManifestError::SourceTarget {
                        source_name: source_name.clone(),
                        value: value.clone(),
                        name: name.clone(),
                    });
                }
            }
        }
        if self.cases.is_empty() {
            return Err(ManifestError::NoCases);
        }
        let mut ids = BTreeSet::new();
        for (i, case) in self.cases.iter().enumerate() {
            if case.id.is_empty() {
                return Err(ManifestError::EmptyId(i));
            }
            if !ids.insert(case.id.as_str()) {
                return Err(ManifestError::DuplicateCase(case.id.clone()));
            }
            if case.image.is_empty() {
                return Err(ManifestError::EmptyImage { case: case.id.clone() });
            }
            let source = self
                .sources
                .get(&case.source)
                .ok_or_else(|| ManifestError::UnknownSource {
                    case: case.id.clone(),
                    source_name: case.source.clone(),
                })?;
            if !case.annotated.is_empty() && case.label.is_none() {
                return Err(ManifestError::MissingLabelPath { case: case.id.clone() });
            }
            for label in &case.annotated {
                if self.vocabulary_index(label).is_none_or(|i| i == 0) {
                    return Err(ManifestError::UnknownAnnotated {
                        case: case.id.clone(),
                        label: label.clone(),
                    });
                }
                if !source.labels.values().any(|n| n == label) {
                    return Err(ManifestError::UnmappedAnnotated {
                        case: case.id.clone(),
                        label: label.clone(),
                        source_name: case.source.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    pub fn vocabulary_index(&self, name: &str) -> Option<usize> {
        self.vocabulary.iter().position(|v| v == name)
    }

    /// For a source: a lookup table from label value in its files to
    /// vocabulary index, and the largest value it maps. Values not in the
    /// table are not allowed in that source's files.
    pub fn source_lookup(&self, source: &str) -> Option<BTreeMap<u32, u16>> {
        let s = self.sources.get(source)?;
        Some(
            s.labels
                .iter()
                .filter_map(|(value, name)| {
                    let v = value.parse::<u32>().ok()?;
                    let i = self.vocabulary_index(name)? as u16;
                    Some((v, i))
                })
                .collect(),
        )
    }

    /// Vocabulary indices of the structures annotated in `case`, ascending.
    pub fn annotated_indices(&self, case: &Case) -> Vec<usize> {
        let mut v: Vec<usize> = case.annotated.iter().filter_map(|l| self.vocabulary_index(l)).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// A case is complete when every foreground structure of the vocabulary
    /// is annotated in it, so its background voxels are truly background.
    pub fn is_complete(&self, case: &Case) -> bool {
        self.annotated_indices(case).len() == self.vocabulary.len() - 1
    }

    pub fn cases_in(&self, split: Split) -> impl Iterator<Item = &Case> {
        self.cases.iter().filter(move |c| c.split == split)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Manifest {
        let json = r#"{
          "format_version": 1,
          "name": "demo",
          "vocabulary": ["background", "liver", "kidneys"],
          "sources": {
            "a": {"labels": {"1": "liver"}},
            "b": {"labels": {"1": "kidneys", "2": "kidneys", "3": "liver"}}
          },
          "cases": [
            {"id": "c1", "image": "i1.nii.gz", "label": "l1.nii.gz", "annotated": ["liver"],
             "modality": "CT", "source": "a", "split": "train"},
            {"id": "c2", "image": "i2.nii.gz", "label": "l2.nii.gz", "annotated": ["liver", "kidneys"],
             "modality": "CT", "source": "b", "split": "test"}
          ]
        }"#;
        Manifest::from_json(json).unwrap()
    }

    #[test]
    fn parses_and_answers_questions() {
        let m = example();
        assert!(!m.is_complete(&m.cases[0]));
        assert!(m.is_complete(&m.cases[1]));
        assert_eq!(m.annotated_indices(&m.cases[1]), vec![1, 2]);
        let lut = m.source_lookup("b").unwrap();
        assert_eq!(lut[&1], 2);
        assert_eq!(lut[&2], 2);
        assert_eq!(lut[&3], 1);
        assert_eq!(m.cases_in(Split::Test).count(), 1);
        let back = Manifest::from_json(&m.to_json_pretty()).unwrap();
        assert_eq!(back, m);
    }

    fn err(m: Manifest) -> String {
        Manifest::from_json(&m.to_json_pretty()).unwrap_err().to_string()
    }

    #[test]
    fn validation_errors() {
        let m = example();
        let mut x = m.clone();
        x.cases[0].annotated.push("spleen".into());
        assert!(err(x).contains("\"spleen\" is not in the vocabulary"));
        let mut x = m.clone();
        x.cases[0].annotated.push("kidneys".into());
        assert!(err(x).contains("source \"a\" maps no value"));
        let mut x = m.clone();
        x.cases[1].id = "c1".into();
        assert!(err(x).contains("twice"));
        let mut x = m.clone();
        x.cases[1].source = "zz".into();
        assert!(err(x).contains("not defined"));
        let mut x = m.clone();
        x.sources
            .get_mut("a")
            .unwrap()
            .labels
            .insert("0".into(), "liver".into());
        assert!(err(x).contains("integer from 1"));
        let mut x = m.clone();
        x.sources
            .get_mut("a")
            .unwrap()
            .labels
            .insert("4".into(), "lungs".into());
        assert!(err(x).contains("not in the vocabulary"));
        let mut x = m.clone();
        x.vocabulary[0] = "bg".into();
        assert!(err(x).contains("background"));
        let mut x = m.clone();
        x.cases[0].label = None;
        assert!(err(x).contains("no label file"));
        let mut x = m;
        x.cases.clear();
        assert!(err(x).contains("no cases"));
    }

    #[test]
    fn wrong_types_are_errors() {
        assert!(Manifest::from_json(r#"{"format_version": "1"}"#).is_err());
        assert!(Manifest::from_json("[]").is_err());
        assert!(Manifest::from_json("\u{0}").is_err());
    }
}
