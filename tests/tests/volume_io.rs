//! NIfTI reading and writing against nibabel, and every bad-input case of
//! the volume reader through `edge-seg info`.

use std::path::{Path, PathBuf};

use edge_seg_runtime::geometry::Affine;
use edge_seg_runtime::volume::{read_volume, read_volume_with, write_float, write_labels, ReadOptions};
use edge_seg_tests::raw_nifti::RawNifti;
use edge_seg_tests::{assert_clean_failure, python_with, run, run_python, text};
use serde_json::Value;

struct Expected {
    shape: [usize; 3],
    affine: Affine,
    data: Vec<f32>,
    json: Value,
}

fn load_expected(stem: &Path) -> Expected {
    let json: Value = serde_json::from_str(&std::fs::read_to_string(stem.with_extension("json")).unwrap()).unwrap();
    let shape: Vec<usize> = json["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let mut affine = Affine::IDENTITY;
    for r in 0..4 {
        for c in 0..4 {
            affine.0[r][c] = json["affine"][r][c].as_f64().unwrap();
        }
    }
    let raw = std::fs::read(stem.with_extension("raw")).unwrap();
    let data = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    Expected {
        shape: [shape[0], shape[1], shape[2]],
        affine,
        data,
        json,
    }
}

fn nibabel_cases(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut cases: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".nii") || p.to_string_lossy().ends_with(".nii.gz"))
        .map(|p| {
            let name = p
                .file_name()
                .unwrap()
                .to_string_lossy()
                .split('.')
                .next()
                .unwrap()
                .to_string();
            (name, p)
        })
        .collect();
    cases.sort();
    cases
}

