//! The network specification and its shape arithmetic.
//!
//! A [`NetworkSpec`] describes a 3D U-Net completely: from it follow the
//! layer list (and so the weight names, see [`crate::weights`]), the output
//! size for an input size, the legal input sizes, the parameter count and the
//! forward cost of one tile.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// How the number of filters grows with depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelPlan {
    /// The plan of Çiçek et al. (2016) used by the paper: at level `l` the
    /// first conv outputs `f·2^l` channels and the second doubles them
    /// (32→64, 64→128, 128→256, bottleneck 256→512 for `f = 32`); decoder
    /// convs output `f·2^(l+1)`.
    Cicek,
    /// Both convs of level `l` output `f·2^l` channels, encoder and decoder.
    Doubling,
}

/// Convolution padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Padding {
    /// No padding: each 3x3x3 conv loses one voxel per side.
    Valid,
    /// Zero padding: each conv keeps the size.
    Same,
}

/// Decoder upsampling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Upsampling {
    /// Nearest-neighbour 2x upsampling (no weights).
    Nearest,
    /// Transposed convolution, kernel 2, stride 2, same channel count.
    Transposed,
}

/// Normalisation after each 3x3x3 convolution (before its ReLU).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    /// None, as in the paper.
    #[default]
    None,
    /// Batch normalisation (Ioffe & Szegedy 2015) with learned scale and
    /// shift and running statistics (epsilon [`BATCH_NORM_EPSILON`]). It
    /// exists only while training: at inference it is an affine map per
    /// channel, which export folds into the convolution before it, so an
    /// exported network has `norm: none` and the runtime never sees it.
    Batch,
}

impl Norm {
    pub fn is_none(&self) -> bool {
        *self == Norm::None
    }
}

/// The epsilon of batch normalisation, `y = (x - mean) / sqrt(var + eps)`.
pub const BATCH_NORM_EPSILON: f64 = 1e-5;

/// A 3D U-Net: `levels` resolution levels (so `levels - 1` poolings), two
/// 3x3x3 convs with ReLU per level, 2x2x2 max-pooling, upsampling,
/// centre-cropped skip connections, a 1x1x1 head and softmax.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    pub levels: usize,
    pub base_filters: usize,
    pub channel_plan: ChannelPlan,
    pub padding: Padding,
    pub upsampling: Upsampling,
    pub in_channels: usize,
    /// Output classes, background included.
    pub classes: usize,
    /// Normalisation after each 3x3x3 convolution; absent means none.
    #[serde(default, skip_serializing_if = "Norm::is_none")]
    pub norm: Norm,
}

/// What a layer computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    /// 3x3x3 convolution followed by the spec's normalisation and ReLU.
    Conv3 { cin: usize, cout: usize },
    /// Transposed 2x2x2 convolution, stride 2 (decoder upsampling).
    Up { channels: usize },
    /// 1x1x1 convolution to class scores (softmax follows).
    Head { cin: usize, classes: usize },
}

/// One layer with weights, in forward order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// Stable name, e.g. `enc0.conv1`, `dec2.up`, `head`.
    pub name: String,
    pub kind: LayerKind,
}

impl Layer {
    /// Shapes of the weight and the bias, in ONNX / burn layout
    /// (`[out, in, k, k, k]` for convs, `[in, out, 2, 2, 2]` for transposed).
    pub fn weight_shapes(&self) -> [Vec<usize>; 2] {
        match self.kind {
            LayerKind::Conv3 { cin, cout } => [vec![cout, cin, 3, 3, 3], vec![cout]],
            LayerKind::Up { channels } => [vec![channels, channels, 2, 2, 2], vec![channels]],
            LayerKind::Head { cin, classes } => [vec![classes, cin, 1, 1, 1], vec![classes]],
        }
    }

    pub fn parameter_count(&self) -> u64 {
        self.weight_shapes()
            .iter()
            .map(|s| s.iter().product::<usize>() as u64)
            .sum()
    }
}

/// Why a spec or a size is not usable.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("a network needs 2 to 6 levels, got {0}")]
    Levels(usize),
    #[error("base_filters must be between 1 and 1024, got {0}")]
    BaseFilters(usize),
    #[error("in_channels must be at least 1, got {0}")]
    InChannels(usize),
    #[error("a segmentation network needs at least 2 classes (background + one), got {0}")]
    Classes(usize),
    #[error("input size {size} is not legal for this network; legal sizes near it: {nearby:?}")]
    IllegalInput { size: usize, nearby: Vec<usize> },
}

