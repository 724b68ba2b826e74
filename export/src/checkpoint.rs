//! Checkpoints: a directory holding `model.safetensors` (f32 weights named
//! by the weight-name scheme) and `model.card.json` (the model card).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use edge_seg_models::atomic;
use edge_seg_models::spec::{LayerKind, Norm, BATCH_NORM_EPSILON};
use edge_seg_models::weights::{norm_name, weight_entries, weights_sha256, WeightEntry};
use edge_seg_models::ModelCard;
use safetensors::{Dtype, SafeTensors};

use crate::error::ExportError;

/// File name of the weights inside a checkpoint directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// File name of the card inside a checkpoint directory.
pub const CARD_FILE: &str = "model.card.json";
/// What an exported card's `provenance.normalisation` says of a network
/// trained with batch normalisation.
pub const FOLDED_BATCH_NORM: &str = "batch normalisation, folded into the convolutions at export";

/// One f32 tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

impl Tensor {
    pub fn le_bytes(&self) -> Vec<u8> {
        edge_seg_models::weights::f32_le_bytes(&self.values)
    }
}

/// A model's card and weights.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub card: ModelCard,
    pub weights: BTreeMap<String, Tensor>,
}

impl Checkpoint {
    /// Check every tensor of the spec's scheme is present with the right
    /// shape, and nothing else is; the error lists every problem.
    pub fn check_weights(&self, source: &Path) -> Result<(), ExportError> {
        let entries = weight_entries(&self.card.network);
        let mut problems = Vec::new();
        for WeightEntry { name, shape } in &entries {
            match self.weights.get(name) {
                None => problems.push(format!("missing tensor {name} (expected shape {shape:?})")),
                Some(t) if &t.shape != shape => {
                    problems.push(format!("tensor {name} has shape {:?}, expected {shape:?}", t.shape))
                }
                Some(t) if t.values.len() != shape.iter().product::<usize>() => problems.push(format!(
                    "tensor {name} holds {} values for shape {shape:?}",
                    t.values.len()
                )),
                Some(t) if t.values.iter().any(|v| !v.is_finite()) => {
                    problems.push(format!("tensor {name} contains NaN or infinite values"))
                }
                Some(t) if name.ends_with(".running_var") && t.values.iter().any(|&v| v < 0.0) => {
                    problems.push(format!("tensor {name} holds a negative variance"))
                }
                Some(_) => {}
            }
        }
        for name in self.weights.keys() {
            if !entries.iter().any(|e| &e.name == name) {
                problems.push(format!("unexpected tensor {name} (not in the network's weight scheme)"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ExportError::Weights {
                path: source.to_path_buf(),
                problems,
            })
        }
    }

    /// SHA-256 of the f32 weights in scheme order (what `weights_sha256`
    /// holds for an f32 model).
    pub fn weights_sha256(&self) -> String {
        let bytes: Vec<Vec<u8>> = weight_entries(&self.card.network)
            .iter()
            .map(|e| self.weights.get(&e.name).map(Tensor::le_bytes).unwrap_or_default())
            .collect();
        weights_sha256(bytes.iter().map(|b| b.as_slice()))
    }

    /// Read and check a checkpoint directory.
    pub fn read(dir: &Path) -> Result<Checkpoint, ExportError> {
        let card_path = dir.join(CARD_FILE);
        let weights_path = dir.join(WEIGHTS_FILE);
        if !dir.is_dir() {
            return Err(ExportError::Checkpoint {
                path: dir.to_path_buf(),
                problem:
                    "not a checkpoint directory (expected a directory holding model.safetensors and model.card.json)"
                        .into(),
            });
        }
        let card_text = std::fs::read_to_string(&card_path).map_err(|e| io(&card_path, e))?;
        // The card first: a bad card is reported before the weights are read.
        let card = parse_card(&card_text, dir)?;
        let bytes = std::fs::read(&weights_path).map_err(|e| io(&weights_path, e))?;
        Checkpoint::assemble(card, &bytes, dir)
    }

    /// A checkpoint from its card's text and its safetensors bytes, checked
    /// as [`Checkpoint::read`] checks a directory: every tensor of the
    /// spec present, and the weights hashing to the card's `weights_sha256`
    /// (when it holds one). `source` names the checkpoint in errors.
    pub fn from_bytes(card_text: &str, weights: &[u8], source: &Path) -> Result<Checkpoint, ExportError> {
        Checkpoint::assemble(parse_card(card_text, source)?, weights, source)
    }

    /// The checkpoint of `card` and the safetensors bytes `weights`, checked.
    fn assemble(card: ModelCard, weights: &[u8], source: &Path) -> Result<Checkpoint, ExportError> {
        let weights_path = source.join(WEIGHTS_FILE);
        let weights = read_safetensors(&weights_path, weights)?;
        let ckpt = Checkpoint { card, weights };
        ckpt.check_weights(&weights_path)?;
        let hash = ckpt.weights_sha256();
        if !ckpt.card.weights_sha256.is_empty() && ckpt.card.weights_sha256 != hash {
            return Err(ExportError::Checkpoint {
                path: weights_path,
                problem: format!(
                    "the weights hash to {hash}, but the card records weights_sha256 {} (a changed or damaged file)",
                    ckpt.card.weights_sha256
                ),
            });
        }
        Ok(ckpt)
    }

    /// Write as a checkpoint directory (created if needed); each file is
    /// written atomically. The card's `weights_sha256` is set from the weights.
    pub fn write(&self, dir: &Path) -> Result<(), ExportError> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let mut card = self.card.clone();
        card.weights_sha256 = self.weights_sha256();
        let weights_path = dir.join(WEIGHTS_FILE);
        atomic::write_bytes(&weights_path, &safetensors_bytes(&self.weights)).map_err(|e| io(&weights_path, e))?;
        let card_path = dir.join(CARD_FILE);
        atomic::write_bytes(&card_path, card.to_json_pretty().as_bytes()).map_err(|e| io(&card_path, e))?;
        Ok(())
    }
}

/// Parse the card of the checkpoint at `source`.
fn parse_card(text: &str, source: &Path) -> Result<ModelCard, ExportError> {
    ModelCard::from_json(text).map_err(|e| ExportError::Card {
        path: source.join(CARD_FILE),
        source: e,
    })
}

fn io(path: &Path, e: std::io::Error) -> ExportError {
    ExportError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Serialise f32 tensors as safetensors.
pub fn safetensors_bytes(tensors: &BTreeMap<String, Tensor>) -> Vec<u8> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.shape.clone(), t.le_bytes()))
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = bytes
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), b).expect("shape matches data"),
            )
        })
        .collect();
    safetensors::serialize(views, None).expect("f32 tensors serialise")
}

