//! The C example, compiled with `cc` against libedge_seg, segments a scan
//! exactly as `edge-seg infer` does, and runs clean under valgrind.

use std::path::{Path, PathBuf};
use std::process::Command;

use edge_seg_models::labels::BASE_LABELS;
use edge_seg_runtime::geometry::Affine;
use edge_seg_runtime::volume::{read_volume, Volume};
use edge_seg_tests::models::write_random_model;
use edge_seg_tests::{in_ci, run, tests_dir, text};
use ndarray::Array3;

fn repo() -> PathBuf {
    tests_dir().parent().unwrap().to_path_buf()
}

/// The directory holding libedge_seg (the test's profile directory).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

fn compile_example(out: &Path) -> PathBuf {
    let lib = lib_dir();
    assert!(
        lib.join("libedge_seg.so").exists() || lib.join("libedge_seg.a").exists(),
        "libedge_seg is not built in {}: run `cargo build --release --workspace` (scripts/test does)",
        lib.display()
    );
    let exe = out.join("segment");
    let o = Command::new("cc")
        .arg(repo().join("examples/c/segment.c"))
        .args(["-Wall", "-Wextra", "-Werror", "-O1", "-g"])
        .arg(format!("-I{}", repo().join("include").display()))
        .arg(format!("-L{}", lib.display()))
        .arg("-ledge_seg")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("cc");
    assert!(o.status.success(), "cc failed:\n{}", text(&o));
    exe
}

/// A small random-weight model at 4 mm (the C example's in-memory volume
/// uses 4 mm voxels).
fn tiny_model(dir: &Path) -> PathBuf {
    write_random_model(dir, "tiny.onnx", edge_seg_tests::corpus::tiny_model_card(), 5)
}

fn small_scan(path: &Path) {
    let data = Array3::from_shape_fn((10, 24, 22), |(k, j, i)| {
        if (6..18).contains(&j) && (5..17).contains(&i) {
            40.0 + k as f32
        } else {
            -1000.0
        }
    });
    let a = Affine([
        [-3.0, 0.0, 0.0, 30.0],
        [0.0, -3.0, 0.0, 40.0],
        [0.0, 0.0, 5.0, -20.0],
        [0.0, 0.0, 0.0, 1.0],
    ]);
    Volume::from_array(data, a).write_float(path).unwrap();
}

/// The shipped sample scan with the default model when the build has one,
/// else a small scan and a tiny random model (its path as extra arguments).
fn scan_and_model(dir: &Path) -> (PathBuf, Vec<String>) {
    if repo().join("models/zoo/default.onnx").exists() {
        (repo().join("models/zoo/sample_ct.nii.gz"), vec![])
    } else {
        let s = dir.join("scan.nii.gz");
        small_scan(&s);
        (s, vec![tiny_model(dir).display().to_string()])
    }
}

#[test]
fn c_example_matches_edge_seg_infer() {
    let dir = tempfile::tempdir().unwrap();
    let exe = compile_example(dir.path());
    // The shipped sample scan with the default model when the build has one.
    let (scan, model_args) = scan_and_model(dir.path());
    let c_out = dir.path().join("c.seg.nii.gz");
    let o = Command::new(&exe)
        .arg(&scan)
        .arg(&c_out)
        .args(&model_args)
        .output()
        .unwrap();
    assert!(o.status.success(), "C example failed:\n{}", text(&o));
    let printed = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(printed.lines().count(), BASE_LABELS.len() - 1);
    let cli_out = dir.path().join("cli.seg.nii.gz");
    let mut args = vec![
        "infer".to_string(),
        "--quiet".into(),
        scan.display().to_string(),
        "-o".into(),
        cli_out.display().to_string(),
    ];
    if let Some(m) = model_args.first() {
        args.push("--model".into());
        args.push(m.clone());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run("edge-seg", &args);
    assert!(o.status.success(), "{}", text(&o));
    let a = read_volume(&c_out).unwrap();
    let b = read_volume(&cli_out).unwrap();
    assert_eq!(a.data, b.data, "C example and edge-seg infer differ");
    assert!(a.affine.max_abs_diff(&b.affine) < 1e-6);
    // The printed volumes match the report.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("cli.seg.json")).unwrap()).unwrap();
    for (line, st) in printed.lines().zip(report["structures"].as_array().unwrap()) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(parts[1], st["name"].as_str().unwrap());
        assert_eq!(parts[2].parse::<u64>().unwrap(), st["voxels"].as_u64().unwrap());
        // And the statistics (NaN where the structure is absent).
        let num = |k: usize| parts[k].parse::<f64>().unwrap();
        let close = |a: f64, b: &serde_json::Value| (a - b.as_f64().unwrap()).abs() <= 1e-3 * a.abs().max(1.0);
        if st["voxels"].as_u64().unwrap() > 0 {
            assert!(close(num(4), &st["intensity"]["mean"]), "{line} vs {st}");
            for axis in 0..3 {
                assert!(close(num(5 + axis), &st["centroid_ras_mm"][axis]), "{line} vs {st}");
            }
        } else {
            assert!(num(4).is_nan(), "{line}");
        }
        assert_eq!(
            parts[8] == "1",
            st["touches_border"].as_bool().unwrap(),
            "{line} vs {st}"
        );
    }
    // Errors come back as messages, not crashes.
    let o = Command::new(&exe)
        .arg(dir.path().join("missing.nii.gz"))
        .arg(dir.path().join("x.seg.nii.gz"))
        .args(&model_args)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("missing.nii.gz") && text(&o).contains("no such file"),
        "{}",
        text(&o)
    );
}

