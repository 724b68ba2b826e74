//! Exported models pass onnx's full checker and run in onnxruntime with the
//! same results as tract (1e-4), for every option combination; the shipped
//! model gives onnxruntime's labels on a tile of the sample scan.

use edge_seg_export::{onnx_bytes, Checkpoint, WeightFormat};
use edge_seg_models::spec::{ChannelPlan, Padding, Upsampling};
use edge_seg_runtime::backend::TractBackend;
use edge_seg_runtime::model::{Model, ModelSource};
use edge_seg_tests::models::{max_abs_diff, tiny_card, tiny_spec};
use edge_seg_tests::{python_with, run_python};
use ndarray::Array3;

#[test]
fn onnxruntime_agrees_with_tract() {
    let Some(py) = python_with(&["onnx", "onnxruntime", "numpy"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    for levels in [2, 3, 4] {
        for padding in [Padding::Valid, Padding::Same] {
            for upsampling in [Upsampling::Nearest, Upsampling::Transposed] {
                for format in [WeightFormat::F32, WeightFormat::F16] {
                    if format == WeightFormat::F16 && levels != 3 {
                        continue;
                    }
                    let spec = tiny_spec(levels, 2, ChannelPlan::Cicek, padding, upsampling, 4);
                    let card = tiny_card(spec.clone(), &["background", "a", "b", "c"], 2.0, 1);
                    let tile = card.tile.input[0];
                    let (bytes, _) = onnx_bytes(&Checkpoint::random(card, n), format);
                    let path = dir.path().join(format!("m{n}.onnx"));
                    std::fs::write(&path, &bytes).unwrap();
                    let model = Model::from_bytes(&bytes, ModelSource::File(path.clone()), None).unwrap();
                    let shape = [tile, tile + spec.pool_factor(), tile];
                    let input = Array3::from_shape_fn((shape[0], shape[1], shape[2]), |(z, y, x)| {
                        ((z * 31 + y * 17 + x * 7) % 23) as f32 / 11.0 - 1.0
                    });
                    let input_path = dir.path().join(format!("in{n}.raw"));
                    std::fs::write(
                        &input_path,
                        input.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
                    )
                    .unwrap();
                    let out_path = dir.path().join(format!("out{n}.raw"));
                    let s = shape.map(|v| v.to_string());
                    let info = run_python(
                        &py,
                        "onnx_peer.py",
                        &[
                            path.to_str().unwrap(),
                            input_path.to_str().unwrap(),
                            &s[0],
                            &s[1],
                            &s[2],
                            out_path.to_str().unwrap(),
                        ],
                    );
                    let info: serde_json::Value = serde_json::from_str(info.trim().lines().last().unwrap()).unwrap();
                    assert_eq!(info["input"], "image");
                    assert_eq!(info["output"], "scores");
                    assert_eq!(info["opset"][0], 17);
                    assert!(info["metadata"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|k| k == "edge_seg.card"));
                    let ort: Vec<f32> = std::fs::read(&out_path)
                        .unwrap()
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                        .collect();
                    let tract = TractBackend::new(&model.proto, 4).run(&input).unwrap();
                    let o = spec.output_shape(shape).unwrap();
                    assert_eq!(info["shape"], serde_json::json!([1, 4, o[0], o[1], o[2]]), "{spec:?}");
                    let diff = max_abs_diff(&tract, &ort);
                    assert!(
                        diff <= 1e-4,
                        "{spec:?} {format:?}: tract vs onnxruntime differ by {diff}"
                    );
                    n += 1;
                }
            }
        }
    }
    assert_eq!(n, 16);
}

/// The shipped default model on a 48³ tile of the shipped sample scan, as
/// edge-seg runs it (its graph rewrites, and its own convolution where the
/// CPU has AVX-512) and as onnxruntime runs the file: probabilities within
/// 1e-4 and at least 99.99 % of the voxels given the same label.
#[test]
fn the_shipped_model_labels_a_scan_tile_as_onnxruntime_does() {
    let Some(py) = python_with(&["onnx", "onnxruntime", "numpy"]) else {
        return;
    };
    let repo = edge_seg_tests::tests_dir().parent().unwrap().to_path_buf();
    let model_path = repo.join("models/zoo/default.onnx");
    let bytes = std::fs::read(&model_path).unwrap();
    let model = Model::from_bytes(&bytes, ModelSource::File(model_path.clone()), None).unwrap();
    let scan = edge_seg_runtime::volume::read_volume(&repo.join("models/zoo/sample_ct.nii.gz")).unwrap();
    let (d, h, w) = scan.data.dim();
    let edge = 48;
    let (z0, y0, x0) = ((d - edge) / 2, (h - edge) / 2, (w - edge) / 2);
    // The card's window, -1000 to 400 HU, rescaled to [-1, 1].
    let input = Array3::from_shape_fn((edge, edge, edge), |(z, y, x)| {
        let v = scan.data[[z0 + z, y0 + y, x0 + x]].clamp(-1000.0, 400.0);
        2.0 * (v + 1000.0) / 1400.0 - 1.0
    });
    let dir = tempfile::tempdir().unwrap();
    let input_path = dir.path().join("in.raw");
    std::fs::write(
        &input_path,
        input.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
    )
    .unwrap();
    let out_path = dir.path().join("out.raw");
    let e = edge.to_string();
    run_python(
        &py,
        "onnx_peer.py",
        &[
            model_path.to_str().unwrap(),
            input_path.to_str().unwrap(),
            &e,
            &e,
            &e,
            out_path.to_str().unwrap(),
        ],
    );
    let ort: Vec<f32> = std::fs::read(&out_path)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let classes = model.card.classes();
    let tract = TractBackend::new(&model.proto, classes).run(&input).unwrap();
    assert_eq!(tract.len(), ort.len());
    let diff = max_abs_diff(&tract, &ort);
    assert!(
        diff <= 1e-4,
        "the shipped model: edge-seg and onnxruntime differ by {diff}"
    );
    let voxels = edge * edge * edge;
    let label = |p: &[f32], v: usize| {
        (0..classes)
            .max_by(|&a, &b| p[a * voxels + v].total_cmp(&p[b * voxels + v]))
            .unwrap()
    };
    let flat = tract.as_standard_layout().iter().copied().collect::<Vec<f32>>();
    let same = (0..voxels).filter(|&v| label(&flat, v) == label(&ort, v)).count();
    let structures = (0..voxels).filter(|&v| label(&ort, v) != 0).count();
    eprintln!(
        "shipped model on a sample-scan tile: probabilities differ by at most {diff:e}; {} of {voxels} voxels \
         labelled differently; {structures} voxels labelled as a structure",
        voxels - same
    );
    assert!(
        structures > 100,
        "the tile holds {structures} labelled voxels: not a useful check"
    );
    assert!(
        same as f64 >= 0.9999 * voxels as f64,
        "{} of {voxels} voxels labelled differently",
        voxels - same
    );
}