impl NetworkSpec {
    /// The paper's network: 4 levels, Çiçek plan from 32 filters, valid convs,
    /// nearest upsampling, one input channel.
    pub fn paper(classes: usize) -> Self {
        NetworkSpec {
            levels: 4,
            base_filters: 32,
            channel_plan: ChannelPlan::Cicek,
            padding: Padding::Valid,
            upsampling: Upsampling::Nearest,
            in_channels: 1,
            classes,
            norm: Norm::None,
        }
    }

    pub fn validate(&self) -> Result<(), SpecError> {
        if !(2..=6).contains(&self.levels) {
            return Err(SpecError::Levels(self.levels));
        }
        if !(1..=1024).contains(&self.base_filters) {
            return Err(SpecError::BaseFilters(self.base_filters));
        }
        if self.in_channels == 0 {
            return Err(SpecError::InChannels(self.in_channels));
        }
        if self.classes < 2 {
            return Err(SpecError::Classes(self.classes));
        }
        Ok(())
    }

    /// Output channels of the first and second conv of encoder level `l`
    /// (`l = levels - 1` is the bottleneck).
    pub fn encoder_channels(&self, l: usize) -> (usize, usize) {
        let f = self.base_filters;
        match self.channel_plan {
            ChannelPlan::Cicek => (f << l, f << (l + 1)),
            ChannelPlan::Doubling => (f << l, f << l),
        }
    }

    /// Output channels of both convs of decoder level `l`.
    pub fn decoder_channels(&self, l: usize) -> usize {
        self.encoder_channels(l).1
    }

    /// Channels entering the head.
    pub fn head_channels(&self) -> usize {
        self.decoder_channels(0)
    }

    /// Every layer with weights, in forward order. This order is the order of
    /// the weight-name scheme and of `weights_sha256`.
    pub fn layers(&self) -> Vec<Layer> {
        let mut layers = Vec::new();
        let mut cin = self.in_channels;
        for l in 0..self.levels {
            let (c0, c1) = self.encoder_channels(l);
            layers.push(Layer {
                name: format!("enc{l}.conv0"),
                kind: LayerKind::Conv3 { cin, cout: c0 },
            });
            layers.push(Layer {
                name: format!("enc{l}.conv1"),
                kind: LayerKind::Conv3 { cin: c0, cout: c1 },
            });
            cin = c1;
        }
        for l in (0..self.levels - 1).rev() {
            if self.upsampling == Upsampling::Transposed {
                layers.push(Layer {
                    name: format!("dec{l}.up"),
                    kind: LayerKind::Up { channels: cin },
                });
            }
            let skip = self.encoder_channels(l).1;
            let c = self.decoder_channels(l);
            layers.push(Layer {
                name: format!("dec{l}.conv0"),
                kind: LayerKind::Conv3 {
                    cin: cin + skip,
                    cout: c,
                },
            });
            layers.push(Layer {
                name: format!("dec{l}.conv1"),
                kind: LayerKind::Conv3 { cin: c, cout: c },
            });
            cin = c;
        }
        layers.push(Layer {
            name: crate::weights::HEAD.into(),
            kind: LayerKind::Head {
                cin,
                classes: self.classes,
            },
        });
        layers
    }

    /// Trainable parameters: every layer's weight and bias, plus each
    /// normalisation's scale and shift (running statistics are not counted).
    pub fn parameter_count(&self) -> u64 {
        self.layers()
            .iter()
            .map(|l| match (self.norm, l.kind) {
                (Norm::Batch, LayerKind::Conv3 { cout, .. }) => l.parameter_count() + 2 * cout as u64,
                _ => l.parameter_count(),
            })
            .sum()
    }

    /// Voxels lost per side by one 3x3x3 conv.
    fn conv_loss(&self) -> usize {
        match self.padding {
            Padding::Valid => 2,
            Padding::Same => 0,
        }
    }

    /// The pooling factor of the deepest level, `2^(levels-1)`.
    pub fn pool_factor(&self) -> usize {
        1 << (self.levels - 1)
    }

    /// Sizes along one axis as the forward pass sees them: the output of
    /// every conv (encoder then decoder order) and the final output, or
    /// `None` when the input size is not legal (a pooled size is odd, a size
    /// drops to zero, or a skip cannot be centre-cropped symmetrically).
    pub fn trace_axis(&self, input: usize) -> Option<AxisTrace> {
        let loss = self.conv_loss();
        let mut s = input;
        let mut conv_out = Vec::new();
        let mut skips = Vec::new();
        for l in 0..self.levels {
            for _ in 0..2 {
                s = s.checked_sub(loss)?;
                if s == 0 {
                    return None;
                }
                conv_out.push(s);
            }
            if l + 1 < self.levels {
                if s % 2 != 0 {
                    return None;
                }
                skips.push(s);
                s /= 2;
            }
        }
        let mut up = Vec::new();
        for l in (0..self.levels - 1).rev() {
            s *= 2;
            let skip = skips[l];
            if skip < s || (skip - s) % 2 != 0 {
                return None;
            }
            up.push(s);
            for _ in 0..2 {
                s = s.checked_sub(loss)?;
                if s == 0 {
                    return None;
                }
                conv_out.push(s);
            }
        }
        Some(AxisTrace {
            conv_out,
            skips,
            up,
            output: s,
        })
    }

