//! Phantom data sets on disk: the nnU-Net v2 raw layout (`imagesTr/`,
//! `labelsTr/`, `dataset.json`) plus our dataset manifest.
//!
//! A sparse base set mimics a collection of public data sets: each training
//! case comes from one "source" that annotates only some structures and
//! numbers them its own way; validation and test cases are complete.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use edge_seg_models::card::Modality;
use edge_seg_models::labels::{Task, BASE_LABELS};
use edge_seg_models::manifest::{Case, Manifest, Source, Split, MANIFEST_FORMAT_VERSION};
use edge_seg_runtime::volume::{header_for, write_i16, write_labels};
use ndarray::Array3;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde_json::json;

use super::anatomy::Anatomy;
use super::render::{render, Fov, Grid, NoiseModel, Rendered};
use crate::progress::Progress;

/// A source of the sparse base set: its name, the field of view it images
/// (z range, nominal mm) and its label numbering (value → base label name).
pub struct SourceSpec {
    pub name: &'static str,
    pub z_range: (f64, f64),
    pub labels: &'static [(u16, &'static str)],
}

/// The sources of the sparse base set. `kidney_ct` labels the two kidneys
/// separately (left 1, right 2); the manifest maps both to `kidneys`.
pub const SOURCES: &[SourceSpec] = &[
    SourceSpec {
        name: "liver_ct",
        z_range: (250.0, 520.0),
        labels: &[(1, "liver")],
    },
    SourceSpec {
        name: "spleen_ct",
        z_range: (280.0, 520.0),
        labels: &[(1, "spleen")],
    },
    SourceSpec {
        name: "kidney_ct",
        z_range: (180.0, 430.0),
        labels: &[(1, "kidney_left"), (2, "kidney_right")],
    },
    SourceSpec {
        name: "pancreas_ct",
        z_range: (250.0, 470.0),
        labels: &[(1, "pancreas")],
    },
    SourceSpec {
        name: "abdomen_ct",
        z_range: (150.0, 520.0),
        labels: &[
            (1, "spleen"),
            (2, "gallbladder"),
            (3, "liver"),
            (4, "stomach"),
            (5, "aorta"),
            (6, "inferior_vena_cava"),
            (7, "pancreas"),
        ],
    },
    SourceSpec {
        name: "chest_ct",
        z_range: (420.0, 780.0),
        labels: &[(1, "lung_right"), (2, "lung_left"), (3, "trachea"), (4, "heart")],
    },
    SourceSpec {
        name: "pelvis_ct",
        z_range: (-50.0, 220.0),
        labels: &[(1, "urinary_bladder")],
    },
];

/// Whole-body z range of complete cases (nominal mm).
const FULL_Z: (f64, f64) = (-50.0, 780.0);

/// What to generate.
#[derive(Clone, Debug)]
pub struct PhantomOptions {
    pub out: PathBuf,
    pub cases: usize,
    pub seed: u64,
    pub modality: Modality,
    pub task: Option<Task>,
    pub sparse: bool,
    /// Fraction of sparse training cases that are complete.
    pub complete_fraction: f64,
    /// With `sparse`: label every structure in every case, keeping each
    /// case's source and field of view — the sparse set's images, annotated
    /// completely.
    pub label_all: bool,
    /// Base structures the label maps hold, the others left as background
    /// (empty: all of them). Not for a task, nor for a sparse set unless
    /// `label_all`.
    pub structures: Vec<String>,
    /// Complete cases for validation and test, after the training cases.
    pub val: usize,
    pub test: usize,
    pub inplane_mm: (f64, f64),
    pub slice_mm: (f64, f64),
    pub orientations: Vec<String>,
    pub dataset_id: u32,
    pub name: Option<String>,
}

/// What was generated.
pub struct Generated {
    pub dir: PathBuf,
    pub manifest: PathBuf,
    pub cases: usize,
    pub voxels: u64,
}

fn dataset_name(opts: &PhantomOptions) -> String {
    if let Some(n) = &opts.name {
        return n.clone();
    }
    let base = match (opts.task, opts.sparse, opts.label_all) {
        (Some(t), _, _) => return format!("Phantom{}", t.name().replace('-', "")),
        (None, true, false) => "PhantomSparse",
        (None, true, true) => "PhantomSparseLabelled",
        (None, false, _) => "PhantomBase",
    };
    if opts.structures.is_empty() {
        base.into()
    } else {
        format!("{base}{}", opts.structures.len())
    }
}