#[test]
fn c_example_is_clean_under_valgrind() {
    if Command::new("valgrind").arg("--version").output().is_err() {
        assert!(!in_ci(), "valgrind is missing (.ci/run installs it)");
        eprintln!("skipping: valgrind not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = compile_example(dir.path());
    let scan = dir.path().join("scan.nii.gz");
    small_scan(&scan);
    let model = tiny_model(dir.path());
    let out = dir.path().join("v.seg.nii.gz");
    let o = Command::new("valgrind")
        .args([
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
            "--error-exitcode=99",
            "--track-origins=no",
        ])
        .arg(&exe)
        .arg(&scan)
        .arg(&out)
        .arg(&model)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "valgrind reported errors:\n{t}");
    assert!(t.contains("ERROR SUMMARY: 0 errors"), "{t}");
    assert!(
        t.contains("definitely lost: 0 bytes") || t.contains("All heap blocks were freed"),
        "{t}"
    );
}

#[test]
fn c_example_segments_a_dicom_series() {
    let dir = tempfile::tempdir().unwrap();
    let exe = compile_example(dir.path());
    let (scan, model_args) = scan_and_model(dir.path());
    let vol = read_volume(&scan).unwrap();
    let series = dir.path().join("series");
    edge_seg_runtime::dicom::synthetic::write_series(
        &edge_seg_runtime::volume::Volume::from_array(vol.data.mapv(f32::round), vol.affine),
        &series,
        &Default::default(),
    )
    .unwrap();
    // NIfTI out: the same labels as `edge-seg infer` on the series.
    let c_out = dir.path().join("c.seg.nii.gz");
    let o = Command::new(&exe)
        .arg(&series)
        .arg(&c_out)
        .args(&model_args)
        .output()
        .unwrap();
    assert!(o.status.success(), "C example failed:\n{}", text(&o));
    let found = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.split_whitespace().nth(2) != Some("0"))
        .count();
    let cli_out = dir.path().join("cli.seg.nii.gz");
    let mut args = vec![
        "infer",
        "--quiet",
        series.to_str().unwrap(),
        "-o",
        cli_out.to_str().unwrap(),
    ];
    if let Some(m) = model_args.first() {
        args.extend(["--model", m.as_str()]);
    }
    let o = run("edge-seg", &args);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(read_volume(&c_out).unwrap().data, read_volume(&cli_out).unwrap().data);
    // `.dcm` out: a Segmentation with a segment per structure found.
    let seg = dir.path().join("c.seg.dcm");
    let o = Command::new(&exe)
        .arg(&series)
        .arg(&seg)
        .args(&model_args)
        .output()
        .unwrap();
    assert!(o.status.success(), "C example failed:\n{}", text(&o));
    let obj = dicom_object::open_file(&seg).unwrap();
    assert_eq!(
        obj.element(dicom_dictionary_std::tags::SOP_CLASS_UID)
            .unwrap()
            .to_str()
            .unwrap(),
        "1.2.840.10008.5.1.4.1.1.66.4"
    );
    let segments = obj
        .element(dicom_dictionary_std::tags::SEGMENT_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()
        .len();
    assert!(found > 0);
    assert_eq!(segments, found);
}
