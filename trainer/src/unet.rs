//! The 3D U-Net in burn, built from a [`NetworkSpec`].
//!
//! Parameters are named by the `models` weight-name scheme
//! (`enc0.conv1.weight`, `dec2.up.bias`, `head.weight`); decoder inputs are
//! `cat([upsampled, centre-cropped skip])` along channels, as in the ONNX
//! export. burn 0.22 has no 3D max-pooling, so 2x2x2 pooling and nearest
//! upsampling are built from differentiable reshape / max / expand.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::nn::conv::{Conv3d, Conv3dConfig, ConvTranspose3d, ConvTranspose3dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig3d};
use burn::prelude::*;
use burn::tensor::activation::{relu, softmax};
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use edge_seg_export::init::WeightInit;
use edge_seg_export::Tensor as WeightTensor;
use edge_seg_models::spec::{LayerKind, NetworkSpec, Norm, Padding, Upsampling, BATCH_NORM_EPSILON};
use edge_seg_models::weights::weight_entries;

#[derive(Module, Debug)]
pub struct EncBlock {
    pub conv0: Conv3d,
    pub conv1: Conv3d,
    /// Batch normalisation after each conv (batch-normalised specs only).
    pub norm0: Option<BatchNorm>,
    pub norm1: Option<BatchNorm>,
}

#[derive(Module, Debug)]
pub struct DecBlock {
    pub up: Option<ConvTranspose3d>,
    pub conv0: Conv3d,
    pub conv1: Conv3d,
    pub norm0: Option<BatchNorm>,
    pub norm1: Option<BatchNorm>,
}

/// A convolution's scheme name in parts: block kind, level, convolution.
type ConvName = (&'static str, usize, &'static str);

/// How many output channels of one convolution are active on a batch.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LiveChannels {
    /// Scheme name, e.g. `dec2.conv0`.
    pub layer: String,
    pub live: usize,
    pub channels: usize,
}

/// The network. `enc[l]` is encoder level `l` (the last is the bottleneck);
/// `dec[l]` is the decoder level that outputs at level `l`'s resolution.
#[derive(Module, Debug)]
pub struct UNet {
    pub enc: Vec<EncBlock>,
    pub dec: Vec<DecBlock>,
    pub head: Conv3d,
}

/// 2x2x2 max-pooling, stride 2 (even sizes): burn's 2D max-pool over
/// (h, w) for every slice, then the maximum of slice pairs. Both steps have
/// native backward passes (about 3x faster than reshape + max_dim on Flex).
pub fn max_pool2(x: Tensor<5>) -> Tensor<5> {
    let [b, c, d, h, w] = x.dims();
    let y = max_pool2d(x.reshape([b * c * d, 1, h, w]), MaxPoolOptions::new([2, 2]));
    y.reshape([b * c * d / 2, 2, (h / 2) * (w / 2)])
        .max_dim(1)
        .reshape([b, c, d / 2, h / 2, w / 2])
}

/// Nearest-neighbour 2x upsampling.
pub fn upsample2(x: Tensor<5>) -> Tensor<5> {
    let [b, c, d, h, w] = x.dims();
    x.reshape([b * c * d, h, 1, w, 1])
        .expand([b * c * d, h, 2, w, 2])
        .reshape([b * c, d, 1, 4 * h * w])
        .expand([b * c, d, 2, 4 * h * w])
        .reshape([b, c, 2 * d, 2 * h, 2 * w])
}

/// Centre crop of the spatial dims to `size`.
pub fn centre_crop(x: Tensor<5>, size: [usize; 3]) -> Tensor<5> {
    let [_, _, d, h, w] = x.dims();
    let o = [(d - size[0]) / 2, (h - size[1]) / 2, (w - size[2]) / 2];
    x.narrow(2, o[0], size[0])
        .narrow(3, o[1], size[1])
        .narrow(4, o[2], size[2])
}

fn conv(cin: usize, cout: usize, kernel: usize, padding: Padding, device: &Device) -> Conv3d {
    Conv3dConfig::new([cin, cout], [kernel; 3])
        .with_padding(match padding {
            Padding::Valid => PaddingConfig3d::Valid,
            Padding::Same => PaddingConfig3d::Same,
        })
        .with_bias(true)
        .init(device)
}

