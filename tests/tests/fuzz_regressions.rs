//! Inputs the fuzzers produced (fuzz/regressions/TARGET/: any input that
//! ever crashed a target, plus a sample of the mutated inputs of a fuzzing
//! run) go through the same entry points as the fuzz targets and must come
//! back as errors or values, never panics.

use std::path::Path;

use edge_seg_models::{Manifest, ModelCard};
use edge_seg_runtime::model::{Model, ModelSource};
use edge_seg_runtime::volume::{read_volume_bytes, ReadOptions};
use edge_seg_tests::tests_dir;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = tests_dir().parent().unwrap().join("fuzz/regressions").join(target);
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().to_string(),
                        std::fs::read(e.path()).unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    assert!(!v.is_empty(), "no inputs in {}", dir.display());
    v
}

#[test]
fn nifti_regressions() {
    for (name, bytes) in inputs("nifti") {
        let r = std::panic::catch_unwind(|| {
            if let Ok(vol) = read_volume_bytes(Path::new(&name), &bytes, ReadOptions { max_bytes: 64 << 20 }) {
                let _ = vol.stats();
                let _ = vol.check_geometry(Path::new(&name));
            }
        });
        assert!(r.is_ok(), "{name} panics");
    }
}

#[test]
fn dicom_regressions() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in inputs("dicom") {
        let path = dir.path().join(&name);
        std::fs::write(&path, &bytes).unwrap();
        let r = std::panic::catch_unwind(|| {
            if let Ok(all) = edge_seg_runtime::dicom::find_series(std::slice::from_ref(&path)) {
                for s in &all {
                    if let Ok(l) = edge_seg_runtime::dicom::layout::layout(s) {
                        let _ = edge_seg_runtime::dicom::read_series(s, &l, ReadOptions { max_bytes: 1 << 20 });
                    }
                }
            }
        });
        assert!(r.is_ok(), "{name} panics");
    }
}

#[test]
fn card_and_manifest_regressions() {
    for (name, bytes) in inputs("card") {
        let text = String::from_utf8_lossy(&bytes).to_string();
        assert!(
            std::panic::catch_unwind(|| ModelCard::from_json(&text).map(|c| c.network.parameter_count())).is_ok(),
            "{name}"
        );
    }
    for (name, bytes) in inputs("manifest") {
        let text = String::from_utf8_lossy(&bytes).to_string();
        assert!(
            std::panic::catch_unwind(|| Manifest::from_json(&text).is_ok()).is_ok(),
            "{name}"
        );
    }
}

#[test]
fn onnx_regressions() {
    for (name, bytes) in inputs("onnx") {
        let r =
            std::panic::catch_unwind(|| Model::from_bytes(&bytes, ModelSource::Builtin("regression"), None).is_ok());
        assert!(r.is_ok(), "{name} panics");
    }
}

#[test]
fn rewrites_regressions() {
    use edge_seg_runtime::backend::tract::{conv3, final_softmax, rewrite_for_tile, Rewrites};
    let rewrites = Rewrites {
        upsample: true,
        convs: Some(conv3::Kind::Avx2),
    };
    let mut rewritten = 0;
    for (name, bytes) in inputs("rewrites") {
        let r = std::panic::catch_unwind(|| {
            let Ok(proto) = edge_seg_runtime::model::decode_onnx(&bytes) else {
                return 0;
            };
            let proto = final_softmax::without_final_softmax(&proto).unwrap_or(proto);
            [[8, 8, 8], [20, 12, 16]]
                .iter()
                .map(|&tile| rewrite_for_tile(&proto, tile, rewrites).1)
                .sum::<usize>()
        });
        match r {
            Ok(n) => rewritten += n,
            Err(_) => panic!("{name} panics"),
        }
    }
    // The seeds are exported U-Nets: their decoder steps are rewritten.
    assert!(rewritten > 0, "no input exercised the decoder rewrite");
}