    /// Output size along one axis, if `input` is legal.
    pub fn output_size(&self, input: usize) -> Option<usize> {
        self.trace_axis(input).map(|t| t.output)
    }

    pub fn is_legal_input(&self, input: usize) -> bool {
        self.output_size(input).is_some()
    }

    /// Output shape for a 3D input tile, or an error naming the legal sizes
    /// near an illegal one.
    pub fn output_shape(&self, input: [usize; 3]) -> Result<[usize; 3], SpecError> {
        let mut out = [0; 3];
        for (o, &i) in out.iter_mut().zip(&input) {
            *o = self.output_size(i).ok_or_else(|| SpecError::IllegalInput {
                size: i,
                nearby: self.legal_sizes_near(i),
            })?;
        }
        Ok(out)
    }

    /// Legal input sizes in `1..=max`, ascending.
    pub fn legal_input_sizes(&self, max: usize) -> Vec<usize> {
        (1..=max).filter(|&s| self.is_legal_input(s)).collect()
    }

    /// The legal sizes just below and just above `size`.
    pub fn legal_sizes_near(&self, size: usize) -> Vec<usize> {
        let below = (1..size).rev().find(|&s| self.is_legal_input(s));
        let above = (size + 1..size + 64 * self.pool_factor() + 256).find(|&s| self.is_legal_input(s));
        below.into_iter().chain(above).collect()
    }

    /// The smallest legal input size.
    pub fn smallest_input(&self) -> usize {
        (1..).find(|&s| self.is_legal_input(s)).expect("some size is legal")
    }

    /// Voxels lost between input and output along one axis (0 for same
    /// padding). Constant over legal sizes for valid networks.
    pub fn margin(&self) -> usize {
        let s = self.smallest_input();
        s - self.output_size(s).unwrap()
    }

    /// The step between exactly tiled (valid-convolution) output tiles: the
    /// largest multiple of `2^(levels-1)` not above the output size, so that
    /// every tile starts on the whole volume's pooling grid.
    pub fn tile_step(&self, output: usize) -> usize {
        let p = self.pool_factor();
        (output / p * p).max(p)
    }

    /// Forward FLOPs (multiply and add counted separately) of one input tile:
    /// convolutions, transposed convolutions and the head.
    pub fn forward_flops(&self, input: [usize; 3]) -> Result<f64, SpecError> {
        self.output_shape(input)?;
        let t: Vec<AxisTrace> = input.iter().map(|&i| self.trace_axis(i).unwrap()).collect();
        let vox = |v: [usize; 3]| (v[0] * v[1] * v[2]) as f64;
        let mut flops = 0.0;
        let mut conv_index = 0;
        let mut up_index = 0;
        for layer in self.layers() {
            match layer.kind {
                LayerKind::Conv3 { cin, cout } => {
                    let out = [
                        t[0].conv_out[conv_index],
                        t[1].conv_out[conv_index],
                        t[2].conv_out[conv_index],
                    ];
                    flops += 2.0 * 27.0 * (cin * cout) as f64 * vox(out);
                    conv_index += 1;
                }
                LayerKind::Up { channels } => {
                    let out = [t[0].up[up_index], t[1].up[up_index], t[2].up[up_index]];
                    flops += 2.0 * (channels * channels) as f64 * vox(out);
                    up_index += 1;
                }
                LayerKind::Head { cin, classes } => {
                    let out = [t[0].output, t[1].output, t[2].output];
                    flops += 2.0 * (cin * classes) as f64 * vox(out);
                }
            }
        }
        Ok(flops)
    }
}

