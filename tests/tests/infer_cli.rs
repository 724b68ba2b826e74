//! `edge-seg infer` end to end with small random-weight models: outputs on
//! the scan's exact grid, the report and colour table, and every bad input
//! refused cleanly without output files.

use std::path::{Path, PathBuf};

use edge_seg_models::labels::BASE_LABELS;
use edge_seg_models::spec::{ChannelPlan, Padding, Upsampling};
use edge_seg_models::ModelCard;
use edge_seg_runtime::geometry::Affine;
use edge_seg_runtime::volume::{read_volume, Volume};
use edge_seg_tests::models::{tiny_card, tiny_spec, write_random_model};
use edge_seg_tests::raw_nifti::RawNifti;
use edge_seg_tests::{assert_clean_failure, python_with, run, run_python, temp_files_in, text};
use ndarray::Array3;

fn card(padding: Padding) -> ModelCard {
    let spec = tiny_spec(
        3,
        2,
        ChannelPlan::Doubling,
        padding,
        Upsampling::Nearest,
        BASE_LABELS.len(),
    );
    tiny_card(spec, &BASE_LABELS, 4.0, 2)
}

fn write_model(dir: &Path, name: &str, padding: Padding) -> PathBuf {
    write_random_model(dir, name, card(padding), 3)
}

/// A small LPS scan with anisotropic spacing: a body with a bright block.
fn write_scan(path: &Path) -> Volume {
    let mut data = Array3::<f32>::from_elem((14, 40, 36), -1000.0);
    for ((k, j, i), v) in data.indexed_iter_mut() {
        let (y, x) = (j as f32 - 20.0, i as f32 - 18.0);
        if y * y / 300.0 + x * x / 250.0 < 1.0 {
            *v = 40.0 + ((k * 7 + j * 3 + i) % 11) as f32;
        }
    }
    let affine = Affine([
        [-2.5, 0.0, 0.0, 60.0],
        [0.0, -2.2, 0.0, 45.0],
        [0.0, 0.0, 5.5, -30.0],
        [0.0, 0.0, 0.0, 1.0],
    ]);
    let vol = Volume::from_array(data, affine);
    vol.write_float(path).unwrap();
    vol
}

fn infer(args: &[&str]) -> std::process::Output {
    let mut a = vec!["infer", "--quiet"];
    a.extend_from_slice(args);
    run("edge-seg", &a)
}