/// Our weight name for a burn module path (`enc.0.conv1.weight` →
/// `enc0.conv1.weight`).
pub(crate) fn scheme_name(path: &[String]) -> String {
    if path.len() >= 2 && (path[0] == "enc" || path[0] == "dec") {
        format!("{}{}.{}", path[0], path[1], path[2..].join("."))
    } else {
        path.join(".")
    }
}

impl UNet {
    /// A network for `spec` on `device`, with weights from `weights`
    /// (normally [`initial_weights`]).
    pub fn new(spec: &NetworkSpec, weights: &BTreeMap<String, WeightTensor>, device: &Device) -> Result<UNet> {
        spec.validate()?;
        let layers = spec.layers();
        let kind_of = |name: &str| layers.iter().find(|l| l.name == name).expect("layer in spec").kind;
        let conv_of = |name: &str, kernel: usize| -> Conv3d {
            match kind_of(name) {
                LayerKind::Conv3 { cin, cout } => conv(cin, cout, kernel, spec.padding, device),
                LayerKind::Head { cin, classes } => conv(cin, classes, 1, Padding::Valid, device),
                LayerKind::Up { .. } => unreachable!(),
            }
        };
        let norm_of = |name: &str| -> Option<BatchNorm> {
            match (spec.norm, kind_of(name)) {
                (Norm::Batch, LayerKind::Conv3 { cout, .. }) => {
                    Some(BatchNormConfig::new(cout).with_epsilon(BATCH_NORM_EPSILON).init(device))
                }
                _ => None,
            }
        };
        let enc = (0..spec.levels)
            .map(|l| EncBlock {
                conv0: conv_of(&format!("enc{l}.conv0"), 3),
                conv1: conv_of(&format!("enc{l}.conv1"), 3),
                norm0: norm_of(&format!("enc{l}.conv0")),
                norm1: norm_of(&format!("enc{l}.conv1")),
            })
            .collect();
        let dec = (0..spec.levels - 1)
            .map(|l| DecBlock {
                up: match spec.upsampling {
                    Upsampling::Nearest => None,
                    Upsampling::Transposed => {
                        let channels = match layers.iter().find(|x| x.name == format!("dec{l}.up")).map(|x| x.kind) {
                            Some(LayerKind::Up { channels }) => channels,
                            _ => unreachable!("transposed specs have up layers"),
                        };
                        Some(
                            ConvTranspose3dConfig::new([channels, channels], [2, 2, 2])
                                .with_stride([2, 2, 2])
                                .init(device),
                        )
                    }
                },
                conv0: conv_of(&format!("dec{l}.conv0"), 3),
                conv1: conv_of(&format!("dec{l}.conv1"), 3),
                norm0: norm_of(&format!("dec{l}.conv0")),
                norm1: norm_of(&format!("dec{l}.conv1")),
            })
            .collect();
        let head = conv_of("head", 1);
        let model = UNet { enc, dec, head };
        // Stable parameter ids (optimizer state is keyed by them), then weights.
        let model = model.map(&mut StableIds { next: 0 });
        model.load_weights(weights)
    }

    /// Class scores before softmax, `[B, C, d, h, w]`.
    pub fn forward_logits(&self, x: Tensor<5>) -> Tensor<5> {
        #[cfg(feature = "tch")]
        if let Some(y) = crate::unet_graph::forward_logits(self, &x) {
            return y;
        }
        self.forward_observed(x, |_, _| {})
    }

    /// For each 3x3x3 convolution, in forward order: its name and how many
    /// of its output channels are positive (after ReLU) somewhere in the
    /// batch `x`. A channel that is zero everywhere passes no gradient back;
    /// a layer with no live channel cuts off every layer that feeds only it.
    pub fn live_channels(&self, x: Tensor<5>) -> Vec<LiveChannels> {
        let mut out = Vec::new();
        self.forward_observed(x, |(block, level, conv), y| {
            let [b, c, d, h, w] = y.dims();
            let max = y.clone().swap_dims(0, 1).reshape([c, b * d * h * w]).max_dim(1);
            let max: Vec<f32> = max.into_data().try_to_vec_as::<f32>().expect("float tensor data");
            out.push(LiveChannels {
                layer: format!("{block}{level}.{conv}"),
                live: max.iter().filter(|&&v| v > 0.0).count(),
                channels: c,
            });
        });
        out
    }