/// Sizes along one axis through the network (see [`NetworkSpec::trace_axis`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AxisTrace {
    /// Output size of every 3x3x3 conv, in layer order.
    pub conv_out: Vec<usize>,
    /// Encoder output size at each level that feeds a skip connection.
    pub skips: Vec<usize>,
    /// Size after each upsampling, deepest first.
    pub up: Vec<usize>,
    pub output: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_spec_has_16_3_million_parameters() {
        let spec = NetworkSpec::paper(23);
        assert_eq!(spec.parameter_count(), 16_317_015);
    }

    #[test]
    fn paper_spec_maps_132_to_44_at_about_650_gflop() {
        let spec = NetworkSpec::paper(23);
        assert_eq!(spec.output_shape([132; 3]).unwrap(), [44; 3]);
        assert_eq!(spec.margin(), 88);
        let gflop = spec.forward_flops([132; 3]).unwrap() / 1e9;
        assert!((600.0..700.0).contains(&gflop), "{gflop} GFLOP");
    }

    #[test]
    fn paper_legal_sizes_are_8k_plus_92() {
        let spec = NetworkSpec::paper(23);
        let legal = spec.legal_input_sizes(180);
        let expected: Vec<usize> = (0..=11).map(|k| 92 + 8 * k).collect();
        assert_eq!(legal, expected);
        assert_eq!(spec.output_size(108), Some(20));
        assert_eq!(spec.output_size(180), Some(92));
        assert_eq!(spec.output_size(133), None);
    }

    #[test]
    fn illegal_input_names_nearby_sizes() {
        let spec = NetworkSpec::paper(2);
        let err = spec.output_shape([132, 130, 132]).unwrap_err();
        assert_eq!(
            err,
            SpecError::IllegalInput {
                size: 130,
                nearby: vec![124, 132]
            }
        );
    }

    #[test]
    fn same_padding_keeps_size_at_multiples_of_the_pool_factor() {
        let spec = NetworkSpec {
            padding: Padding::Same,
            ..NetworkSpec::paper(3)
        };
        assert_eq!(spec.output_size(64), Some(64));
        assert_eq!(spec.output_size(60), None);
        assert_eq!(spec.margin(), 0);
        assert_eq!(spec.legal_input_sizes(24), vec![8, 16, 24]);
    }

    #[test]
    fn tile_step_is_on_the_pooling_grid() {
        let spec = NetworkSpec::paper(2);
        assert_eq!(spec.tile_step(44), 40);
        assert_eq!(spec.tile_step(92), 88);
        assert_eq!(spec.tile_step(20), 16);
    }

    #[test]
    fn transposed_upsampling_adds_up_layers_but_not_shape_change() {
        let spec = NetworkSpec {
            upsampling: Upsampling::Transposed,
            ..NetworkSpec::paper(2)
        };
        let names: Vec<String> = spec.layers().into_iter().map(|l| l.name).collect();
        assert!(names.contains(&"dec2.up".to_string()));
        assert_eq!(spec.output_size(132), Some(44));
        // Each up layer keeps channels: 512, 256, 128.
        let extra: u64 = [512u64, 256, 128].iter().map(|c| c * c * 8 + c).sum();
        assert_eq!(spec.parameter_count(), NetworkSpec::paper(2).parameter_count() + extra);
    }

    #[test]
    fn doubling_plan_channels() {
        let spec = NetworkSpec {
            channel_plan: ChannelPlan::Doubling,
            ..NetworkSpec::paper(2)
        };
        assert_eq!(spec.encoder_channels(0), (32, 32));
        assert_eq!(spec.encoder_channels(3), (256, 256));
        assert_eq!(spec.head_channels(), 32);
        let layers = spec.layers();
        let dec2 = layers.iter().find(|l| l.name == "dec2.conv0").unwrap();
        assert_eq!(
            dec2.kind,
            LayerKind::Conv3 {
                cin: 256 + 128,
                cout: 128
            }
        );
    }

    #[test]
    fn two_level_network_arithmetic() {
        let spec = NetworkSpec {
            levels: 2,
            base_filters: 2,
            ..NetworkSpec::paper(2)
        };
        // 20 -> 16 -> 8 -> 4 -> 8 -> 4
        assert_eq!(spec.output_size(20), Some(4));
        assert_eq!(spec.margin(), 16);
        assert_eq!(spec.smallest_input(), 18);
    }

    #[test]
    fn validate_rejects_bad_specs() {
        let ok = NetworkSpec::paper(2);
        assert!(ok.validate().is_ok());
        assert_eq!(
            NetworkSpec {
                levels: 1,
                ..ok.clone()
            }
            .validate(),
            Err(SpecError::Levels(1))
        );
        assert_eq!(
            NetworkSpec {
                classes: 1,
                ..ok.clone()
            }
            .validate(),
            Err(SpecError::Classes(1))
        );
        assert_eq!(
            NetworkSpec { base_filters: 0, ..ok }.validate(),
            Err(SpecError::BaseFilters(0))
        );
    }
}
