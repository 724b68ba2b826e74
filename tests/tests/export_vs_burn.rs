//! The exported ONNX model computes what the burn model computes, for every
//! option combination (tract vs burn, max |Δp| ≤ 1e-4 on probabilities).

use edge_seg_export::{Checkpoint, WeightFormat};
use edge_seg_models::spec::{ChannelPlan, NetworkSpec, Norm, Padding, Upsampling};
use edge_seg_tests::models::{tiny_card, tiny_spec};
use edge_seg_trainer::verified_export::export_checked;

#[test]
fn tract_matches_burn_for_every_combination() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0u64;
    for levels in [2, 3, 4] {
        for padding in [Padding::Valid, Padding::Same] {
            for upsampling in [Upsampling::Nearest, Upsampling::Transposed] {
                for plan in [ChannelPlan::Cicek, ChannelPlan::Doubling] {
                    let spec = tiny_spec(levels, 2, plan, padding, upsampling, 3);
                    let card = tiny_card(spec, &["background", "a", "b"], 2.0, 1);
                    let ckpt = Checkpoint::random(card, n);
                    let out = dir.path().join(format!("m{n}.onnx"));
                    let done = export_checked(&ckpt, &out, WeightFormat::F32).unwrap();
                    assert!(out.exists() && done.bytes > 0);
                    assert!(done.max_diff <= 1e-4, "{}", done.max_diff);
                    n += 1;
                }
            }
        }
    }
    assert_eq!(n, 24);
}

/// A batch-normalised checkpoint exports as a plain network: no
/// normalisation in the graph or the card, and tract on the folded graph
/// matches burn on the normalised network with its running statistics.
#[test]
fn batch_norm_is_folded_at_export() {
    let dir = tempfile::tempdir().unwrap();
    for (n, padding) in [Padding::Valid, Padding::Same].into_iter().enumerate() {
        let spec = NetworkSpec {
            norm: Norm::Batch,
            ..tiny_spec(3, 4, ChannelPlan::Doubling, padding, Upsampling::Nearest, 3)
        };
        let card = tiny_card(spec.clone(), &["background", "a", "b"], 2.0, 1);
        let ckpt = Checkpoint::random(card, 20 + n as u64);
        let out = dir.path().join(format!("bn{n}.onnx"));
        let done = export_checked(&ckpt, &out, WeightFormat::F32).unwrap();
        assert!(done.max_diff <= 1e-4, "{}", done.max_diff);
        assert_eq!(
            done.parameters,
            NetworkSpec {
                norm: Norm::None,
                ..spec.clone()
            }
            .parameter_count()
        );
        let f16 = export_checked(&ckpt, &dir.path().join(format!("bn{n}.f16.onnx")), WeightFormat::F16).unwrap();
        assert!(f16.max_diff <= 1e-4, "{}", f16.max_diff);
        let model = edge_seg_runtime::model::Model::from_file(&out, None).unwrap();
        assert_eq!(
            model.card.network,
            NetworkSpec {
                norm: Norm::None,
                ..spec
            }
        );
        assert!(model
            .card
            .provenance
            .normalisation
            .as_deref()
            .unwrap()
            .contains("folded"));
        let proto = std::fs::read(&out).unwrap();
        let text = String::from_utf8_lossy(&proto);
        assert!(!text.contains("norm0") && !text.contains("running_mean"));
        // The same checkpoint without its running statistics is refused.
        let mut broken = ckpt.clone();
        broken.weights.remove("enc1.norm0.running_var");
        let e = export_checked(&broken, &dir.path().join("broken.onnx"), WeightFormat::F32)
            .unwrap_err()
            .to_string();
        assert!(e.contains("enc1.norm0.running_var"), "{e}");
        // A negative variance would fold into NaN weights.
        let mut negative = ckpt.clone();
        negative.weights.get_mut("dec0.norm1.running_var").unwrap().values[0] = -0.5;
        let e = export_checked(&negative, &dir.path().join("negative.onnx"), WeightFormat::F32)
            .unwrap_err()
            .to_string();
        assert!(e.contains("dec0.norm1.running_var holds a negative variance"), "{e}");
        assert!(!dir.path().join("negative.onnx").exists());
    }
}

#[test]
fn fp16_export_matches_burn_with_rounded_weights() {
    let dir = tempfile::tempdir().unwrap();
    let spec = NetworkSpec {
        levels: 3,
        base_filters: 4,
        ..NetworkSpec::paper(3)
    };
    let card = tiny_card(spec, &["background", "a", "b"], 2.0, 2);
    let ckpt = Checkpoint::random(card, 9);
    let out32 = dir.path().join("m32.onnx");
    let out16 = dir.path().join("m16.onnx");
    let s32 = export_checked(&ckpt, &out32, WeightFormat::F32).unwrap().bytes;
    let f16 = export_checked(&ckpt, &out16, WeightFormat::F16).unwrap();
    assert!(f16.max_diff <= 1e-4);
    let s16 = f16.bytes;
    assert!((s16 as f64) < 0.6 * s32 as f64, "fp16 {s16} vs f32 {s32}");
}

#[test]
fn a_checkpoint_that_disagrees_is_not_exported() {
    // Weights with NaN are refused before anything is written.
    let dir = tempfile::tempdir().unwrap();
    let spec = NetworkSpec {
        levels: 2,
        base_filters: 2,
        ..NetworkSpec::paper(3)
    };
    let card = tiny_card(spec, &["background", "a", "b"], 2.0, 1);
    let mut ckpt = Checkpoint::random(card, 1);
    ckpt.weights.get_mut("head.bias").unwrap().values[0] = f32::NAN;
    let out = dir.path().join("bad.onnx");
    assert!(export_checked(&ckpt, &out, WeightFormat::F32).is_err());
    assert!(!out.exists());
}
