//! Small networks and random-weight models for tests.

use std::path::{Path, PathBuf};

use edge_seg_export::{onnx_bytes, Checkpoint, WeightFormat};
use edge_seg_models::card::{Intensity, Modality};
use edge_seg_models::spec::{ChannelPlan, NetworkSpec, Norm, Padding, Upsampling};
use edge_seg_models::ModelCard;

/// A network with `filters` base filters and `labels.len()` classes.
pub fn tiny_spec(
    levels: usize,
    filters: usize,
    plan: ChannelPlan,
    padding: Padding,
    upsampling: Upsampling,
    classes: usize,
) -> NetworkSpec {
    NetworkSpec {
        levels,
        base_filters: filters,
        channel_plan: plan,
        padding,
        upsampling,
        in_channels: 1,
        classes,
        norm: Norm::None,
    }
}

/// A CT card for `spec` with `labels`, at `spacing` mm, whose tile is the
/// smallest legal input plus `extra_pools` pooling steps.
pub fn tiny_card(spec: NetworkSpec, labels: &[impl AsRef<str>], spacing: f64, extra_pools: usize) -> ModelCard {
    let tile = spec.smallest_input() + extra_pools * spec.pool_factor();
    ModelCard::new(
        "test",
        Modality::CT,
        labels,
        spec,
        [spacing; 3],
        Intensity::ct_default(),
        [tile; 3],
    )
    .unwrap()
}

/// Write a random-weight ONNX model for `card` to `dir/name`.
pub fn write_random_model(dir: &Path, name: &str, card: ModelCard, seed: u64) -> PathBuf {
    let (bytes, _) = onnx_bytes(&Checkpoint::random(card, seed), WeightFormat::F32);
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Largest absolute difference, infinite if either side has a NaN.
pub fn max_abs_diff<'a>(a: impl IntoIterator<Item = &'a f32>, b: impl IntoIterator<Item = &'a f32>) -> f32 {
    a.into_iter()
        .zip(b)
        .map(|(x, y)| {
            if x.is_nan() || y.is_nan() {
                f32::INFINITY
            } else {
                (x - y).abs()
            }
        })
        .fold(0.0, f32::max)
}