    /// The forward pass, showing `observe` each convolution's output after
    /// its ReLU, with the parts of the layer's scheme name (`("dec", 2,
    /// "conv0")` for `dec2.conv0`; nothing is formatted on the training path).
    fn forward_observed(&self, x: Tensor<5>, mut observe: impl FnMut(ConvName, &Tensor<5>)) -> Tensor<5> {
        let mut conv_relu = |conv: &Conv3d, norm: &Option<BatchNorm>, x: Tensor<5>, name: ConvName| {
            let y = crate::conv::forward(conv, x);
            let y = relu(match norm {
                Some(n) => n.forward(y),
                None => y,
            });
            observe(name, &y);
            y
        };
        let mut x = x;
        let mut skips = Vec::new();
        let last = self.enc.len() - 1;
        for (l, block) in self.enc.iter().enumerate() {
            x = conv_relu(&block.conv0, &block.norm0, x, ("enc", l, "conv0"));
            x = conv_relu(&block.conv1, &block.norm1, x, ("enc", l, "conv1"));
            if l < last {
                skips.push(x.clone());
                x = max_pool2(x);
            }
        }
        for l in (0..self.dec.len()).rev() {
            let block = &self.dec[l];
            let up = match &block.up {
                Some(t) => t.forward(x),
                None => upsample2(x),
            };
            let [_, _, d, h, w] = up.dims();
            let skip = centre_crop(skips[l].clone(), [d, h, w]);
            x = Tensor::cat(vec![up, skip], 1);
            x = conv_relu(&block.conv0, &block.norm0, x, ("dec", l, "conv0"));
            x = conv_relu(&block.conv1, &block.norm1, x, ("dec", l, "conv1"));
        }
        crate::conv::forward(&self.head, x)
    }

    /// Softmax probabilities, `[B, C, d, h, w]`.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        softmax(self.forward_logits(x), 1)
    }

    /// All weights by scheme name. Take them from `model.valid()` while
    /// training: burn syncs batch-normalisation running statistics there, and
    /// a model still on the autodiff device may report them one update late.
    pub fn weights(&self) -> BTreeMap<String, WeightTensor> {
        let mut c = Collect {
            path: Vec::new(),
            grads: None,
            out: BTreeMap::new(),
        };
        self.visit(&mut c);
        c.out
    }

    /// The gradient of every parameter that has one in `grads`, by scheme
    /// name (the model must be the autodiff model the loss came from).
    pub fn gradients(&self, grads: &burn::tensor::Gradients) -> BTreeMap<String, WeightTensor> {
        let mut c = Collect {
            path: Vec::new(),
            grads: Some(grads),
            out: BTreeMap::new(),
        };
        self.visit(&mut c);
        c.out
    }

    /// Replace weights from `weights` (every scheme tensor must be present
    /// with the right shape).
    pub fn load_weights(self, weights: &BTreeMap<String, WeightTensor>) -> Result<UNet> {
        let mut l = Load {
            path: Vec::new(),
            src: weights,
            problems: Vec::new(),
        };
        let model = self.map(&mut l);
        if !l.problems.is_empty() {
            bail!("cannot load weights:\n  {}", l.problems.join("\n  "));
        }
        Ok(model)
    }

    /// Names of the parameters, in visit order.
    pub fn parameter_names(&self) -> Vec<String> {
        self.weights().into_keys().collect()
    }
}

struct StableIds {
    next: u64,
}

impl ModuleMapper for StableIds {
    fn map_float<const D: usize>(&mut self, mut p: Param<Tensor<D>>) -> Param<Tensor<D>> {
        p.id = ParamId::from(1_000 + self.next);
        self.next += 1;
        p
    }
}

/// Every parameter by scheme name: its value, or with `grads` its gradient
/// (parameters without one are left out).
struct Collect<'a> {
    path: Vec<String>,
    grads: Option<&'a burn::tensor::Gradients>,
    out: BTreeMap<String, WeightTensor>,
}

impl ModuleVisitor for Collect<'_> {
    fn enter_module(&mut self, name: &str, _ty: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _ty: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        let t = match self.grads {
            None => Some(p.val()),
            Some(grads) => p.val().grad(grads),
        };
        if let Some(t) = t {
            let shape = t.shape().to_vec();
            let values = t.into_data().try_to_vec_as::<f32>().expect("f32 parameters");
            self.out.insert(scheme_name(&self.path), WeightTensor { shape, values });
        }
    }
}

