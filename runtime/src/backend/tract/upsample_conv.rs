//! A U-Net decoder's "nearest ×2 upsampling, concatenation with the skip,
//! 3×3×3 convolution" rewritten as an exactly equivalent, cheaper graph.
//!
//! The convolution of a concatenation is the sum of the convolutions of its
//! parts: `Conv(Concat(up, skip)) = Conv_up(up) + Conv_skip(skip) + bias`.
//! On the upsampled part, neighbouring upsampled voxels are copies, so each
//! output voxel of a 3-tap kernel `w` reads only two low-resolution voxels
//! per axis. With valid padding, output `2i` is `(w0+w1)·x[i] + w2·x[i+1]`
//! and output `2i+1` is `w0·x[i] + (w1+w2)·x[i+1]`: per output parity, a
//! 2-tap convolution of the low-resolution input. With same padding (1),
//! output `2i` is `w0·x[i-1] + (w1+w2)·x[i]` and `2i+1` is
//! `(w0+w1)·x[i] + w2·x[i+1]`: the same two kernels, `g0 = [w0+w1, w2]` and
//! `g1 = [w0, w1+w2]`, on the input padded by one, where `g0`'s results
//! land one voxel later.
//!
//! So one Conv of the low-resolution input with kernel 2×2×2 (padding 0 or
//! 1 as the original) computes all 8 parity combinations as 8 groups of
//! output channels; Reshape, Transpose and Reshape interleave them into the
//! upsampled grid (group `g` of low-resolution voxel `o` lands at `2o + g`
//! on each axis); with same padding a Slice drops the first and last plane,
//! where `Y[j] = interleaved[j + 1]`. The upsampled tensor is never built,
//! the Resize and the Concat disappear, and the upsampled channels cost 8
//! multiply-adds per output voxel instead of 27. The Reshape targets are
//! constants for one tile shape ([`low_res_sizes`] gives the sizes), so the
//! backend rewrites the graph for each tile shape it plans. (Computing them
//! in the graph with Shape, Concat and Mul made valgrind report tract
//! reading uninitialised memory while it folds those integer ops.)
//!
//! Measured on the shipped default model (48³ tile, one thread): tract's
//! nearest Resize alone took 25 % of a tile's time (BENCHMARKS.md).
//! The sums of taps round differently from the original order of additions,
//! so the outputs agree to float precision, not bit for bit.

use std::collections::{HashMap, HashSet};

use tract_onnx::pb::{ModelProto, NodeProto, TensorProto};

use super::graph_view::{attr, drop_unused_initializers, plain, three_cubed_stride_one, View};

use crate::backend::graph::build::{attr_int, attr_ints, f32_tensor, i64_tensor, node_to};
use crate::backend::graph::ops::{parse_node, Constants, Op, ParsedNode};
use crate::backend::graph::tensor::Values;

/// The spatial size `[z, y, x]` of every value of `model` for an input
/// tile `[z, y, x]`, by value name, for graphs in the op set of
/// [`crate::backend::graph`] (empty for any other graph, which the rewrite
/// then leaves alone).
pub fn low_res_sizes(model: &ModelProto, tile: [usize; 3]) -> HashMap<String, [usize; 3]> {
    let Ok(graph) = crate::backend::graph::Graph::from_proto(model) else {
        return HashMap::new();
    };
    let channels = graph.input_channels.unwrap_or(1);
    let Ok(shapes) = crate::backend::graph::shape::infer_shapes(&graph, [tile[0], tile[1], tile[2], channels]) else {
        return HashMap::new();
    };
    graph
        .names
        .iter()
        .zip(shapes)
        .filter_map(|(name, s)| s.map(|[z, y, x, _]| (name.clone(), [z, y, x])))
        .collect()
}

