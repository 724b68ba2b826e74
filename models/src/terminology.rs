//! Coded terminology for structures: the SNOMED CT category, type and
//! laterality codes a DICOM Segmentation carries for each segment. Cards may
//! give their own (`ModelCard::terminology`); the built-in vocabulary has
//! defaults, checked against the DICOM content-mapping resource (CID 7150
//! "Segmentation Property Categories", CID 7151 "Segmentation Property
//! Types"); other labels get a code of the private scheme `99EDGESEG`.

use serde::{Deserialize, Serialize};

/// A coded concept: value, coding scheme designator, meaning.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Code {
    pub value: String,
    pub scheme: String,
    pub meaning: String,
}

impl Code {
    pub fn new(value: &str, scheme: &str, meaning: &str) -> Code {
        Code {
            value: value.into(),
            scheme: scheme.into(),
            meaning: meaning.into(),
        }
    }

    fn sct(value: &str, meaning: &str) -> Code {
        Code::new(value, "SCT", meaning)
    }
}

/// What a structure is, in codes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StructureCode {
    pub category: Code,
    #[serde(rename = "type")]
    pub kind: Code,
    /// Laterality (SNOMED CT Left / Right / Right and left), when the type has a side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modifier: Option<Code>,
}

/// The private coding scheme of labels without a standard code.
pub const PRIVATE_SCHEME: &str = "99EDGESEG";

/// The codes of a built-in label name, if it has them.
pub fn builtin_code(label: &str) -> Option<StructureCode> {
    let anatomy = || Code::sct("91723000", "Anatomical Structure");
    let left = || Code::sct("7771000", "Left");
    let right = || Code::sct("24028007", "Right");
    let both = || Code::sct("51440002", "Right and left");
    let (kind, modifier) = match label {
        "liver" => (Code::sct("10200004", "Liver"), None),
        "spleen" => (Code::sct("78961009", "Spleen"), None),
        "kidneys" => (Code::sct("64033007", "Kidney"), Some(both())),
        "kidney_left" => (Code::sct("64033007", "Kidney"), Some(left())),
        "kidney_right" => (Code::sct("64033007", "Kidney"), Some(right())),
        "gallbladder" => (Code::sct("28231008", "Gallbladder"), None),
        "stomach" => (Code::sct("69695003", "Stomach"), None),
        "pancreas" => (Code::sct("15776009", "Pancreas"), None),
        "aorta" => (Code::sct("15825003", "Aorta"), None),
        "inferior_vena_cava" => (Code::sct("64131007", "Inferior vena cava"), None),
        "lung_left" => (Code::sct("39607008", "Lung"), Some(left())),
        "lung_right" => (Code::sct("39607008", "Lung"), Some(right())),
        "heart" => (Code::sct("80891009", "Heart"), None),
        "trachea" => (Code::sct("44567001", "Trachea"), None),
        "urinary_bladder" => (Code::sct("89837001", "Bladder"), None),
        "esophagus" => (Code::sct("32849002", "Esophagus"), None),
        "vertebrae" => (Code::sct("51282000", "Vertebra"), None),
        "right_upper" => (Code::sct("45653009", "Upper lobe of lung"), Some(right())),
        "right_middle" => (Code::sct("72481006", "Middle lobe of right lung"), None),
        "right_lower" => (Code::sct("90572001", "Lower lobe of lung"), Some(right())),
        "left_upper" => (Code::sct("45653009", "Upper lobe of lung"), Some(left())),
        "left_lower" => (Code::sct("90572001", "Lower lobe of lung"), Some(left())),
        "prostate" => (Code::sct("41216001", "Prostate"), None),
        _ => return None,
    };
    Some(StructureCode {
        category: anatomy(),
        kind,
        modifier,
    })
}

/// A code of the private scheme for a label without a standard one.
pub fn private_code(label: &str) -> StructureCode {
    StructureCode {
        category: Code::sct("91723000", "Anatomical Structure"),
        kind: Code::new(label, PRIVATE_SCHEME, &label.replace('_', " ")),
        modifier: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{Task, BASE_LABELS};

    #[test]
    fn every_builtin_label_has_a_snomed_code() {
        let mut all: Vec<&str> = BASE_LABELS[1..].to_vec();
        for t in Task::ALL {
            all.extend(&t.labels()[1..]);
        }
        for l in all {
            let c = builtin_code(l).unwrap_or_else(|| panic!("{l} has no code"));
            assert_eq!(c.kind.scheme, "SCT", "{l}");
            assert!(c.kind.value.chars().all(|d| d.is_ascii_digit()), "{l}");
        }
        assert!(builtin_code("tumour").is_none());
        assert_eq!(private_code("tumour").kind.scheme, PRIVATE_SCHEME);
    }
}