struct Load<'a> {
    path: Vec<String>,
    src: &'a BTreeMap<String, WeightTensor>,
    problems: Vec<String>,
}

impl ModuleMapper for Load<'_> {
    fn enter_module(&mut self, name: &str, _ty: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _ty: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = scheme_name(&self.path);
        match self.src.get(&name) {
            Some(t) if p.lazy_shape().as_slice() == t.shape.as_slice() => {
                let value =
                    Tensor::<D>::from_data(TensorData::new(t.values.clone(), t.shape.clone()), &p.lazy_device());
                let id = p.id;
                p.transform_for_load(value, id)
            }
            Some(t) => {
                self.problems.push(format!(
                    "{name}: shape {:?}, the network needs {:?}",
                    t.shape,
                    p.lazy_shape().as_slice()
                ));
                p
            }
            None => {
                self.problems.push(format!("{name}: missing"));
                p
            }
        }
    }
}

/// Glorot-uniform weights and zero biases (the Keras defaults the paper's
/// code uses), deterministic for `seed`.
pub fn initial_weights(spec: &NetworkSpec, seed: u64) -> BTreeMap<String, WeightTensor> {
    initial_weights_with(spec, seed, WeightInit::Glorot)
}

/// Random weights scaled by `init` and zero biases, deterministic for `seed`.
pub fn initial_weights_with(spec: &NetworkSpec, seed: u64, init: WeightInit) -> BTreeMap<String, WeightTensor> {
    edge_seg_export::init::random_weights(spec, seed, false, init)
}

