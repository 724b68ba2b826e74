//! Per-structure statistics end to end: a phantom whose field of view is cut
//! through the liver, so the liver reaches the scan's edge. `edge-seg stats`
//! on its own labels and `edge-seg infer` on the scan report the liver with
//! `touches_border: true` (and say its volume is a lower bound), and the mean
//! intensity of every structure agrees with nibabel + numpy's.

use edge_seg_models::labels::BASE_LABELS;
use edge_seg_runtime::volume::{read_volume, write_labels, Volume};
use edge_seg_tests::{python_with, run, run_python, text};
use ndarray::{s, Array3};

#[test]
fn a_structure_cut_by_the_field_of_view_touches_the_border() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = edge_seg_tests::phantoms::small(dir.path(), 1, 43, 2.5);
    o.orientations = vec!["RAS".into()];
    let manifest = edge_seg_tests::phantoms::write(&o);
    let ds = edge_seg_trainer::data::Dataset::load(&manifest).unwrap();
    let case = &ds.manifest.cases[0];
    let scan = read_volume(&ds.resolve(&case.image)).unwrap();
    let truth = read_volume(&ds.resolve(case.label.as_ref().unwrap())).unwrap();
    let liver = BASE_LABELS.iter().position(|l| *l == "liver").unwrap() as f32;
    // Cut the field of view along i through the liver's middle.
    let is: Vec<usize> = truth
        .data
        .indexed_iter()
        .filter(|(_, &v)| v == liver)
        .map(|((_, _, i), _)| i)
        .collect();
    assert!(!is.is_empty(), "the phantom has a liver");
    let cut = (is.iter().min().unwrap() + is.iter().max().unwrap()) / 2;
    // Keep voxels 0 to the cut (the affine stays), the side without the
    // rest of the liver.
    let crop = |a: &Array3<f32>| a.slice(s![.., .., ..=cut]).to_owned();
    let cropped = Volume::from_array(crop(&scan.data), scan.affine);
    let scan_path = dir.path().join("cropped.nii.gz");
    cropped.write_float(&scan_path).unwrap();
    let labels: Array3<u16> = crop(&truth.data).mapv(|v| v as u16);
    let labels_path = dir.path().join("cropped_labels.nii.gz");
    write_labels(&labels_path, labels.view(), &cropped.header_with_own_affine()).unwrap();

    // The phantom's own labels, through `edge-seg stats`.
    let r = run(
        "edge-seg",
        &[
            "stats",
            scan_path.to_str().unwrap(),
            labels_path.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(r.status.success(), "{}", text(&r));
    let report: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let structures = report["structures"].as_array().unwrap();
    let by_name = |n: &str| structures.iter().find(|s| s["name"] == n).unwrap().clone();
    assert_eq!(by_name("liver")["touches_border"], true, "{report:#}");
    assert!(
        report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().starts_with("liver touches")),
        "{report:#}"
    );
    // The spleen and the stomach, on the other side, lie inside it.
    for inside in ["spleen", "stomach"] {
        let st = by_name(inside);
        assert!(st["voxels"].as_u64().unwrap() > 0, "{report:#}");
        assert_eq!(st["touches_border"], false, "{report:#}");
    }
    if let Some(py) = python_with(&["nibabel", "numpy"]) {
        let means: serde_json::Value = serde_json::from_str(&run_python(
            &py,
            "structure_means.py",
            &[scan_path.to_str().unwrap(), labels_path.to_str().unwrap()],
        ))
        .unwrap();
        let means = means.as_object().unwrap();
        assert!(means.len() >= 10, "{means:?}");
        for (index, mean) in means {
            let st = structures.iter().find(|s| s["index"].to_string() == *index).unwrap();
            let ours = st["intensity"]["mean"].as_f64().unwrap();
            let theirs = mean.as_f64().unwrap();
            assert!(
                (ours - theirs).abs() <= 1e-3 * theirs.abs().max(1.0),
                "{}: mean {ours} vs nibabel {theirs}",
                st["name"]
            );
        }
    }

    // And the shipped model's segmentation of the cropped scan.
    let out = dir.path().join("seg.nii.gz");
    let r = run(
        "edge-seg",
        &[
            "infer",
            scan_path.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(r.status.success(), "{}", text(&r));
    let reports: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let liver = reports[0]["structures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "liver")
        .unwrap()
        .clone();
    assert!(liver["voxels"].as_u64().unwrap() > 0);
    assert_eq!(liver["touches_border"], true, "{liver:#}");
    let c = liver["centroid_ras_mm"].as_array().unwrap();
    let l = liver["centroid_lps_mm"].as_array().unwrap();
    assert_eq!(c[0].as_f64().unwrap(), -l[0].as_f64().unwrap());
    assert_eq!(c[2].as_f64().unwrap(), l[2].as_f64().unwrap());
}
