//! The weight-name scheme and the weight hash.
//!
//! Every tensor of a network has one stable name derived from its spec
//! (`enc0.conv1.weight`, `dec2.conv0.bias`, `dec1.up.weight`, `head.weight`).
//! The burn model, safetensors checkpoints and ONNX initializers all use these
//! names, and [`weights_sha256`] hashes tensors in this order. A spec with
//! batch normalisation adds, after each 3x3x3 convolution's bias, its
//! normalisation's `gamma`, `beta`, `running_mean` and `running_var`
//! (`enc0.norm1.gamma` for `enc0.conv1`); exported networks have none, since
//! export folds them into the convolutions.

use sha2::{Digest, Sha256};

use crate::spec::{LayerKind, NetworkSpec, Norm};

/// The tensors of a batch normalisation, in scheme order.
pub const NORM_TENSORS: [&str; 4] = ["gamma", "beta", "running_mean", "running_var"];

/// The name of the head layer (the final 1x1x1 convolution).
pub const HEAD: &str = "head";

/// The weight tensor of a layer (`enc0.conv1` → `enc0.conv1.weight`).
pub fn weight_name(layer: &str) -> String {
    format!("{layer}.weight")
}

/// The bias tensor of a layer (`enc0.conv1` → `enc0.conv1.bias`).
pub fn bias_name(layer: &str) -> String {
    format!("{layer}.bias")
}

/// A tensor of a normalisation (`enc0.norm1`, `gamma` → `enc0.norm1.gamma`).
pub fn norm_tensor_name(norm_layer: &str, tensor: &str) -> String {
    format!("{norm_layer}.{tensor}")
}

/// Whether a tensor belongs to `layer` (`head.weight` to `head`).
pub fn is_tensor_of(tensor: &str, layer: &str) -> bool {
    tensor.strip_prefix(layer).is_some_and(|rest| rest.starts_with('.'))
}

/// Whether a tensor is the weight of an upsampling (transposed) convolution.
pub fn is_upsampling_weight(tensor: &str) -> bool {
    tensor.ends_with(".up.weight")
}

/// The name of the normalisation after the 3x3x3 convolution `conv_layer`
/// (`enc0.conv1` → `enc0.norm1`).
pub fn norm_name(conv_layer: &str) -> String {
    match conv_layer.rsplit_once(".conv") {
        Some((block, k)) => format!("{block}.norm{k}"),
        None => format!("{conv_layer}.norm"),
    }
}

/// The convolution a normalisation belongs to (`enc0.norm1` → `enc0.conv1`),
/// or `None` for a name that is not a normalisation's.
pub fn conv_of_norm(norm_layer: &str) -> Option<String> {
    let (block, k) = norm_layer.rsplit_once(".norm")?;
    Some(format!("{block}.conv{k}"))
}

/// One named tensor of the scheme.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightEntry {
    pub name: String,
    pub shape: Vec<usize>,
}

impl WeightEntry {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// The ordered list of (name, shape) for every tensor of `spec`: for each
/// layer in forward order, its weight then its bias, then (batch-normalised
/// specs only, 3x3x3 convolutions only) its normalisation's tensors.
pub fn weight_entries(spec: &NetworkSpec) -> Vec<WeightEntry> {
    let mut out = Vec::new();
    for layer in spec.layers() {
        let [w, b] = layer.weight_shapes();
        out.push(WeightEntry {
            name: weight_name(&layer.name),
            shape: w,
        });
        out.push(WeightEntry {
            name: bias_name(&layer.name),
            shape: b,
        });
        if let (Norm::Batch, LayerKind::Conv3 { cout, .. }) = (spec.norm, layer.kind) {
            let norm = norm_name(&layer.name);
            out.extend(NORM_TENSORS.iter().map(|t| WeightEntry {
                name: norm_tensor_name(&norm, t),
                shape: vec![cout],
            }));
        }
    }
    out
}

/// SHA-256 (lower-case hex) of the tensors' raw little-endian bytes, as
/// stored, concatenated in weight-name-scheme order.
pub fn weights_sha256<'a>(tensors_in_scheme_order: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut hasher = Sha256::new();
    for bytes in tensors_in_scheme_order {
        hasher.update(bytes);
    }
    hex::encode(hasher.finalize())
}

