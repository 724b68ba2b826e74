//! The shipped default model end to end: a phantom scan in a non-canonical
//! orientation with anisotropic spacing → `edge-seg infer` with no `--model`
//! → a label map on the scan's exact grid (checked with nibabel too) whose
//! structures overlap the phantom's own labels, more closely than with the
//! model grid's labels copied back (`--resampling nearest`).
//!
//! The thresholds are what the shipped model reaches (see
//! `docs/base-training.md`), a little below, so a regression fails.

use std::collections::BTreeMap;

use edge_seg_models::labels::BASE_LABELS;
use edge_seg_runtime::volume::read_volume;
use edge_seg_tests::{python_with, run, run_python, tests_dir, text};
use edge_seg_trainer::metrics;

/// Every base structure, with the least Dice the shipped model must reach.
const REQUIRED: [(&str, f64); 13] = [
    ("liver", 0.93),
    ("lung_left", 0.95),
    ("lung_right", 0.95),
    ("heart", 0.92),
    ("kidneys", 0.92),
    ("spleen", 0.89),
    ("stomach", 0.89),
    ("urinary_bladder", 0.92),
    ("aorta", 0.86),
    ("inferior_vena_cava", 0.86),
    ("pancreas", 0.78),
    ("trachea", 0.8),
    ("gallbladder", 0.7),
];

/// The least mean Dice over the structures the phantom holds.
const REQUIRED_MEAN: f64 = 0.88;

#[test]
fn default_model_segments_a_phantom_on_its_own_grid() {
    let zoo = tests_dir().parent().unwrap().join("models/zoo");
    assert!(
        zoo.join("default.onnx").exists(),
        "models/zoo/default.onnx is shipped and compiled into edge-seg"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut o = edge_seg_tests::phantoms::small(dir.path(), 1, 41, 1.5);
    o.slice_mm = (3.0, 3.5);
    o.orientations = vec!["LPS".into()];
    let manifest = edge_seg_tests::phantoms::write(&o);
    let ds = edge_seg_trainer::data::Dataset::load(&manifest).unwrap();
    let case = &ds.manifest.cases[0];
    let scan = ds.resolve(&case.image);
    let out = dir.path().join("seg.nii.gz");
    let r = run(
        "edge-seg",
        &["infer", scan.to_str().unwrap(), "-o", out.to_str().unwrap(), "-v"],
    );
    let t = text(&r);
    assert!(r.status.success(), "{t}");
    assert!(
        t.contains("synthetic phantoms"),
        "says the model was trained on phantoms: {t}"
    );

    let input = read_volume(&scan).unwrap();
    let seg = read_volume(&out).unwrap();
    assert_eq!(edge_seg_runtime::geometry::orientation_code(&input.affine), "LPS");
    assert_eq!(seg.shape_ijk(), input.shape_ijk());
    assert!(seg.affine.max_abs_diff(&input.affine) < 1e-5);

    let (_, truth) = ds.read_case(case).unwrap();
    let truth = truth.unwrap();
    let dice_of = |seg: &edge_seg_runtime::volume::Volume| {
        let pred = seg.data.mapv(|v| v as u16);
        assert_eq!(pred.dim(), truth.dim());
        let mut dice = BTreeMap::new();
        for (c, name) in BASE_LABELS.iter().enumerate().skip(1) {
            let c = c as u16;
            if truth.iter().any(|&t| t == c) {
                dice.insert(*name, metrics::dice(pred.view(), truth.view(), c).unwrap());
            }
        }
        dice
    };
    let dice = dice_of(&seg);
    eprintln!("Dice per structure: {dice:.3?}");
    for (name, least) in REQUIRED {
        let d = *dice.get(name).unwrap_or_else(|| panic!("the phantom holds no {name}"));
        assert!(d >= least, "{name} Dice {d:.3} < {least}: {dice:.3?}");
    }
    let mean = dice.values().sum::<f64>() / dice.len() as f64;
    assert!(
        mean >= REQUIRED_MEAN,
        "mean Dice {mean:.3} < {REQUIRED_MEAN}: {dice:.3?}"
    );

    // Copying the model grid's labels instead of interpolating its scores
    // gives blockier boundaries on this finer scan grid: lower Dice.
    let nearest = dir.path().join("seg-nearest.nii.gz");
    let r = run(
        "edge-seg",
        &[
            "infer",
            scan.to_str().unwrap(),
            "-o",
            nearest.to_str().unwrap(),
            "--resampling",
            "nearest",
            "--quiet",
        ],
    );
    assert!(r.status.success(), "{}", text(&r));
    let blocky = dice_of(&read_volume(&nearest).unwrap());
    let blocky_mean = blocky.values().sum::<f64>() / blocky.len() as f64;
    eprintln!("with --resampling nearest: mean {blocky_mean:.3}, {blocky:.3?}");
    assert!(
        mean > blocky_mean + 0.005,
        "interpolated scores {mean:.3} vs copied labels {blocky_mean:.3}"
    );

    let Some(py) = python_with(&["nibabel", "numpy"]) else {
        return;
    };
    let stem = dir.path().join("nib");
    run_python(
        &py,
        "nibabel_peer.py",
        &["read", out.to_str().unwrap(), stem.to_str().unwrap()],
    );
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stem.with_extension("json")).unwrap()).unwrap();
    let shape = input.shape_ijk();
    assert_eq!(j["shape"], serde_json::json!([shape[0], shape[1], shape[2]]));
    for r in 0..4 {
        for c in 0..4 {
            let a = j["affine"][r][c].as_f64().unwrap();
            assert!((a - input.affine.0[r][c]).abs() < 1e-4, "nibabel affine [{r}][{c}] {a}");
        }
    }
}