/// Parse safetensors bytes holding f32 tensors.
pub fn read_safetensors(path: &Path, bytes: &[u8]) -> Result<BTreeMap<String, Tensor>, ExportError> {
    let bad = |problem: String| ExportError::Checkpoint {
        path: path.to_path_buf(),
        problem,
    };
    let st = SafeTensors::deserialize(bytes).map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(bad(format!(
                "tensor {name} has dtype {:?}; checkpoints hold f32",
                view.dtype()
            )));
        }
        let values = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        out.insert(
            name,
            Tensor {
                shape: view.shape().to_vec(),
                values,
            },
        );
    }
    Ok(out)
}

/// The paths of a checkpoint's two files.
pub fn checkpoint_files(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join(WEIGHTS_FILE), dir.join(CARD_FILE))
}

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
                let (fan_out, fan_in) = if e.name.ends_with(".up.weight") {
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
    /// The inference form of a batch-normalised network: each
    /// normalisation's affine map at inference, `gamma · (x − mean) /
    /// √(var + ε) + beta`, folded into the convolution before it (weights
    /// scaled per output channel by `s = gamma / √(var + ε)`, bias `(bias −
    /// mean) · s + beta`), so the result is a plain network (`norm: none`)
    /// computing the same function. The card's provenance records the fold.
    /// A network without normalisation is returned unchanged.
    pub fn folded(&self) -> Checkpoint {
        if self.card.network.norm == Norm::None {
            return self.clone();
        }
        let mut card = self.card.clone();
        card.network.norm = Norm::None;
        card.provenance.normalisation = Some(FOLDED_BATCH_NORM.into());
        let get = |name: &str| &self.weights[name].values;
        let mut weights = BTreeMap::new();
        for layer in self.card.network.layers() {
            let (w, b) = (format!("{}.weight", layer.name), format!("{}.bias", layer.name));
            let (mut weight, mut bias) = (self.weights[&w].clone(), self.weights[&b].clone());
            if let LayerKind::Conv3 { cout, .. } = layer.kind {
                let norm = norm_name(&layer.name);
                let t = |tensor: &str| get(&format!("{norm}.{tensor}"));
                let (gamma, beta, mean, var) = (t("gamma"), t("beta"), t("running_mean"), t("running_var"));
                let per_out = weight.values.len() / cout;
                for o in 0..cout {
                    let scale = (gamma[o] as f64 / (var[o] as f64 + BATCH_NORM_EPSILON).sqrt()) as f32;
                    weight.values[o * per_out..(o + 1) * per_out]
                        .iter_mut()
                        .for_each(|v| *v *= scale);
                    bias.values[o] = (bias.values[o] - mean[o]) * scale + beta[o];
                }
            }
            weights.insert(w, weight);
            weights.insert(b, bias);
        }
        let mut out = Checkpoint { card, weights };
        out.card.weights_sha256 = out.weights_sha256();
        out
    }

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
            if e.shape.len() != 5 || e.name.ends_with(".up.weight") {
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