/// `model` with every matching decoder step rewritten for the sizes
/// `sizes` gives (a step whose input size is missing is left alone), and
/// how many were.
pub fn rewrite(model: &ModelProto, sizes: &HashMap<String, [usize; 3]>) -> (ModelProto, usize) {
    let mut out = model.clone();
    let Some(g) = out.graph.as_mut() else {
        return (out, 0);
    };
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .unwrap_or(0);
    let found: Vec<Match> = {
        let view = View::new(g);
        (0..g.node.len()).filter_map(|i| view.find(i, opset, sizes)).collect()
    };
    if found.is_empty() {
        return (out, 0);
    }
    let mut drop = HashSet::new();
    let mut at_conv: HashMap<usize, Vec<NodeProto>> = HashMap::new();
    for m in &found {
        drop.insert(m.resize);
        drop.insert(m.concat);
        at_conv.insert(m.conv, m.nodes.clone());
        g.initializer.extend(m.initializers.iter().cloned());
    }
    let nodes = std::mem::take(&mut g.node);
    for (i, n) in nodes.into_iter().enumerate() {
        if let Some(replacement) = at_conv.remove(&i) {
            g.node.extend(replacement);
        } else if !drop.contains(&i) {
            g.node.push(n);
        }
    }
    drop_unused_initializers(g);
    (out, found.len())
}

/// One decoder step to rewrite: the three nodes and what replaces them.
struct Match {
    resize: usize,
    concat: usize,
    conv: usize,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
}