/// Every scheme name of `spec` (for checks).
pub fn scheme_names(spec: &NetworkSpec) -> Vec<String> {
    weight_entries(spec).into_iter().map(|e| e.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge_seg_models::spec::ChannelPlan;

    fn tiny(levels: usize, padding: Padding, upsampling: Upsampling) -> NetworkSpec {
        NetworkSpec {
            levels,
            base_filters: 2,
            channel_plan: ChannelPlan::Cicek,
            padding,
            upsampling,
            in_channels: 1,
            classes: 3,
            norm: Norm::None,
        }
    }

    #[test]
    fn paper_parameter_count_matches_the_contract() {
        // Counting parameters needs no forward pass (and no weights drawn).
        let spec = NetworkSpec::paper(23);
        let device = Device::flex();
        let layers = spec.layers();
        let model_params: usize = layers
            .iter()
            .map(|l| match l.kind {
                LayerKind::Conv3 { cin, cout } => conv(cin, cout, 3, spec.padding, &device).num_params(),
                LayerKind::Head { cin, classes } => conv(cin, classes, 1, Padding::Valid, &device).num_params(),
                LayerKind::Up { .. } => unreachable!(),
            })
            .sum();
        assert_eq!(model_params as u64, spec.parameter_count());
        assert_eq!(model_params, 16_317_015);
    }

    #[test]
    fn parameter_names_follow_the_scheme() {
        for up in [Upsampling::Nearest, Upsampling::Transposed] {
            let spec = tiny(4, Padding::Valid, up);
            let model = UNet::new(&spec, &initial_weights(&spec, 1), &Device::flex()).unwrap();
            let mut names = model.parameter_names();
            names.sort();
            let mut expected = scheme_names(&spec);
            expected.sort();
            assert_eq!(names, expected);
            assert_eq!(model.num_params() as u64, spec.parameter_count());
        }
    }

    #[test]
    fn batch_norm_parameters_follow_the_scheme() {
        let spec = NetworkSpec {
            norm: Norm::Batch,
            ..tiny(3, Padding::Same, Upsampling::Transposed)
        };
        let w = edge_seg_export::init::glorot_weights(&spec, 5, true);
        let model = UNet::new(&spec, &w, &Device::flex()).unwrap();
        let mut names = model.parameter_names();
        names.sort();
        let mut expected = scheme_names(&spec);
        expected.sort();
        assert_eq!(names, expected);
        assert!(names.contains(&"dec1.norm0.running_var".to_string()));
        // The running statistics load and save with the rest.
        assert_eq!(model.weights(), w);
    }

    /// A batch-normalised network at inference (running statistics) and the
    /// plain network export folds it into compute the same scores.
    #[test]
    fn folded_batch_norm_computes_the_same_scores() {
        let device = Device::flex();
        for (padding, up) in [
            (Padding::Same, Upsampling::Nearest),
            (Padding::Valid, Upsampling::Transposed),
        ] {
            let spec = NetworkSpec {
                norm: Norm::Batch,
                ..tiny(3, padding, up)
            };
            let card = edge_seg_models::ModelCard::new(
                "t",
                edge_seg_models::card::Modality::CT,
                &["background", "a", "b"],
                spec.clone(),
                [2.0; 3],
                edge_seg_models::card::Intensity::ct_default(),
                [spec.smallest_input() + 8; 3],
            )
            .unwrap();
            let ckpt = edge_seg_export::Checkpoint::random(card, 9);
            let folded = ckpt.folded();
            assert_eq!(folded.card.network.norm, Norm::None);
            assert!(folded.card.provenance.normalisation.is_some());
            assert_eq!(folded.weights.len(), scheme_names(&folded.card.network).len());
            let s = ckpt.card.tile.input;
            let n: usize = s.iter().product();
            let v: Vec<f32> = (0..n).map(|i| ((i * 7919) % 200) as f32 / 100.0 - 1.0).collect();
            let x = Tensor::<5>::from_data(TensorData::new(v, [1, 1, s[0], s[1], s[2]]), &device);
            let with_norm = UNet::new(&spec, &ckpt.weights, &device).unwrap();
            let plain = UNet::new(&folded.card.network, &folded.weights, &device).unwrap();
            let a: Vec<f32> = with_norm
                .forward_logits(x.clone())
                .into_data()
                .try_to_vec_as::<f32>()
                .unwrap();
            let b: Vec<f32> = plain.forward_logits(x).into_data().try_to_vec_as::<f32>().unwrap();
            let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
            let diff = a.iter().zip(&b).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
            assert!(scale > 1e-3, "{spec:?}: scores are all near zero");
            assert!(diff <= 1e-5 * scale.max(1.0), "{spec:?}: max |Δ| {diff}, scale {scale}");
        }
    }

    /// Training normalises by the batch's statistics and moves the running
    /// statistics towards them; inference uses the running statistics.
    #[test]
    fn batch_norm_trains_on_batch_statistics_and_keeps_running_ones() {
        let spec = NetworkSpec {
            norm: Norm::Batch,
            ..tiny(2, Padding::Same, Upsampling::Nearest)
        };
        let ad = Device::flex().autodiff();
        let w = initial_weights(&spec, 4);
        let model = UNet::new(&spec, &w, &ad).unwrap();
        let n = 8 * 8 * 8;
        let v: Vec<f32> = (0..n).map(|i| 5.0 + ((i * 31) % 17) as f32).collect();
        let x = Tensor::<5>::from_data(TensorData::new(v, [1, 1, 8, 8, 8]), &ad);
        let train_scores: Vec<f32> = model
            .forward_logits(x.clone())
            .into_data()
            .try_to_vec_as::<f32>()
            .unwrap();
        let after = model.valid().weights();
        let mean = &after["enc0.norm0.running_mean"].values;
        assert!(
            mean.iter().any(|&m| m.abs() > 1e-3),
            "running mean did not move: {mean:?}"
        );
        assert_ne!(after["enc0.norm0.running_var"], w["enc0.norm0.running_var"]);
        // At inference, the same input goes through the running statistics,
        // which after one step are not the batch's: the scores differ.
        let eval = model.valid();
        let x = Tensor::<5>::from_data(x.into_data(), &Device::flex());
        let eval_scores: Vec<f32> = eval.forward_logits(x).into_data().try_to_vec_as::<f32>().unwrap();
        let diff = train_scores
            .iter()
            .zip(&eval_scores)
            .fold(0f32, |m, (p, q)| m.max((p - q).abs()));
        assert!(
            diff > 1e-3,
            "training and inference scores agree ({diff}): statistics unused"
        );
    }

    #[test]
    fn output_shape_matches_the_arithmetic() {
        let device = Device::flex();
        for (spec, sizes) in [
            (
                tiny(4, Padding::Valid, Upsampling::Nearest),
                vec![[92, 92, 92], [92, 100, 108]],
            ),
            (tiny(3, Padding::Valid, Upsampling::Transposed), vec![[44, 52, 60]]),
            (tiny(2, Padding::Same, Upsampling::Nearest), vec![[8, 12, 16]]),
        ] {
            let model = UNet::new(&spec, &initial_weights(&spec, 2), &device).unwrap();
            for s in sizes {
                let n: usize = s.iter().product();
                let x = Tensor::<5>::from_data(TensorData::new(vec![0.1f32; n], [1, 1, s[0], s[1], s[2]]), &device);
                let y = model.forward(x);
                let o = spec.output_shape(s).unwrap();
                assert_eq!(y.dims(), [1, 3, o[0], o[1], o[2]], "{spec:?} {s:?}");
            }
        }
    }

    #[test]
    fn weights_round_trip() {
        let spec = tiny(2, Padding::Valid, Upsampling::Transposed);
        let w = edge_seg_export::init::glorot_weights(&spec, 5, true);
        let model = UNet::new(&spec, &w, &Device::flex()).unwrap();
        assert_eq!(model.weights(), w);
    }

    #[test]
    fn live_channels_finds_a_dead_layer() {
        let device = Device::flex();
        let spec = tiny(3, Padding::Same, Upsampling::Nearest);
        let mut w = initial_weights(&spec, 3);
        // Every unit of enc1.conv1 below zero for any input in [-1, 1].
        w.get_mut("enc1.conv1.bias")
            .unwrap()
            .values
            .iter_mut()
            .for_each(|b| *b = -1e6);
        let model = UNet::new(&spec, &w, &device).unwrap();
        let n = 16 * 16 * 16;
        let v: Vec<f32> = (0..n).map(|i| ((i * 7919) % 200) as f32 / 100.0 - 1.0).collect();
        let x = Tensor::<5>::from_data(TensorData::new(v, [1, 1, 16, 16, 16]), &device);
        let live = model.live_channels(x.clone());
        let conv3: Vec<(String, usize)> = spec
            .layers()
            .into_iter()
            .filter_map(|l| match l.kind {
                LayerKind::Conv3 { cout, .. } => Some((l.name, cout)),
                _ => None,
            })
            .collect();
        let mut names: Vec<(String, usize)> = live.iter().map(|l| (l.layer.clone(), l.channels)).collect();
        names.sort();
        let mut expected = conv3;
        expected.sort();
        assert_eq!(names, expected);
        let of = |name: &str| live.iter().find(|l| l.layer == name).unwrap().live;
        assert_eq!(of("enc1.conv1"), 0);
        assert!(of("enc0.conv0") > 0, "{live:?}");
        // The count of the first layer, computed directly.
        let first = relu(model.enc[0].conv0.forward(x));
        let [_, c, ..] = first.dims();
        let direct = (0..c)
            .filter(|&k| {
                let channel: Vec<f32> = first
                    .clone()
                    .narrow(1, k, 1)
                    .into_data()
                    .try_to_vec_as::<f32>()
                    .unwrap();
                channel.iter().any(|&v| v > 0.0)
            })
            .count();
        assert_eq!(of("enc0.conv0"), direct);
    }

    #[test]
    fn pooling_and_upsampling_values() {
        let device = Device::flex();
        let v: Vec<f32> = (0..64).map(|i| i as f32).collect();
        let x = Tensor::<5>::from_data(TensorData::new(v, [1, 1, 4, 4, 4]), &device);
        let p = max_pool2(x);
        let got: Vec<f32> = p.clone().into_data().try_to_vec_as::<f32>().unwrap();
        assert_eq!(got, vec![21.0, 23.0, 29.0, 31.0, 53.0, 55.0, 61.0, 63.0]);
        let u = upsample2(p);
        assert_eq!(u.dims(), [1, 1, 4, 4, 4]);
        let up: Vec<f32> = u.into_data().try_to_vec_as::<f32>().unwrap();
        // voxel (z, y, x) takes the pooled value at (z/2, y/2, x/2)
        for z in 0..4 {
            for y in 0..4 {
                for x in 0..4 {
                    let pooled = [21.0, 23.0, 29.0, 31.0, 53.0, 55.0, 61.0, 63.0][(z / 2) * 4 + (y / 2) * 2 + x / 2];
                    assert_eq!(up[z * 16 + y * 4 + x], pooled);
                }
            }
        }
    }
}