/// The vocabulary of a base set restricted to `structures` (all when
/// empty), and the lookup from base label index to the restricted index.
fn base_vocabulary(structures: &[String]) -> Result<(Vec<String>, [u8; 256])> {
    for name in structures {
        if !BASE_LABELS[1..].contains(&name.as_str()) {
            bail!(
                "--structures: {name:?} is not a base structure (choose from {})",
                BASE_LABELS[1..].join(", ")
            );
        }
        if structures.iter().filter(|s| *s == name).count() > 1 {
            bail!("--structures: {name:?} is listed twice");
        }
    }
    // Base order, whatever order they were listed in.
    let mut lut = [0u8; 256];
    let mut vocabulary = vec![BASE_LABELS[0].to_string()];
    for (i, name) in BASE_LABELS.iter().enumerate().skip(1) {
        if structures.is_empty() || structures.iter().any(|s| s == name) {
            lut[i] = vocabulary.len() as u8;
            vocabulary.push(name.to_string());
        }
    }
    Ok((vocabulary, lut))
}

/// One case's plan, decided before rendering.
struct CasePlan {
    id: String,
    split: Split,
    source: Option<&'static SourceSpec>,
    seed: u64,
}

/// Field of view for a z range: the body's width plus a margin, the ends
/// jittered, sometimes cropped at the sides.
fn field_of_view(rng: &mut impl Rng, z: (f64, f64), task: Option<Task>) -> Fov {
    let jitter = |rng: &mut dyn rand::RngCore| rng.random_range(-30.0..30.0);
    let mut lo = [-200.0, -150.0, z.0 + jitter(rng)];
    let mut hi = [200.0, 150.0, z.1 + jitter(rng)];
    if task == Some(Task::Prostate) {
        lo[0] = -130.0;
        hi[0] = 130.0;
        lo[1] = -90.0;
        hi[1] = 120.0;
    } else if rng.random_bool(0.15) {
        let crop = rng.random_range(10.0..40.0);
        lo[0] += crop;
        hi[0] -= crop;
    }
    if hi[2] - lo[2] < 60.0 {
        hi[2] = lo[2] + 60.0;
    }
    Fov { lo, hi }
}

fn task_z_range(task: Task, rng: &mut impl Rng) -> (f64, f64) {
    match task {
        Task::Esophagus => (420.0, 780.0),
        Task::LungLobes => (430.0, 770.0),
        Task::Prostate => (-60.0, 110.0),
        Task::Vertebrae => {
            let start = rng.random_range(100.0..450.0);
            (start, start + rng.random_range(200.0..330.0))
        }
    }
}

/// Label names present in a base label map, as the source numbers them.
fn source_label_map(r: &Rendered, grid: &Grid, source: &SourceSpec) -> (Array3<u16>, Vec<String>) {
    let vocab_index = |name: &str| BASE_LABELS.iter().position(|l| *l == name);
    let mut lut = [0u16; 256];
    let mut kidney_values = (0u16, 0u16);
    for &(value, name) in source.labels {
        match name {
            "kidney_left" => kidney_values.0 = value,
            "kidney_right" => kidney_values.1 = value,
            _ => lut[vocab_index(name).expect("base label") as usize] = value,
        }
    }
    let split_kidneys = kidney_values != (0, 0);
    let mut out = Array3::<u16>::zeros(r.base.dim());
    let mut present = std::collections::BTreeSet::new();
    for ((k, j, i), &b) in r.base.indexed_iter() {
        let v = if b == 3 && split_kidneys {
            // The patient's right is world +x.
            let x = grid.affine.apply([i as f64, j as f64, k as f64])[0];
            if x > 0.0 {
                kidney_values.1
            } else {
                kidney_values.0
            }
        } else {
            lut[b as usize]
        };
        if v > 0 {
            out[[k, j, i]] = v;
            present.insert(BASE_LABELS[b as usize].to_string());
        }
    }
    (out, present.into_iter().collect())
}