impl View<'_> {
    /// The decoder step whose Resize is node `i`, if it has the form.
    fn find(&self, i: usize, opset: i64, sizes: &HashMap<String, [usize; 3]>) -> Option<Match> {
        let resize = &self.g.node[i];
        if !plain(resize) || resize.op_type != "Resize" || opset < 11 || !nearest_times_two(self, resize, opset) {
            return None;
        }
        let up = resize.output.first()?.as_str();
        if resize.output.len() != 1 || !self.single_use(up) {
            return None;
        }
        let concat_index = self.g.node.iter().position(|n| n.input.iter().any(|v| v == up))?;
        let concat = &self.g.node[concat_index];
        let axis = attr(concat, "axis").map(|a| a.i);
        if !plain(concat) || concat.op_type != "Concat" || !(axis == Some(1) || axis == Some(-4)) {
            return None;
        }
        let [a, b] = concat.input.as_slice() else {
            return None;
        };
        let (up_first, skip) = if a == up {
            (true, b.as_str())
        } else {
            (false, a.as_str())
        };
        let joined = concat.output.first()?.as_str();
        if concat.output.len() != 1 || skip == up || !self.single_use(joined) {
            return None;
        }
        let conv_index = self.g.node.iter().position(|n| n.input.iter().any(|v| v == joined))?;
        let conv = &self.g.node[conv_index];
        if !plain(conv) || conv.op_type != "Conv" || conv.input.first().map(String::as_str) != Some(joined) {
            return None;
        }
        let pad = three_cubed_stride_one(conv)?;
        let w = self.constant(conv.input.get(1)?)?;
        let Values::F32(weights) = &w.values else {
            return None;
        };
        let [co, total, 3, 3, 3] = w.dims[..] else {
            return None;
        };
        let x = resize.input.first()?.as_str();
        let low = sizes.get(x)?;
        let c_up = self
            .channels(x, 0)
            .or_else(|| self.channels(skip, 0).and_then(|c| total.checked_sub(c)))?;
        if c_up == 0 || c_up >= total {
            return None;
        }
        let c_skip = total - c_up;
        let up_channels = if up_first { 0..c_up } else { c_skip..total };
        let skip_channels = if up_first { c_up..total } else { 0..c_skip };
        let out = conv.output.first()?.clone();
        let names = [
            format!("{out}.upsampled_part"),
            format!("{out}.skip_part"),
            format!("{out}.upsampled_part.weight"),
            format!("{out}.skip_part.weight"),
        ];
        let taken = |prefix: &str| self.names.iter().any(|n| n.starts_with(prefix));
        if taken(&names[0]) || taken(&names[1]) || conv.output.len() != 1 {
            return None;
        }
        let [up_part, skip_part, up_weight, skip_weight] = names;
        let kernel = parity_kernel(weights, co, total, up_channels);
        let skip_w = channel_slice(weights, co, total, skip_channels);
        let mut skip_inputs = vec![skip, skip_weight.as_str()];
        if let Some(bias) = conv.input.get(2).filter(|b| !b.is_empty()) {
            skip_inputs.push(bias);
        }
        let mut skip_conv = node_to("Conv", &skip_part, &skip_inputs, &skip_part, conv.attribute.clone());
        skip_conv.doc_string = format!("the skip channels of {:?}", conv.name);
        let v = |name: &str| format!("{up_part}.{name}");
        let mut parities = node_to(
            "Conv",
            &v("parities"),
            &[x, &up_weight],
            &v("parities"),
            // Strides, dilations and group spelled out, as the exporter
            // writes them: tract's optimiser reads uninitialised memory
            // (valgrind) when they are left to their defaults.
            vec![
                attr_ints("kernel_shape", &[2; 3]),
                attr_ints("pads", &[pad; 6]),
                attr_ints("strides", &[1; 3]),
                attr_ints("dilations", &[1; 3]),
                attr_int("group", 1),
            ],
        );
        parities.doc_string = format!(
            "the upsampled channels of {:?}: 8 output parities on the low resolution",
            conv.name
        );
        let co = co as i64;
        // The parity Conv's spatial size (kernel 2, padding `pad` each side).
        let [az, ay, ax] = low.map(|n| (n + 2 * pad as usize - 1) as i64);
        let mut nodes = vec![
            parities,
            node_to(
                "Reshape",
                &v("grouped"),
                &[&v("parities"), &v("grouped_shape")],
                &v("grouped"),
                vec![],
            ),
            node_to(
                "Transpose",
                &v("interleaved"),
                &[&v("grouped")],
                &v("interleaved"),
                vec![attr_ints("perm", &[0, 4, 5, 1, 6, 2, 7, 3])],
            ),
            node_to(
                "Reshape",
                &v("upsampled"),
                &[&v("interleaved"), &v("upsampled_shape")],
                &up_part,
                vec![],
            ),
        ];
        let mut upsampled = up_part.clone();
        if pad == 1 {
            upsampled = v("cropped");
            nodes.push(node_to(
                "Slice",
                &upsampled,
                &[&up_part, &v("crop_starts"), &v("crop_ends"), &v("crop_axes")],
                &upsampled,
                vec![],
            ));
        }
        nodes.push(skip_conv);
        nodes.push(node_to("Add", &conv.name, &[&upsampled, &skip_part], &out, vec![]));
        let mut initializers = vec![
            f32_tensor(&up_weight, &[8 * co as usize, c_up, 2, 2, 2], &kernel),
            f32_tensor(&skip_weight, &[co as usize, c_skip, 3, 3, 3], &skip_w),
            i64_tensor(&v("grouped_shape"), &[1, 2, 2, 2, co, az, ay, ax]),
            i64_tensor(&v("upsampled_shape"), &[1, co, 2 * az, 2 * ay, 2 * ax]),
        ];
        if pad == 1 {
            initializers.extend([
                i64_tensor(&v("crop_starts"), &[1, 1, 1]),
                i64_tensor(&v("crop_ends"), &[2 * az - 1, 2 * ay - 1, 2 * ax - 1]),
                i64_tensor(&v("crop_axes"), &[2, 3, 4]),
            ]);
        }
        Some(Match {
            resize: i,
            concat: concat_index,
            conv: conv_index,
            nodes,
            initializers,
        })
    }
}

