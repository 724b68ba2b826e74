//! Label vocabularies: the base structures with their fixed indices, the
//! downstream tasks, display colours and left–right pairing.

/// The base vocabulary. Indices are fixed: phantoms, the shipped default
/// model and every test rely on them.
pub const BASE_LABELS: [&str; 14] = [
    "background",
    "liver",
    "spleen",
    "kidneys",
    "gallbladder",
    "stomach",
    "pancreas",
    "aorta",
    "inferior_vena_cava",
    "lung_left",
    "lung_right",
    "heart",
    "trachea",
    "urinary_bladder",
];

/// A downstream task of the transfer experiments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Task {
    Esophagus,
    Vertebrae,
    LungLobes,
    Prostate,
}

impl Task {
    pub const ALL: [Task; 4] = [Task::Esophagus, Task::Vertebrae, Task::LungLobes, Task::Prostate];

    /// The name used on command lines and in files (`lung-lobes`).
    pub fn name(self) -> &'static str {
        match self {
            Task::Esophagus => "esophagus",
            Task::Vertebrae => "vertebrae",
            Task::LungLobes => "lung-lobes",
            Task::Prostate => "prostate",
        }
    }

    pub fn from_name(name: &str) -> Option<Task> {
        Task::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Ordered labels, index 0 = background.
    pub fn labels(self) -> &'static [&'static str] {
        match self {
            Task::Esophagus => &["background", "esophagus"],
            Task::Vertebrae => &["background", "vertebrae"],
            Task::LungLobes => &[
                "background",
                "right_upper",
                "right_middle",
                "right_lower",
                "left_upper",
                "left_lower",
            ],
            Task::Prostate => &["background", "prostate"],
        }
    }

    /// `"CT"` or `"MR"`.
    pub fn modality(self) -> &'static str {
        match self {
            Task::Prostate => "MR",
            _ => "CT",
        }
    }
}

/// Display colour (R, G, B) for a label name: fixed, anatomical colours for
/// known structures (close to 3D Slicer's), a stable hashed colour otherwise.
pub fn label_colour(name: &str) -> [u8; 3] {
    match name {
        "background" => [0, 0, 0],
        "liver" => [221, 130, 101],
        "spleen" => [157, 108, 162],
        "kidneys" | "kidney_left" | "kidney_right" => [185, 102, 83],
        "gallbladder" => [139, 150, 98],
        "stomach" => [216, 132, 105],
        "pancreas" => [249, 180, 111],
        "aorta" => [224, 97, 76],
        "inferior_vena_cava" => [0, 151, 206],
        "lung_left" => [172, 138, 115],
        "lung_right" => [197, 165, 145],
        "heart" => [206, 110, 84],
        "trachea" => [182, 228, 255],
        "urinary_bladder" => [222, 154, 132],
        "esophagus" => [211, 171, 143],
        "vertebrae" => [241, 214, 145],
        "right_upper" => [128, 174, 128],
        "right_middle" => [241, 214, 145],
        "right_lower" => [177, 122, 101],
        "left_upper" => [111, 184, 210],
        "left_lower" => [216, 101, 79],
        "prostate" => [230, 158, 140],
        other => {
            // FNV-1a, mapped to a bright colour.
            let mut h: u32 = 0x811c_9dc5;
            for b in other.bytes() {
                h = (h ^ b as u32).wrapping_mul(0x0100_0193);
            }
            [
                64 + (h & 0xbf) as u8,
                64 + ((h >> 8) & 0xbf) as u8,
                64 + ((h >> 16) & 0xbf) as u8,
            ]
        }
    }
}

/// The left–right partner of a label name (`lung_left` ↔ `lung_right`,
/// `left_upper` ↔ `right_upper`), if its name says it has a side.
fn mirror_name(name: &str) -> Option<String> {
    let parts: Vec<&str> = name.split('_').collect();
    if !parts.iter().any(|p| *p == "left" || *p == "right") {
        return None;
    }
    Some(
        parts
            .iter()
            .map(|p| match *p {
                "left" => "right",
                "right" => "left",
                other => other,
            })
            .collect::<Vec<_>>()
            .join("_"),
    )
}

/// The label permutation a left–right flip of the image must apply to the
/// label map: `perm[i]` is the index label `i` becomes. `None` when some
/// lateral label has no partner in the vocabulary (e.g. `right_middle`), in
/// which case left–right flips must not be used for augmentation.
pub fn left_right_permutation(labels: &[impl AsRef<str>]) -> Option<Vec<usize>> {
    let names: Vec<&str> = labels.iter().map(|l| l.as_ref()).collect();
    names
        .iter()
        .enumerate()
        .map(|(i, name)| match mirror_name(name) {
            None => Some(i),
            Some(mirror) => names.iter().position(|n| *n == mirror),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_indices_are_fixed() {
        assert_eq!(BASE_LABELS[1], "liver");
        assert_eq!(BASE_LABELS[3], "kidneys");
        assert_eq!(BASE_LABELS[9], "lung_left");
        assert_eq!(BASE_LABELS[13], "urinary_bladder");
    }

    #[test]
    fn tasks_round_trip_names() {
        for t in Task::ALL {
            assert_eq!(Task::from_name(t.name()), Some(t));
            assert_eq!(t.labels()[0], "background");
        }
        assert_eq!(Task::from_name("liver"), None);
    }

    #[test]
    fn base_flip_swaps_lungs_only() {
        let perm = left_right_permutation(&BASE_LABELS).unwrap();
        assert_eq!(perm[9], 10);
        assert_eq!(perm[10], 9);
        for (i, &p) in perm.iter().enumerate() {
            if i != 9 && i != 10 {
                assert_eq!(p, i);
            }
        }
    }

    #[test]
    fn lobes_cannot_be_flipped() {
        assert_eq!(left_right_permutation(Task::LungLobes.labels()), None);
        assert_eq!(
            left_right_permutation(&["background", "left_upper", "right_upper"]),
            Some(vec![0, 2, 1])
        );
    }

    #[test]
    fn colours_are_stable() {
        assert_eq!(label_colour("liver"), [221, 130, 101]);
        assert_eq!(label_colour("unknown_thing"), label_colour("unknown_thing"));
        assert_ne!(label_colour("unknown_thing"), [0, 0, 0]);
    }
}