#[test]
fn outputs_overlay_the_scan_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for padding in [Padding::Valid, Padding::Same] {
        let model = write_model(dir.path(), &format!("m-{padding:?}.onnx"), padding);
        let scan = dir.path().join(format!("scan-{padding:?}.nii.gz"));
        let vol = write_scan(&scan);
        let o = infer(&[scan.to_str().unwrap(), "--model", model.to_str().unwrap(), "--split"]);
        assert!(o.status.success(), "{}", text(&o));
        let seg_path = dir.path().join(format!("scan-{padding:?}.seg.nii.gz"));
        let seg = read_volume(&seg_path).unwrap();
        assert_eq!(seg.shape_ijk(), vol.shape_ijk());
        assert!(seg.affine.max_abs_diff(&vol.affine) < 1e-4);
        assert_eq!(seg.header.sform_code, vol.header.sform_code);
        assert_eq!(seg.header.qform_code, vol.header.qform_code);
        assert_eq!(seg.datatype, nifti::NiftiType::Uint8);
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(format!("scan-{padding:?}.seg.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(report["structures"].as_array().unwrap().len(), BASE_LABELS.len() - 1);
        assert_eq!(report["provenance"]["backend"], "tract");
        let total: u64 = report["structures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["voxels"].as_u64().unwrap())
            .sum();
        let labelled = seg.data.iter().filter(|&&v| v > 0.0).count() as u64;
        assert_eq!(total, labelled);
        let ctbl = std::fs::read_to_string(dir.path().join(format!("scan-{padding:?}.seg.ctbl"))).unwrap();
        assert!(ctbl.contains("1 liver 221 130 101 255"));
        assert!(dir.path().join(format!("scan-{padding:?}.seg.liver.nii.gz")).exists());
        assert!(temp_files_in(dir.path()).is_empty());
    }
    if let Some(py) = python_with(&["nibabel", "numpy"]) {
        let seg = dir.path().join("scan-Valid.seg.nii.gz");
        let stem = dir.path().join("nib");
        run_python(
            &py,
            "nibabel_peer.py",
            &["read", seg.to_str().unwrap(), stem.to_str().unwrap()],
        );
        let j: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(stem.with_extension("json")).unwrap()).unwrap();
        let vol = read_volume(&dir.path().join("scan-Valid.nii.gz")).unwrap();
        for r in 0..4 {
            for c in 0..4 {
                let a = j["affine"][r][c].as_f64().unwrap();
                assert!((a - vol.affine.0[r][c]).abs() < 1e-4, "nibabel affine [{r}][{c}] {a}");
            }
        }
        assert_eq!(j["shape"], serde_json::json!([36, 40, 14]));
    }
}

#[test]
fn json_report_and_several_scans_with_one_bad() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "m.onnx", Padding::Valid);
    let good1 = dir.path().join("a.nii.gz");
    let good2 = dir.path().join("b.nii");
    write_scan(&good1);
    write_scan(&good2);
    let bad = dir.path().join("broken.nii.gz");
    std::fs::write(&bad, b"not a scan").unwrap();
    let o = run(
        "edge-seg",
        &[
            "infer",
            "--json",
            "--model",
            model.to_str().unwrap(),
            good1.to_str().unwrap(),
            bad.to_str().unwrap(),
            good2.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success(), "one scan failed: the exit status says so");
    let t = text(&o);
    assert!(t.contains("broken.nii.gz") && t.contains("1 of 3 scans failed"), "{t}");
    assert!(!t.contains("panicked"));
    let reports: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(reports.as_array().unwrap().len(), 2);
    assert!(dir.path().join("a.seg.nii.gz").exists());
    assert!(dir.path().join("b.seg.nii.gz").exists());
    assert!(!dir.path().join("broken.seg.nii.gz").exists());
}

