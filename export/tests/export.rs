//! Export of random-weight checkpoints for every option combination, loaded
//! back and run by tract.

use edge_seg_export::{export, export_checkpoint, onnx_bytes, Checkpoint, WeightFormat};
use edge_seg_models::card::{Intensity, Modality};
use edge_seg_models::spec::{ChannelPlan, NetworkSpec, Norm, Padding, Upsampling};
use edge_seg_models::{ModelCard, CARD_METADATA_KEY};
use tract_onnx::prelude::*;

fn tiny(levels: usize, padding: Padding, upsampling: Upsampling, plan: ChannelPlan) -> NetworkSpec {
    NetworkSpec {
        levels,
        base_filters: 2,
        channel_plan: plan,
        padding,
        upsampling,
        in_channels: 1,
        classes: 3,
        norm: Norm::None,
    }
}

fn card_for(spec: NetworkSpec) -> ModelCard {
    let tile = spec.smallest_input() + spec.pool_factor();
    ModelCard::new(
        "test",
        Modality::CT,
        &["background", "a", "b"],
        spec,
        [2.0, 2.0, 2.0],
        Intensity::ct_default(),
        [tile; 3],
    )
    .unwrap()
}

fn run_tract(bytes: &[u8], input: [usize; 3]) -> (Vec<usize>, Vec<f32>) {
    let plan = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .unwrap()
        .with_input_fact(0, f32::fact([1, 1, input[0], input[1], input[2]]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let n: usize = input.iter().product();
    let x: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
    let t = tract_ndarray::Array5::from_shape_vec((1, 1, input[0], input[1], input[2]), x).unwrap();
    let out = plan.run(tvec!(Tensor::from(t).into())).unwrap();
    let view = out[0].to_plain_array_view::<f32>().unwrap();
    (view.shape().to_vec(), view.iter().copied().collect())
}

#[test]
fn every_option_combination_exports_and_runs_in_tract() {
    let dir = tempfile::tempdir().unwrap();
    let mut count = 0;
    for levels in [2, 3, 4] {
        for padding in [Padding::Valid, Padding::Same] {
            for upsampling in [Upsampling::Nearest, Upsampling::Transposed] {
                for plan in [ChannelPlan::Cicek, ChannelPlan::Doubling] {
                    let spec = tiny(levels, padding, upsampling, plan);
                    let card = card_for(spec.clone());
                    let ckpt = Checkpoint::random(card.clone(), count);
                    let out = dir.path().join(format!("m{count}.onnx"));
                    let report = export(&ckpt, &out, WeightFormat::F32).unwrap();
                    assert_eq!(report.parameters, spec.parameter_count());
                    let bytes = std::fs::read(&out).unwrap();
                    // A non-square input to catch axis mix-ups.
                    let p = spec.pool_factor();
                    let input = [card.tile.input[0], card.tile.input[1] + p, card.tile.input[2] + 2 * p];
                    let (shape, values) = run_tract(&bytes, input);
                    let expect = spec.output_shape(input).unwrap();
                    assert_eq!(shape, vec![1, 3, expect[0], expect[1], expect[2]], "{spec:?}");
                    // Softmax over channels: every voxel sums to 1.
                    let vox = expect.iter().product::<usize>();
                    for v in 0..vox {
                        let s: f32 = (0..3).map(|c| values[c * vox + v]).sum();
                        assert!((s - 1.0).abs() < 1e-5, "{spec:?}: voxel {v} sums to {s}");
                    }
                    count += 1;
                }
            }
        }
    }
    assert_eq!(count, 24);
}

#[test]
fn card_survives_the_round_trip() {
    let card = card_for(tiny(3, Padding::Valid, Upsampling::Nearest, ChannelPlan::Cicek));
    let ckpt = Checkpoint::random(card, 7);
    let (bytes, written_card) = onnx_bytes(&ckpt, WeightFormat::F32);
    let proto = tract_onnx::onnx().proto_model_for_read(&mut &bytes[..]).unwrap();
    let stored = proto
        .metadata_props
        .iter()
        .find(|p| p.key == CARD_METADATA_KEY)
        .unwrap();
    let back = ModelCard::from_json(&stored.value).unwrap();
    assert_eq!(back, written_card);
    assert_eq!(back.weights_sha256, ckpt.weights_sha256());
    assert_eq!(proto.producer_name, "edge-seg");
    assert_eq!(proto.opset_import[0].version, 17);
    let names: Vec<&str> = proto
        .graph
        .as_ref()
        .unwrap()
        .initializer
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert!(names.contains(&"enc0.conv0.weight") && names.contains(&"head.bias"));
}

#[test]
fn checkpoint_round_trips_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let card = card_for(tiny(2, Padding::Same, Upsampling::Transposed, ChannelPlan::Doubling));
    let ckpt = Checkpoint::random(card, 3);
    ckpt.write(dir.path()).unwrap();
    let back = Checkpoint::read(dir.path()).unwrap();
    assert_eq!(back, ckpt);
    let out = dir.path().join("m.onnx");
    export_checkpoint(dir.path(), &out, WeightFormat::F32).unwrap();
    assert!(out.exists());
}

#[test]
fn missing_or_misshaped_tensors_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let card = card_for(tiny(2, Padding::Valid, Upsampling::Nearest, ChannelPlan::Cicek));
    let mut ckpt = Checkpoint::random(card, 1);
    ckpt.weights.remove("dec0.conv1.bias");
    ckpt.weights.get_mut("head.weight").unwrap().shape = vec![3, 2, 1, 1, 2];
    ckpt.weights.insert(
        "extra.weight".into(),
        edge_seg_export::Tensor {
            shape: vec![1],
            values: vec![0.0],
        },
    );
    ckpt.write(dir.path()).unwrap();
    let err = Checkpoint::read(dir.path()).unwrap_err().to_string();
    assert!(err.contains("model.safetensors"), "{err}");
    assert!(err.contains("missing tensor dec0.conv1.bias"), "{err}");
    assert!(
        err.contains("tensor head.weight has shape [3, 2, 1, 1, 2], expected [3, 4, 1, 1, 1]"),
        "{err}"
    );
    assert!(err.contains("unexpected tensor extra.weight"), "{err}");
    let out = dir.path().join("never.onnx");
    assert!(export_checkpoint(dir.path(), &out, WeightFormat::F32).is_err());
    assert!(!out.exists());
}