/// Whether `n` is a nearest Resize by 2 on the three spatial axes that maps
/// output index `j` to input `floor(j / 2)`: the graph executor's reading of
/// the node ([`crate::backend::graph::ops::parse_node`], which accepts only
/// such floor mappings) with scales `[2, 2, 2]`.
fn nearest_times_two(view: &View, n: &NodeProto, opset: i64) -> bool {
    let mut consts = Constants::new();
    if let Some(s) = n.input.get(2).filter(|s| !s.is_empty()) {
        if let Some(c) = view.constant(s) {
            consts.insert(s.clone(), c);
        }
    }
    matches!(
        parse_node(n, 0, &consts, opset),
        Ok(ParsedNode {
            op: Op::Resize { scale: [2, 2, 2] },
            ..
        })
    )
}

/// The 2-tap kernels of the two parity groups, each as the taps of the
/// 3-tap kernel it sums: `g0 = [w0 + w1, w2]`, `g1 = [w0, w1 + w2]`.
const GROUP_TAPS: [[[f32; 3]; 2]; 2] = [[[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]];

/// The weight `[8 co, c_in, 2, 2, 2]` of the parity Conv for the input
/// channels `channels` of a Conv weight `[co, total, 3, 3, 3]`: output
/// channel `((gz·2 + gy)·2 + gx)·co + o`.
fn parity_kernel(w: &[f32], co: usize, total: usize, channels: std::ops::Range<usize>) -> Vec<f32> {
    let c_in = channels.len();
    let mut k = vec![0.0f32; 8 * co * c_in * 8];
    for g in 0..8 {
        let [gz, gy, gx] = [g >> 2, (g >> 1) & 1, g & 1].map(|i| &GROUP_TAPS[i]);
        for o in 0..co {
            for (ci, c) in channels.clone().enumerate() {
                let src = &w[(o * total + c) * 27..][..27];
                let dst = &mut k[((g * co + o) * c_in + ci) * 8..][..8];
                for (a, ta) in gz.iter().enumerate() {
                    for (b, tb) in gy.iter().enumerate() {
                        for (d, td) in gx.iter().enumerate() {
                            let mut s = 0.0;
                            for z in 0..3 {
                                for y in 0..3 {
                                    for x in 0..3 {
                                        s += ta[z] * tb[y] * td[x] * src[z * 9 + y * 3 + x];
                                    }
                                }
                            }
                            dst[a * 4 + b * 2 + d] = s;
                        }
                    }
                }
            }
        }
    }
    k
}

/// The input channels `channels` of a Conv weight `[co, total, 3, 3, 3]`.
fn channel_slice(w: &[f32], co: usize, total: usize, channels: std::ops::Range<usize>) -> Vec<f32> {
    (0..co)
        .flat_map(|o| {
            w[(o * total + channels.start) * 27..(o * total + channels.end) * 27]
                .iter()
                .copied()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::graph::build::{attr_str, model};
    use crate::backend::graph::tensor::Constant;
    use crate::backend::tract::graph_view::test_support::node_mut;
    use tract_onnx::prelude::*;

    fn weights(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    /// input [1, 2, D, D, D] → MaxPool → Conv(2→3) → Relu → Resize ×2 →
    /// Concat with the input → Conv(5→4, pad) → output.
    fn decoder(pad: i64, up_first: bool, scale: f32) -> ModelProto {
        let nodes = vec![
            node_to(
                "MaxPool",
                "pool",
                &["image"],
                "pooled",
                vec![attr_ints("kernel_shape", &[2; 3]), attr_ints("strides", &[2; 3])],
            ),
            node_to(
                "Conv",
                "low",
                &["pooled", "low.w", "low.b"],
                "low",
                vec![attr_ints("kernel_shape", &[3; 3]), attr_ints("pads", &[1; 6])],
            ),
            node_to("Relu", "low.relu", &["low"], "low.relu", vec![]),
            node_to(
                "Resize",
                "up",
                &["low.relu", "", "scales"],
                "up",
                vec![
                    attr_str("mode", "nearest"),
                    attr_str("coordinate_transformation_mode", "asymmetric"),
                    attr_str("nearest_mode", "floor"),
                ],
            ),
            node_to(
                "Concat",
                "cat",
                &if up_first { ["up", "image"] } else { ["image", "up"] },
                "cat",
                vec![attr_int("axis", 1)],
            ),
            node_to(
                "Conv",
                "dec",
                &["cat", "dec.w", "dec.b"],
                "scores",
                vec![attr_ints("kernel_shape", &[3; 3]), attr_ints("pads", &[pad; 6])],
            ),
        ];
        let scales = f32_tensor("scales", &[5], &[1.0, 1.0, scale, scale, scale]);
        let inits = vec![
            f32_tensor("low.w", &[3, 2, 3, 3, 3], &weights(3 * 2 * 27, 1)),
            f32_tensor("low.b", &[3], &[0.1, -0.2, 0.3]),
            f32_tensor("dec.w", &[4, 5, 3, 3, 3], &weights(4 * 5 * 27, 7)),
            f32_tensor("dec.b", &[4], &[0.5, -0.5, 0.25, 0.0]),
            scales,
            i64_tensor("unused", &[1]),
        ];
        model(nodes, inits, "image", 2, "scores")
    }

    fn run(m: &ModelProto, [z, y, x]: [usize; 3]) -> Vec<f32> {
        let input: Vec<f32> = weights(2 * z * y * x, 3);
        let plan = tract_onnx::onnx()
            .model_for_proto_model(m)
            .and_then(|m| m.with_input_fact(0, f32::fact([1, 2, z, y, x]).into()))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .unwrap();
        let x = tract_ndarray::Array5::from_shape_vec((1, 2, z, y, x), input).unwrap();
        let out = plan.run(tvec!(Tensor::from(x).into())).unwrap();
        out[0].to_plain_array_view::<f32>().unwrap().iter().copied().collect()
    }

    /// Sizes for every value the test graphs' Resize could read.
    fn all_sizes() -> HashMap<String, [usize; 3]> {
        HashMap::from([("low.relu".to_string(), [4, 4, 4])])
    }

    fn ops(m: &ModelProto) -> Vec<String> {
        m.graph
            .as_ref()
            .unwrap()
            .node
            .iter()
            .map(|n| n.op_type.clone())
            .collect()
    }

    #[test]
    fn rewritten_decoders_compute_the_same_scores() {
        for (pad, up_first, shape) in [
            (1, true, [8, 8, 8]),
            (0, true, [8, 10, 12]),
            (1, false, [12, 8, 10]),
            (0, false, [8, 8, 8]),
        ] {
            let m = decoder(pad, up_first, 2.0);
            let (r, count) = rewrite(&m, &low_res_sizes(&m, shape));
            assert_eq!(count, 1);
            let o = ops(&r);
            assert!(
                !o.contains(&"Resize".to_string()) && o.contains(&"Transpose".to_string()),
                "{o:?}"
            );
            // No Concat of images is left (the remaining ones join shapes).
            let image_concats = r
                .graph
                .as_ref()
                .unwrap()
                .node
                .iter()
                .filter(|n| n.op_type == "Concat" && n.attribute.iter().any(|a| a.name == "axis" && a.i == 1));
            assert_eq!(image_concats.count(), 0, "{o:?}");
            let (a, b) = (run(&m, shape), run(&r, shape));
            assert_eq!(a.len(), b.len());
            let shrink = 2 - 2 * pad as usize;
            assert_eq!(a.len(), 4 * shape.iter().map(|n| n - shrink).product::<usize>());
            let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
            assert!(
                worst < 1e-5,
                "pad {pad}, up first {up_first}: largest difference {worst}"
            );
            // The replaced weights and scales are gone; the rest stays.
            let names: Vec<&str> = r
                .graph
                .as_ref()
                .unwrap()
                .initializer
                .iter()
                .map(|t| t.name.as_str())
                .collect();
            assert!(!names.contains(&"dec.w") && !names.contains(&"scales"), "{names:?}");
            assert!(names.contains(&"low.w") && names.contains(&"dec.b"), "{names:?}");
        }
    }

    #[test]
    fn half_precision_weights_behind_a_cast_are_read() {
        let mut m = decoder(1, true, 2.0);
        let g = m.graph.as_mut().unwrap();
        let w = g.initializer.iter_mut().find(|t| t.name == "dec.w").unwrap();
        let values = Constant::from_proto(w).unwrap();
        let Values::F32(v) = values.values else { unreachable!() };
        w.data_type = tract_onnx::pb::tensor_proto::DataType::Float16 as i32;
        w.raw_data = v
            .iter()
            .flat_map(|x| f16::from_f32(*x).to_bits().to_le_bytes())
            .collect();
        w.name = "dec.w16".into();
        g.node.insert(
            0,
            node_to("Cast", "dec.w.cast", &["dec.w16"], "dec.w", vec![attr_int("to", 1)]),
        );
        let (r, count) = rewrite(&m, &low_res_sizes(&m, [8, 8, 8]));
        assert_eq!(count, 1);
        let (a, b) = (run(&m, [8, 8, 8]), run(&r, [8, 8, 8]));
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        assert!(worst < 1e-5, "largest difference {worst}");
    }

    #[test]
    fn other_forms_are_left_alone() {
        // Another scale.
        assert_eq!(rewrite(&decoder(1, true, 3.0), &all_sizes()).1, 0);
        // The upsampled tensor read twice.
        let mut twice = decoder(1, true, 2.0);
        let g = twice.graph.as_mut().unwrap();
        g.output.push(g.output[0].clone());
        g.output[1].name = "up".into();
        assert_eq!(rewrite(&twice, &all_sizes()).1, 0);
        // A strided or 2-padded convolution.
        for (name, v) in [("strides", [2i64; 3].to_vec()), ("pads", [2i64; 6].to_vec())] {
            let mut m = decoder(1, true, 2.0);
            let conv = node_mut(&mut m, "dec");
            conv.attribute.retain(|a| a.name != name);
            conv.attribute.push(attr_ints(name, &v));
            assert_eq!(rewrite(&m, &all_sizes()).1, 0, "{name}");
        }
        // A bilinear Resize.
        let mut m = decoder(1, true, 2.0);
        let up = node_mut(&mut m, "up");
        up.attribute.retain(|a| a.name != "mode");
        up.attribute.push(attr_str("mode", "linear"));
        assert_eq!(rewrite(&m, &all_sizes()).1, 0);
        // Without the size of the upsampled input.
        assert_eq!(rewrite(&decoder(1, true, 2.0), &HashMap::new()).1, 0);
    }

    #[test]
    fn the_parity_kernels_sum_the_taps_per_axis() {
        // One channel, one output, w = 1..27 at [z][y][x].
        let w: Vec<f32> = (1..=27).map(|v| v as f32).collect();
        let k = parity_kernel(&w, 1, 1, 0..1);
        assert_eq!(k.len(), 64);
        let w = |z: usize, y: usize, x: usize| (z * 9 + y * 3 + x + 1) as f32;
        // Group (0, 0, 0), tap (1, 1, 1): w2 on every axis.
        assert_eq!(k[7], w(2, 2, 2));
        // Group (1, 1, 1), tap (0, 0, 0): w0 on every axis.
        assert_eq!(k[7 * 8], w(0, 0, 0));
        // Group (0, 1, 0), tap (0, 1, 0): z in {0, 1}, y in {1, 2}, x in {0, 1}.
        let s: f32 = [0, 1]
            .iter()
            .flat_map(|&z| {
                [1, 2]
                    .into_iter()
                    .flat_map(move |y| [0, 1].into_iter().map(move |x| w(z, y, x)))
            })
            .sum();
        assert_eq!(k[2 * 8 + 2], s);
        // Each group's taps together cover every original tap once.
        let total: f32 = (1..=27).map(|v| v as f32).sum();
        for g in 0..8 {
            assert_eq!(k[g * 8..g * 8 + 8].iter().sum::<f32>(), total, "group {g}");
        }
    }
}