#[test]
fn bad_models_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let scan = dir.path().join("scan.nii.gz");
    write_scan(&scan);
    let good = write_model(dir.path(), "good.onnx", Padding::Valid);
    let bytes = std::fs::read(&good).unwrap();
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.onnx", vec![], "empty"),
        (
            "text.onnx",
            b"hello, this is not a model".to_vec(),
            "not a valid ONNX model",
        ),
        ("cut.onnx", bytes[..bytes.len() / 2].to_vec(), "not a valid ONNX model"),
    ];
    // A model without a card.
    let mut proto = tract_onnx_proto(&bytes);
    proto.metadata_props.clear();
    cases.push(("nocard.onnx", encode(&proto), "no model card"));
    // A card that does not match the graph: different class count.
    let mut proto = tract_onnx_proto(&bytes);
    let mut c: ModelCard = ModelCard::from_json(&proto.metadata_props[0].value).unwrap();
    c.labels.pop();
    c.network.classes -= 1;
    proto.metadata_props[0].value = serde_json::to_string(&c).unwrap();
    cases.push(("classes.onnx", encode(&proto), "classes"));
    // A card claiming batch normalisation, which exported graphs hold folded.
    let mut proto = tract_onnx_proto(&bytes);
    let mut c: ModelCard = ModelCard::from_json(&proto.metadata_props[0].value).unwrap();
    c.network.norm = edge_seg_models::spec::Norm::Batch;
    proto.metadata_props[0].value = serde_json::to_string(&c).unwrap();
    cases.push(("batchnorm.onnx", encode(&proto), "batch normalisation"));
    // Weights changed after export.
    let mut proto = tract_onnx_proto(&bytes);
    let g = proto.graph.as_mut().unwrap();
    let t = g.initializer.iter_mut().find(|t| t.name == "head.bias").unwrap();
    t.raw_data[0] ^= 0x40;
    cases.push(("tampered.onnx", encode(&proto), "weight hash mismatch"));
    for (name, content, expect) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        let o = infer(&[scan.to_str().unwrap(), "--model", p.to_str().unwrap()]);
        assert_clean_failure(&o, name);
        assert!(text(&o).contains(expect), "{name}: {}", text(&o));
        assert!(!dir.path().join("scan.seg.nii.gz").exists(), "{name}: output written");
    }
    let o = infer(&[
        scan.to_str().unwrap(),
        "--model",
        dir.path().join("missing.onnx").to_str().unwrap(),
    ]);
    assert_clean_failure(&o, "missing.onnx");
    // A sidecar card makes a card-less model usable.
    let card_path = dir.path().join("card.json");
    let proto = tract_onnx_proto(&bytes);
    std::fs::write(&card_path, &proto.metadata_props[0].value).unwrap();
    let o = infer(&[
        scan.to_str().unwrap(),
        "--model",
        dir.path().join("nocard.onnx").to_str().unwrap(),
        "--card",
        card_path.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(temp_files_in(dir.path()).is_empty());
}

fn tract_onnx_proto(bytes: &[u8]) -> tract_onnx::pb::ModelProto {
    use tract_onnx::prelude::Framework;
    tract_onnx::onnx().proto_model_for_read(&mut &bytes[..]).unwrap()
}

fn encode(p: &tract_onnx::pb::ModelProto) -> Vec<u8> {
    use prost::Message;
    p.encode_to_vec()
}

#[test]
fn bad_scans_and_outputs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "m.onnx", Padding::Valid);
    let m = model.to_str().unwrap();
    // Zero spacing.
    let mut raw = RawNifti::float32([8, 8, 8], &[0.0; 512]);
    raw.srow = [[0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]];
    let flat = dir.path().join("flat.nii");
    raw.write(&flat);
    let o = infer(&[flat.to_str().unwrap(), "--model", m]);
    assert_clean_failure(&o, "flat.nii");
    assert!(text(&o).contains("spacing"));
    // NaN spacing.
    let mut raw = RawNifti::float32([8, 8, 8], &[0.0; 512]);
    raw.sform_code = 0;
    raw.qform_code = 0;
    raw.pixdim[2] = f32::NAN;
    let nan = dir.path().join("nan.nii");
    raw.write(&nan);
    let o = infer(&[nan.to_str().unwrap(), "--model", m]);
    assert_clean_failure(&o, "nan.nii");
    // Too large for the budget: refused with the numbers, before reading.
    let scan = dir.path().join("scan.nii.gz");
    write_scan(&scan);
    let o = infer(&[scan.to_str().unwrap(), "--model", m, "--max-memory", "200K"]);
    assert_clean_failure(&o, "scan.nii.gz");
    assert!(
        text(&o).contains("memory budget") && text(&o).contains("KiB"),
        "{}",
        text(&o)
    );
    // Output equal to the input, and an output directory that does not exist.
    let o = infer(&[scan.to_str().unwrap(), "--model", m, "-o", scan.to_str().unwrap()]);
    assert_clean_failure(&o, "scan.nii.gz");
    assert!(text(&o).contains("input"), "{}", text(&o));
    let nowhere = dir.path().join("no/such/dir/out.nii.gz");
    let o = infer(&[scan.to_str().unwrap(), "--model", m, "-o", nowhere.to_str().unwrap()]);
    assert_clean_failure(&o, "out.nii.gz");
    let o = infer(&[
        scan.to_str().unwrap(),
        "--model",
        m,
        "-o",
        dir.path().join("out.png").to_str().unwrap(),
    ]);
    assert_clean_failure(&o, "out.png");
    // Nothing was written by any refusal.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".seg.")), "{names:?}");
    assert!(temp_files_in(dir.path()).is_empty());
}

