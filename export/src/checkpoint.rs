//! Checkpoints: a directory holding `model.safetensors` (f32 weights named
//! by the weight-name scheme) and `model.card.json` (the model card).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use edge_seg_models::atomic;
use edge_seg_models::spec::{LayerKind, Norm, BATCH_NORM_EPSILON};
use edge_seg_models::weights::{
    bias_name, norm_name, norm_tensor_name, weight_entries, weight_name, weights_sha256, WeightEntry,
};
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
    safetensors_bytes_with_metadata(tensors, None)
}

/// Serialise f32 tensors as safetensors, with a free-text metadata header.
pub fn safetensors_bytes_with_metadata(
    tensors: &BTreeMap<String, Tensor>,
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Vec<u8> {
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
    safetensors::serialize(views, metadata).expect("f32 tensors serialise")
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
            let (w, b) = (weight_name(&layer.name), bias_name(&layer.name));
            let (mut weight, mut bias) = (self.weights[&w].clone(), self.weights[&b].clone());
            if let LayerKind::Conv3 { cout, .. } = layer.kind {
                let norm = norm_name(&layer.name);
                let t = |tensor: &str| get(&norm_tensor_name(&norm, tensor));
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
}