/// Little-endian bytes of an f32 slice (the stored form of f32 weights).
pub fn f32_le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{NetworkSpec, Upsampling};

    /// Two levels of the paper's network from 4 filters, 3 classes.
    fn two_levels() -> NetworkSpec {
        NetworkSpec {
            levels: 2,
            base_filters: 4,
            ..NetworkSpec::paper(3)
        }
    }

    #[test]
    fn names_follow_layers_weight_then_bias() {
        let spec = two_levels();
        let names: Vec<String> = weight_entries(&spec).into_iter().map(|e| e.name).collect();
        assert_eq!(
            names,
            [
                "enc0.conv0.weight",
                "enc0.conv0.bias",
                "enc0.conv1.weight",
                "enc0.conv1.bias",
                "enc1.conv0.weight",
                "enc1.conv0.bias",
                "enc1.conv1.weight",
                "enc1.conv1.bias",
                "dec0.conv0.weight",
                "dec0.conv0.bias",
                "dec0.conv1.weight",
                "dec0.conv1.bias",
                "head.weight",
                "head.bias",
            ]
        );
    }

    #[test]
    fn shapes_match_parameter_count() {
        for up in [Upsampling::Nearest, Upsampling::Transposed] {
            let spec = NetworkSpec {
                upsampling: up,
                ..NetworkSpec::paper(23)
            };
            let total: usize = weight_entries(&spec).iter().map(WeightEntry::numel).sum();
            assert_eq!(total as u64, spec.parameter_count());
        }
        let entries = weight_entries(&NetworkSpec::paper(23));
        assert_eq!(entries[0].shape, vec![32, 1, 3, 3, 3]);
        assert_eq!(entries.last().unwrap().shape, vec![23]);
    }

    #[test]
    fn batch_norm_tensors_follow_each_conv_and_only_scale_and_shift_count() {
        let plain = two_levels();
        let spec = NetworkSpec {
            norm: Norm::Batch,
            ..plain.clone()
        };
        let names: Vec<String> = weight_entries(&spec).into_iter().map(|e| e.name).collect();
        assert_eq!(
            names[..8],
            [
                "enc0.conv0.weight",
                "enc0.conv0.bias",
                "enc0.norm0.gamma",
                "enc0.norm0.beta",
                "enc0.norm0.running_mean",
                "enc0.norm0.running_var",
                "enc0.conv1.weight",
                "enc0.conv1.bias",
            ]
        );
        // Six 3x3x3 convs with 4 tensors each; the head has none.
        assert_eq!(names.len(), weight_entries(&plain).len() + 6 * 4);
        assert_eq!(names[names.len() - 2..], ["head.weight", "head.bias"]);
        let trainable: usize = weight_entries(&spec)
            .iter()
            .filter(|e| !e.name.ends_with(".running_mean") && !e.name.ends_with(".running_var"))
            .map(WeightEntry::numel)
            .sum();
        assert_eq!(trainable as u64, spec.parameter_count());
        // enc0: 4+8, enc1: 8+16 ... channels of the Çiçek plan from 4 filters.
        let conv_channels: u64 = [4, 8, 8, 16, 8, 8].iter().sum();
        assert_eq!(spec.parameter_count(), plain.parameter_count() + 2 * conv_channels);
        assert_eq!(norm_name("dec1.conv0"), "dec1.norm0");
        assert_eq!(conv_of_norm("dec1.norm0").as_deref(), Some("dec1.conv0"));
        assert_eq!(conv_of_norm("dec1.up"), None);
    }

    #[test]
    fn hash_is_order_sensitive_and_matches_concatenation() {
        let a = f32_le_bytes(&[1.0, 2.0]);
        let b = f32_le_bytes(&[3.0]);
        let ab = weights_sha256([a.as_slice(), b.as_slice()]);
        let ba = weights_sha256([b.as_slice(), a.as_slice()]);
        assert_ne!(ab, ba);
        let joined = [a.clone(), b.clone()].concat();
        assert_eq!(ab, weights_sha256([joined.as_slice()]));
        assert_eq!(ab.len(), 64);
        // SHA-256 of nothing.
        assert_eq!(
            weights_sha256(std::iter::empty::<&[u8]>()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