#[test]
fn models_and_bench_commands() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "m.onnx", Padding::Valid);
    let o = run(
        "edge-seg",
        &["bench", "--model", model.to_str().unwrap(), "--tiles", "2", "--json"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["tiles_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(v["backend"], "tract");
    let o = run("edge-seg", &["models"]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn a_folder_of_scans_with_one_bad_and_continuing_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "m.onnx", Padding::Valid);
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    for n in 0..4 {
        write_scan(&input.join(format!("scan{n}.nii.gz")));
    }
    std::fs::write(input.join("scan2b.nii.gz"), b"not a scan").unwrap();
    let out = dir.path().join("out");
    let args = [
        "--model",
        model.to_str().unwrap(),
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    let o = infer(&args);
    let t = text(&o);
    assert!(!o.status.success(), "one scan failed: the exit status says so\n{t}");
    assert!(t.contains("scan2b.nii.gz") && t.contains("1 of 5 scans failed"), "{t}");
    let written = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".seg.nii.gz"))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        written(&out),
        [
            "scan0.seg.nii.gz",
            "scan1.seg.nii.gz",
            "scan2.seg.nii.gz",
            "scan3.seg.nii.gz"
        ]
    );
    assert!(temp_files_in(&out).is_empty());
    // Continuing: the four are skipped (left as they are), the bad one fails again.
    let before = std::fs::metadata(out.join("scan1.seg.nii.gz"))
        .unwrap()
        .modified()
        .unwrap();
    std::fs::remove_file(out.join("scan3.seg.nii.gz")).unwrap();
    let mut again = args.to_vec();
    again.push("--skip-existing");
    let o = infer(&again);
    assert!(!o.status.success());
    assert!(text(&o).contains("1 of 5 scans failed"), "{}", text(&o));
    assert_eq!(
        std::fs::metadata(out.join("scan1.seg.nii.gz"))
            .unwrap()
            .modified()
            .unwrap(),
        before
    );
    assert!(
        out.join("scan3.seg.nii.gz").exists(),
        "the missing one is written again"
    );
}

#[test]
fn only_the_structures_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "m.onnx", Padding::Same);
    let scan = dir.path().join("s.nii.gz");
    write_scan(&scan);
    let out = dir.path().join("s.seg.nii.gz");
    let all = infer(&[
        "--model",
        model.to_str().unwrap(),
        scan.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(all.status.success(), "{}", text(&all));
    let every = read_volume(&out).unwrap();
    let o = infer(&[
        "--model",
        model.to_str().unwrap(),
        scan.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--structures",
        "liver,3,Inferior Vena Cava",
        "--split",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let ivc = BASE_LABELS.iter().position(|l| *l == "inferior_vena_cava").unwrap();
    let keep = [1usize, 3, ivc];
    let some = read_volume(&out).unwrap();
    for (a, b) in every.data.iter().zip(some.data.iter()) {
        let expected = if keep.contains(&(*a as usize)) { *a } else { 0.0 };
        assert_eq!(*b, expected);
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("s.seg.json")).unwrap()).unwrap();
    let listed: Vec<u64> = report["structures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["index"].as_u64().unwrap())
        .collect();
    assert_eq!(listed, keep.iter().map(|&k| k as u64).collect::<Vec<_>>());
    assert!(dir.path().join("s.seg.liver.nii.gz").exists());
    assert!(!dir.path().join("s.seg.spleen.nii.gz").exists());
    // A name outside the vocabulary: refused with the list, nothing written.
    let out2 = dir.path().join("t.seg.nii.gz");
    let o = infer(&[
        "--model",
        model.to_str().unwrap(),
        scan.to_str().unwrap(),
        "-o",
        out2.to_str().unwrap(),
        "--structures",
        "liver,brain",
    ]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains("\"brain\"") && t.contains("1 liver") && t.contains("2 spleen"),
        "{t}"
    );
    assert!(!out2.exists());
}

#[test]
fn a_successful_run_on_backend_auto_prints_no_error_line() {
    // Without XDG_RUNTIME_DIR (a service, a container), probing Vulkan
    // adapters made libwayland print `error: XDG_RUNTIME_DIR is invalid`.
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "m.onnx", Padding::Same);
    let scan = dir.path().join("s.nii.gz");
    write_scan(&scan);
    let o = std::process::Command::new(edge_seg_tests::bin("edge-seg"))
        .args([
            "infer",
            "--backend",
            "auto",
            "--model",
            model.to_str().unwrap(),
            scan.to_str().unwrap(),
        ])
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        !t.to_lowercase().contains("error"),
        "a successful run printed an error line:\n{t}"
    );
}

#[test]
fn a_preview_png_is_written_with_the_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "m.onnx", Padding::Same);
    let scan = dir.path().join("s.nii.gz");
    write_scan(&scan);
    let png = dir.path().join("s.png");
    let o = infer(&[
        "--model",
        model.to_str().unwrap(),
        scan.to_str().unwrap(),
        "--preview",
        png.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(temp_files_in(dir.path()).is_empty());
}