/// Weights that no longer hash to the card's `weights_sha256` (a file
/// swapped or damaged after writing) are refused, naming both hashes.
#[test]
fn weights_that_do_not_match_the_card_hash_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let card = card_for(tiny(2, Padding::Valid, Upsampling::Nearest, ChannelPlan::Cicek));
    let ckpt = Checkpoint::random(card, 1);
    ckpt.write(dir.path()).unwrap();
    assert_eq!(Checkpoint::read(dir.path()).unwrap().weights, ckpt.weights);
    let other = Checkpoint::random(ckpt.card.clone(), 2);
    std::fs::write(
        dir.path().join("model.safetensors"),
        edge_seg_export::checkpoint::safetensors_bytes(&other.weights),
    )
    .unwrap();
    let err = Checkpoint::read(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("weights_sha256"),
        "{err}"
    );
    assert!(err.contains(&other.weights_sha256()), "{err}");
}

#[test]
fn bad_checkpoint_directories_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = Checkpoint::read(&dir.path().join("nope")).unwrap_err().to_string();
    assert!(err.contains("nope") && err.contains("checkpoint directory"), "{err}");
    std::fs::write(dir.path().join("model.card.json"), "{\"format_version\": 1}").unwrap();
    let err = Checkpoint::read(dir.path()).unwrap_err().to_string();
    assert!(err.contains("model.card.json"), "{err}");
}

#[test]
fn fp16_export_runs_in_tract_close_to_f32() {
    let card = card_for(tiny(3, Padding::Valid, Upsampling::Nearest, ChannelPlan::Cicek));
    let ckpt = Checkpoint::random(card.clone(), 11);
    let (b32, _) = onnx_bytes(&ckpt, WeightFormat::F32);
    let (b16, c16) = onnx_bytes(&ckpt, WeightFormat::F16);
    assert!(b16.len() < b32.len());
    let dir = tempfile::tempdir().unwrap();
    export(&ckpt, &dir.path().join("h.onnx"), WeightFormat::F16).unwrap();
    assert_ne!(c16.weights_sha256, ckpt.weights_sha256());
    let (s32, v32) = run_tract(&b32, card.tile.input);
    let (s16, v16) = run_tract(&b16, card.tile.input);
    assert_eq!(s32, s16);
    let max = v32.iter().zip(&v16).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(max < 1e-2, "fp16 differs from f32 by {max}");
}