#[test]
fn reads_nibabel_files_as_nibabel_does() {
    let Some(py) = python_with(&["nibabel", "numpy"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    run_python(&py, "nibabel_peer.py", &["write", dir.path().to_str().unwrap()]);
    let cases = nibabel_cases(dir.path());
    let names: Vec<&str> = cases.iter().map(|(n, _)| n.as_str()).collect();
    for required in [
        "ras",
        "lps",
        "las",
        "oblique",
        "pls",
        "qform_only",
        "sform_only",
        "big_endian",
        "scaled",
        "uint8",
        "float64",
    ] {
        assert!(names.contains(&required), "nibabel case {required} missing: {names:?}");
    }
    for (name, path) in &cases {
        let exp = load_expected(&dir.path().join(name));
        let vol = read_volume(path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(vol.shape_ijk(), exp.shape, "{name}: shape");
        let diff = vol.affine.max_abs_diff(&exp.affine);
        assert!(
            diff < 1e-4,
            "{name}: affine differs by {diff}\nours:\n{:?}\nnibabel:\n{:?}",
            vol.affine,
            exp.affine
        );
        let ours: Vec<f32> = vol.data.iter().copied().collect();
        assert_eq!(ours.len(), exp.data.len(), "{name}: voxel count");
        for (n, (a, b)) in ours.iter().zip(&exp.data).enumerate() {
            assert!(
                (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                "{name}: voxel {n}: ours {a}, nibabel {b}"
            );
        }
    }
}

#[test]
fn nibabel_reads_what_we_write() {
    let Some(py) = python_with(&["nibabel", "numpy"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    run_python(&py, "nibabel_peer.py", &["write", src.to_str().unwrap()]);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    for (name, path) in nibabel_cases(&src) {
        let vol = read_volume(&path).unwrap();
        let labels = vol.data.mapv(|v| (v.abs() as u16) % 14);
        let label_path = out.join(format!("{name}.seg.nii.gz"));
        write_labels(&label_path, labels.view(), &vol.header).unwrap();
        let float_path = out.join(format!("{name}.f.nii"));
        write_float(&float_path, vol.data.view(), &vol.header).unwrap();
        for (kind, written, values) in [
            ("labels", &label_path, labels.mapv(|v| v as f32)),
            ("float", &float_path, vol.data.clone()),
        ] {
            let stem = out.join(format!("{name}-{kind}-nib"));
            run_python(
                &py,
                "nibabel_peer.py",
                &["read", written.to_str().unwrap(), stem.to_str().unwrap()],
            );
            let seen = load_expected(&stem);
            let diff = seen.affine.max_abs_diff(&vol.affine);
            assert!(diff < 1e-4, "{name} {kind}: nibabel sees an affine off by {diff}");
            assert_eq!(seen.shape, vol.shape_ijk(), "{name} {kind}");
            let ours: Vec<f32> = values.iter().copied().collect();
            assert_eq!(ours, seen.data, "{name} {kind}: data");
            if kind == "labels" {
                assert_eq!(seen.json["dtype"], "uint8", "{name}");
                assert_eq!(seen.json["intent_code"], 1002);
            }
            assert_eq!(
                seen.json["sform_code"].as_i64().unwrap(),
                vol.header.sform_code as i64,
                "{name} {kind}: sform code carried over"
            );
            assert_eq!(
                seen.json["qform_code"].as_i64().unwrap(),
                vol.header.qform_code as i64,
                "{name} {kind}: qform code carried over"
            );
        }
    }
}

#[test]
fn info_rejects_missing_file_and_directory() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere.nii.gz");
    let out = run("edge-seg", &["info", missing.to_str().unwrap()]);
    assert_clean_failure(&out, "nowhere.nii.gz");
    assert!(text(&out).contains("no such file"));
    let sub = dir.path().join("folder.nii");
    std::fs::create_dir(&sub).unwrap();
    let out = run("edge-seg", &["info", sub.to_str().unwrap()]);
    assert_clean_failure(&out, "folder.nii");
    assert!(text(&out).contains("directory"));
}

#[test]
fn a_small_memory_limit_refuses_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ok.nii");
    RawNifti::default().write(&path);
    assert!(read_volume(&path).is_ok());
    let err = read_volume_with(&path, ReadOptions { max_bytes: 100 })
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than the limit of 100 bytes"), "{err}");
}

#[test]
fn four_d_files_give_the_first_volume_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fourd.nii.gz");
    let values: Vec<f32> = (0..2 * 3 * 4 * 2).map(|v| v as f32).collect();
    let mut raw = RawNifti::float32([2, 3, 4], &values);
    raw.dim = [4, 2, 3, 4, 2, 1, 1, 1];
    raw.write(&path);
    let vol = read_volume(&path).unwrap();
    assert_eq!(vol.shape_ijk(), [2, 3, 4]);
    let got: Vec<f32> = vol.data.iter().copied().collect();
    assert_eq!(got, values[..24].to_vec());
    assert!(vol.warnings.iter().any(|w| w.contains("only the first 3D volume")));
    let out = run("edge-seg", &["info", path.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(text(&out).contains("only the first 3D volume"));
}

#[test]
fn info_describes_odd_spacing_and_nan_voxels_with_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let mut values: Vec<f32> = (0..2 * 3 * 4).map(|v| v as f32).collect();
    values[5] = f32::NAN;
    values[6] = f32::INFINITY;
    let mut raw = RawNifti::float32([2, 3, 4], &values);
    raw.sform_code = 0;
    raw.qform_code = 0;
    raw.pixdim = [1.0, 0.0, f32::NAN, 1.0, 1.0, 1.0, 1.0, 1.0];
    let path = dir.path().join("odd.nii");
    raw.write(&path);
    let out = run("edge-seg", &["info", path.to_str().unwrap()]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("2 voxels are NaN or infinite"), "{t}");
    assert!(t.contains("spacing"), "{t}");
    let vol = read_volume(&path).unwrap();
    let err = vol.check_geometry(&path).unwrap_err().to_string();
    assert!(err.contains("odd.nii") && err.contains("spacing"), "{err}");

    let json = run("edge-seg", &["info", "--json", path.to_str().unwrap()]);
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["non_finite_voxels"], 2);
    assert_eq!(v["shape"], serde_json::json!([2, 3, 4]));
}

#[test]
fn info_reports_geometry() {
    let dir = tempfile::tempdir().unwrap();
    let values: Vec<f32> = (0..4 * 5 * 6).map(|v| v as f32 - 60.0).collect();
    let mut raw = RawNifti::float32([4, 5, 6], &values);
    raw.srow = [[-0.8, 0.0, 0.0, 10.0], [0.0, -0.8, 0.0, 20.0], [0.0, 0.0, 2.5, 30.0]];
    let path = dir.path().join("lps.nii.gz");
    raw.write(&path);
    let out = run("edge-seg", &["info", "--json", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["orientation"], "LPS");
    assert_eq!(v["datatype"], "float32");
    assert_eq!(v["min"], -60.0);
    assert_eq!(v["max"], 59.0);
    assert_eq!(v["memory_f32_bytes"], 480);
    let s: Vec<f64> = v["spacing_mm"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert!((s[0] - 0.8).abs() < 1e-6 && (s[2] - 2.5).abs() < 1e-6);
    let plain = run("edge-seg", &["info", path.to_str().unwrap()]);
    assert!(text(&plain).contains("orientation:  LPS"));
}
