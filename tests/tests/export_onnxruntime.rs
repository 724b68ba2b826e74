//! Exported models pass onnx's full checker and run in onnxruntime with the
//! same results as tract (1e-4), for every option combination.

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
