//! Random initial weights for a network spec: Glorot or He uniform for
//! convolutions, the identity for normalisations, zero (or, for tests,
//! small random) biases; deterministic for a seed.

use std::collections::BTreeMap;

use edge_seg_models::weights::{is_upsampling_weight, weight_entries};
use edge_seg_models::ModelCard;

use crate::checkpoint::{Checkpoint, Tensor};

/// A small deterministic generator (SplitMix64) for random weights.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn symmetric(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// How random convolution weights are scaled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightInit {
    /// Glorot (Xavier) uniform: limit √(6 / (fan_in + fan_out)), the Keras
    /// default the paper's code uses.
    #[default]
    Glorot,
    /// He (Kaiming) uniform: limit √(6 / fan_in), which keeps the activation
    /// variance through ReLU layers (He et al. 2015), so a deep network
    /// without normalisation starts with signal in every layer.
    He,
}

impl WeightInit {
    pub fn parse(s: &str) -> Option<WeightInit> {
        match s {
            "glorot" => Some(WeightInit::Glorot),
            "he" => Some(WeightInit::He),
            _ => None,
        }
    }
}

/// Glorot-uniform weights for every tensor of `spec`'s scheme (fan-in and
/// fan-out over the receptive field), deterministic for `seed`; biases are
/// zero, or small random values with `random_bias` (so tests see them).
pub fn glorot_weights(spec: &edge_seg_models::NetworkSpec, seed: u64, random_bias: bool) -> BTreeMap<String, Tensor> {
    random_weights(spec, seed, random_bias, WeightInit::Glorot)
}

/// Random weights for every tensor of `spec`'s scheme, scaled by `init`
/// (fans over the receptive field), deterministic for `seed`; biases as in
/// [`glorot_weights`].
pub fn random_weights(
    spec: &edge_seg_models::NetworkSpec,
    seed: u64,
    random_bias: bool,
    init: WeightInit,
) -> BTreeMap<String, Tensor> {
    let mut rng = SplitMix64(seed);
    weight_entries(spec)
        .into_iter()
        .map(|e| {
            let n: usize = e.shape.iter().product();
            let values = if e.shape.len() == 5 {
                let receptive: usize = e.shape[2..].iter().product();
                let (fan_out, fan_in) = if is_upsampling_weight(&e.name) {
                    (e.shape[1] * receptive, e.shape[0] * receptive)
                } else {
                    (e.shape[0] * receptive, e.shape[1] * receptive)
                };
                let limit = match init {
                    WeightInit::Glorot => (6.0 / (fan_in + fan_out) as f32).sqrt(),
                    WeightInit::He => (6.0 / fan_in as f32).sqrt(),
                };
                (0..n).map(|_| rng.symmetric() * limit).collect()
            } else if let Some(neutral) = norm_start(&e.name) {
                // Normalisation: the identity at the start; with
                // `random_bias`, within 0.25 of it (variances stay positive).
                if random_bias {
                    (0..n).map(|_| neutral + rng.symmetric() * 0.25).collect()
                } else {
                    vec![neutral; n]
                }
            } else if random_bias {
                (0..n).map(|_| rng.symmetric() * 0.1).collect()
            } else {
                vec![0.0; n]
            };
            (e.name, Tensor { shape: e.shape, values })
        })
        .collect()
}

/// The identity value of a normalisation tensor (1 for `gamma` and
/// `running_var`, 0 for `beta` and `running_mean`); `None` for other tensors.
fn norm_start(name: &str) -> Option<f32> {
    let (layer, tensor) = name.rsplit_once('.')?;
    edge_seg_models::weights::conv_of_norm(layer)?;
    match tensor {
        "gamma" | "running_var" => Some(1.0),
        "beta" | "running_mean" => Some(0.0),
        _ => None,
    }
}

impl Checkpoint {
    /// A checkpoint with Glorot-uniform random weights and small random
    /// biases for the card's network, deterministic for `seed`. Used for
    /// tests and speed benchmarks.
    pub fn random(card: ModelCard, seed: u64) -> Checkpoint {
        let weights = glorot_weights(&card.network, seed, true);
        let mut ckpt = Checkpoint { card, weights };
        ckpt.card.weights_sha256 = ckpt.weights_sha256();
        ckpt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each convolution's weights fill the scheme's uniform range: the
    /// largest magnitude is close to the limit and never above it.
    #[test]
    fn weight_init_limits_follow_the_fans() {
        let spec = edge_seg_models::NetworkSpec::paper(3);
        let glorot = random_weights(&spec, 4, false, WeightInit::Glorot);
        let he = random_weights(&spec, 4, false, WeightInit::He);
        for e in weight_entries(&spec) {
            if e.shape.len() != 5 || is_upsampling_weight(&e.name) {
                continue;
            }
            let receptive: usize = e.shape[2..].iter().product();
            let (fan_out, fan_in) = (e.shape[0] * receptive, e.shape[1] * receptive);
            let max = |w: &Tensor| w.values.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (w, limit) in [
                (&glorot[&e.name], (6.0 / (fan_in + fan_out) as f32).sqrt()),
                (&he[&e.name], (6.0 / fan_in as f32).sqrt()),
            ] {
                let m = max(w);
                assert!(m <= limit && m > 0.95 * limit, "{}: max {m}, limit {limit}", e.name);
            }
            assert!(he[&e.name].values.iter().all(|v| v.is_finite()));
        }
        assert_eq!(glorot_weights(&spec, 4, false), glorot);
        for (name, t) in &he {
            if t.shape.len() == 1 {
                assert!(t.values.iter().all(|&v| v == 0.0), "{name}: biases start at zero");
            }
        }
    }
}