/// Generate a data set. Returns where it went.
pub fn generate(opts: &PhantomOptions, progress: impl FnMut(usize, usize) + Send) -> Result<Generated> {
    if opts.cases == 0 {
        bail!("--cases must be at least 1");
    }
    if opts.task == Some(Task::Prostate) && opts.modality != Modality::MR {
        bail!("the prostate task is MR: use --modality mr");
    }
    if opts.label_all && (!opts.sparse || opts.task.is_some()) {
        bail!("--label-all applies to a sparse base set (--sparse, no --task)");
    }
    if !opts.structures.is_empty() && opts.task.is_some() {
        bail!("--structures applies to the base structures, not to a task");
    }
    if !opts.structures.is_empty() && opts.sparse && !opts.label_all {
        bail!("--structures on a sparse set needs --label-all: the sources already choose what each case annotates");
    }
    let (base_vocabulary, base_lut) = base_vocabulary(&opts.structures)?;
    // Sources annotate their own structures only in a sparse set that is
    // not labelled completely.
    let by_source = opts.sparse && !opts.label_all;
    let name = dataset_name(opts);
    let dir = opts.out.join(format!("Dataset{:03}_{name}", opts.dataset_id));
    for sub in ["imagesTr", "labelsTr"] {
        std::fs::create_dir_all(dir.join(sub)).with_context(|| format!("cannot create {}", dir.join(sub).display()))?;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let total = opts.cases + opts.val + opts.test;
    let prefix = name.to_lowercase();
    let plans: Vec<CasePlan> = (0..total)
        .map(|n| {
            let split = if n < opts.cases {
                Split::Train
            } else if n < opts.cases + opts.val {
                Split::Val
            } else {
                Split::Test
            };
            let source = if opts.sparse
                && opts.task.is_none()
                && split == Split::Train
                && !rng.random_bool(opts.complete_fraction)
            {
                Some(&SOURCES[rng.random_range(0..SOURCES.len())])
            } else {
                None
            };
            CasePlan {
                id: format!("{prefix}_{n:04}"),
                split,
                source,
                seed: rng.random(),
            }
        })
        .collect();

    let labels: Vec<String> = match opts.task {
        Some(t) => t.labels().iter().map(|s| s.to_string()).collect(),
        None => base_vocabulary,
    };
    let mut sources: BTreeMap<String, Source> = BTreeMap::new();
    let full_source = if opts.sparse { "complete" } else { "phantom" };
    sources.insert(
        full_source.into(),
        Source {
            labels: labels
                .iter()
                .enumerate()
                .skip(1)
                .map(|(i, l)| (i.to_string(), l.clone()))
                .collect(),
            description: "every structure of the vocabulary, in vocabulary numbering".into(),
        },
    );
    if by_source && opts.task.is_none() {
        for s in SOURCES {
            sources.insert(
                s.name.into(),
                Source {
                    labels: s
                        .labels
                        .iter()
                        .map(|&(v, n)| {
                            (
                                v.to_string(),
                                if n.starts_with("kidney_") {
                                    "kidneys".into()
                                } else {
                                    n.into()
                                },
                            )
                        })
                        .collect(),
                    description: format!(
                        "annotates {}",
                        s.labels.iter().map(|l| l.1).collect::<Vec<_>>().join(", ")
                    ),
                },
            );
        }
    }

    let mr = opts.modality == Modality::MR;
    // Cases are independent (each has its own seed), so they render and
    // compress in parallel; the manifest keeps the plans' order, and of
    // several failures the first in that order is reported.
    let progress = Progress::start(progress, total);
    let made = plans
        .par_iter()
        .map(|plan| -> Result<(Case, u64)> {
            let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
            let anatomy = Anatomy::random(&mut rng, mr);
            let z = match (opts.task, plan.source) {
                (Some(t), _) => task_z_range(t, &mut rng),
                (None, Some(s)) => s.z_range,
                (None, None) => FULL_Z,
            };
            let fov = field_of_view(&mut rng, z, opts.task);
            let orientation = &opts.orientations[rng.random_range(0..opts.orientations.len())];
            let inplane = rng.random_range(opts.inplane_mm.0..=opts.inplane_mm.1);
            let slice = rng.random_range(opts.slice_mm.0..=opts.slice_mm.1);
            let mut grid = Grid::new(fov, orientation, inplane, slice);
            // Scanner coordinates differ from case to case.
            let shift = [
                rng.random_range(-20.0..20.0),
                rng.random_range(-20.0..20.0),
                rng.random_range(-300.0..300.0),
            ];
            let noise = NoiseModel::random(&mut rng, mr);
            let rendered = render(&anatomy, &grid, &noise, opts.task, rng.random());
            let (label_map, annotated, source_name) = match (opts.task, plan.source) {
                (Some(_), _) => {
                    let present = present_labels(&rendered.task, &labels);
                    (rendered.task.mapv(|v| v as u16), present, full_source.to_string())
                }
                (None, Some(s)) if by_source => {
                    let (m, present) = source_label_map(&rendered, &grid, s);
                    (m, present, s.name.to_string())
                }
                (None, _) => {
                    let base = rendered.base.mapv(|v| base_lut[v as usize]);
                    let present = present_labels(&base, &labels);
                    (base.mapv(|v| v as u16), present, full_source.to_string())
                }
            };
            for (r, s) in shift.iter().enumerate() {
                grid.affine.0[r][3] += s;
            }
            let voxels = grid.voxels() as u64;
            let header = header_for(&grid.affine, rendered.image.dim());
            let image_rel = format!("imagesTr/{}_0000.nii.gz", plan.id);
            let label_rel = format!("labelsTr/{}.nii.gz", plan.id);
            let image_i16 = rendered.image.mapv(|v| v as i16);
            write_i16(&dir.join(&image_rel), image_i16.view(), &header)?;
            write_labels(&dir.join(&label_rel), label_map.view(), &header)?;
            let case = Case {
                id: plan.id.clone(),
                image: image_rel,
                label: Some(label_rel),
                annotated,
                modality: opts.modality,
                source: source_name,
                split: plan.split,
            };
            progress.item_done();
            Ok((case, voxels))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    let voxels = made.iter().map(|m| m.1).sum::<u64>();
    let cases: Vec<Case> = made.into_iter().map(|m| m.0).collect();
    let manifest = Manifest {
        format_version: MANIFEST_FORMAT_VERSION,
        name: name.clone(),
        vocabulary: labels.clone(),
        sources,
        cases,
    };
    manifest.validate().context("generated manifest is invalid")?;
    let manifest_path = dir.join("manifest.json");
    edge_seg_models::atomic::write_bytes(&manifest_path, manifest.to_json_pretty().as_bytes())
        .with_context(|| format!("cannot write {}", manifest_path.display()))?;
    let dataset_json = json!({
        "name": name,
        "description": if by_source {
            "edge-seg synthetic phantoms, sparsely annotated: label files use each source's own numbering (see manifest.json); only the complete cases suit nnU-Net"
        } else {
            "edge-seg synthetic phantoms, fully annotated"
        },
        "channel_names": {"0": opts.modality.to_string()},
        "labels": labels.iter().enumerate().map(|(i, l)| (l.clone(), i)).collect::<BTreeMap<_, _>>(),
        "numTraining": total,
        "file_ending": ".nii.gz",
        "reference": "edge-seg-train phantoms",
    });
    edge_seg_models::atomic::write_bytes(
        &dir.join("dataset.json"),
        serde_json::to_string_pretty(&dataset_json)?.as_bytes(),
    )?;
    Ok(Generated {
        dir,
        manifest: manifest_path,
        cases: total,
        voxels,
    })
}

/// Names of the labels (index ≥ 1) that occur in `labels`.
fn present_labels(labels: &Array3<u8>, names: &[String]) -> Vec<String> {
    let mut seen = vec![false; 256];
    for &v in labels.iter() {
        seen[v as usize] = true;
    }
    (1..names.len())
        .filter(|&i| seen[i])
        .map(|i| names[i].clone())
        .collect()
}

/// Where a case's files are, relative to a manifest.
pub fn resolve(manifest_path: &Path, rel: &str) -> PathBuf {
    let p = Path::new(rel);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        manifest_path.parent().unwrap_or(Path::new(".")).join(p)
    }
}
