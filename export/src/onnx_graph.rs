//! The ONNX graph of a network spec (opset 17, standard ops only): Conv,
//! Relu, MaxPool, Resize (nearest) or ConvTranspose, Slice, Concat, Softmax.
//!
//! Input `image` `[N, 1, D, H, W]`, output `scores` `[N, C, d, h, w]`
//! (softmax probabilities over channels). Decoder inputs are concatenated
//! as `[upsampled, centre-cropped skip]` along channels, the order the
//! trainer's U-Net uses.

use edge_seg_models::spec::{NetworkSpec, Padding, Upsampling};
use edge_seg_models::weights::{bias_name, weight_entries, weight_name};
use edge_seg_models::{ModelCard, CARD_METADATA_KEY};
use edge_seg_runtime::backend::graph::build::{
    attr_int, attr_ints, attr_str, dim_param, dim_value, f32_tensor, float_value_info, i64_tensor, node_to,
};
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::{GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto};

use crate::checkpoint::Checkpoint;

/// The opset we write.
pub const OPSET: i64 = 17;
/// ONNX IR version matching opset 17.
pub const IR_VERSION: i64 = 8;
/// Name of the graph input.
pub const INPUT_NAME: &str = "image";
/// Name of the graph output.
pub const OUTPUT_NAME: &str = "scores";

/// How initializers are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightFormat {
    F32,
    /// IEEE half precision, each followed by a Cast to f32.
    F16,
}

fn f16_tensor(name: &str, shape: &[usize], values: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: shape.iter().map(|&d| d as i64).collect(),
        data_type: DataType::Float16 as i32,
        raw_data: values
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect(),
        ..Default::default()
    }
}

/// Graph builder: nodes and initializers, with fresh value names.
struct Builder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    format: WeightFormat,
}

impl Builder {
    /// The value name to read weight `name` from (its Cast output for f16).
    fn weight(&mut self, name: &str) -> String {
        match self.format {
            WeightFormat::F32 => name.to_string(),
            WeightFormat::F16 => {
                let out = format!("{name}.f32");
                self.nodes.push(node_to(
                    "Cast",
                    &format!("{name}.cast"),
                    &[name],
                    &out,
                    vec![attr_int("to", DataType::Float as i64)],
                ));
                out
            }
        }
    }

    fn conv(&mut self, layer: &str, x: &str, kernel: i64, pad: i64, relu: bool) -> String {
        let w = self.weight(&weight_name(layer));
        let b = self.weight(&bias_name(layer));
        let out = format!("{layer}.out");
        self.nodes.push(node_to(
            "Conv",
            layer,
            &[x, &w, &b],
            &out,
            vec![
                attr_ints("kernel_shape", &[kernel; 3]),
                attr_ints("pads", &[pad; 6]),
                attr_ints("strides", &[1; 3]),
                attr_ints("dilations", &[1; 3]),
                attr_int("group", 1),
            ],
        ));
        if !relu {
            return out;
        }
        let r = format!("{layer}.relu");
        self.nodes.push(node_to("Relu", &r, &[&out], &r, vec![]));
        r
    }
}

/// The whole ONNX model for a checkpoint, with `card` in `metadata_props`.
/// `card.weights_sha256` must already describe the initializers as stored.
pub fn build_model(ckpt: &Checkpoint, card: &ModelCard, format: WeightFormat) -> ModelProto {
    let spec = &card.network;
    let mut b = Builder {
        nodes: Vec::new(),
        initializers: Vec::new(),
        format,
    };
    for e in weight_entries(spec) {
        let t = &ckpt.weights[&e.name];
        b.initializers.push(match format {
            WeightFormat::F32 => f32_tensor(&e.name, &t.shape, &t.values),
            WeightFormat::F16 => f16_tensor(&e.name, &t.shape, &t.values),
        });
    }
    let pad = match spec.padding {
        Padding::Valid => 0,
        Padding::Same => 1,
    };
    let mut x = INPUT_NAME.to_string();
    let mut skips = Vec::new();
    for l in 0..spec.levels {
        x = b.conv(&format!("enc{l}.conv0"), &x, 3, pad, true);
        x = b.conv(&format!("enc{l}.conv1"), &x, 3, pad, true);
        if l + 1 < spec.levels {
            skips.push(x.clone());
            let p = format!("enc{l}.pool");
            b.nodes.push(node_to(
                "MaxPool",
                &p,
                &[&x],
                &p,
                vec![attr_ints("kernel_shape", &[2; 3]), attr_ints("strides", &[2; 3])],
            ));
            x = p;
        }
    }
    let crops = skip_crops(spec);
    let mut need_scales = false;
    for l in (0..spec.levels - 1).rev() {
        let up = format!("dec{l}.up");
        match spec.upsampling {
            Upsampling::Nearest => {
                need_scales = true;
                b.nodes.push(node_to(
                    "Resize",
                    &up,
                    &[&x, "", "up.scales"],
                    &up,
                    vec![
                        attr_str("mode", "nearest"),
                        attr_str("coordinate_transformation_mode", "asymmetric"),
                        attr_str("nearest_mode", "floor"),
                    ],
                ));
            }
            Upsampling::Transposed => {
                let w = b.weight(&weight_name(&up));
                let bias = b.weight(&bias_name(&up));
                b.nodes.push(node_to(
                    "ConvTranspose",
                    &up,
                    &[&x, &w, &bias],
                    &up,
                    vec![attr_ints("kernel_shape", &[2; 3]), attr_ints("strides", &[2; 3])],
                ));
            }
        }
        let mut skip = skips[l].clone();
        let c = crops[l] as i64;
        if c > 0 {
            let name = format!("dec{l}.crop");
            let starts = format!("{name}.starts");
            let ends = format!("{name}.ends");
            b.initializers.push(i64_tensor(&starts, &[c; 3]));
            b.initializers.push(i64_tensor(&ends, &[-c; 3]));
            if !b.initializers.iter().any(|t| t.name == "crop.axes") {
                b.initializers.push(i64_tensor("crop.axes", &[2, 3, 4]));
            }
            b.nodes.push(node_to(
                "Slice",
                &name,
                &[&skip, &starts, &ends, "crop.axes"],
                &name,
                vec![],
            ));
            skip = name;
        }
        let cat = format!("dec{l}.concat");
        b.nodes
            .push(node_to("Concat", &cat, &[&up, &skip], &cat, vec![attr_int("axis", 1)]));
        x = b.conv(&format!("dec{l}.conv0"), &cat, 3, pad, true);
        x = b.conv(&format!("dec{l}.conv1"), &x, 3, pad, true);
    }
    if need_scales {
        b.initializers.push(TensorProto {
            name: "up.scales".into(),
            dims: vec![5],
            data_type: DataType::Float as i32,
            raw_data: [1.0f32, 1.0, 2.0, 2.0, 2.0]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
            ..Default::default()
        });
    }
    let logits = b.conv("head", &x, 1, 0, false);
    b.nodes.push(node_to(
        "Softmax",
        "softmax",
        &[&logits],
        OUTPUT_NAME,
        vec![attr_int("axis", 1)],
    ));

    let graph = GraphProto {
        name: card.task.clone(),
        node: b.nodes,
        initializer: b.initializers,
        input: vec![float_value_info(
            INPUT_NAME,
            vec![
                dim_param("N"),
                dim_value(1),
                dim_param("D"),
                dim_param("H"),
                dim_param("W"),
            ],
        )],
        output: vec![float_value_info(
            OUTPUT_NAME,
            vec![
                dim_param("N"),
                dim_value(spec.classes as i64),
                dim_param("d"),
                dim_param("h"),
                dim_param("w"),
            ],
        )],
        doc_string: format!("edge-seg 3D U-Net for task {:?}", card.task),
        ..Default::default()
    };
    ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "edge-seg".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        model_version: 1,
        doc_string: format!("{} segmentation, labels: {}", card.modality, card.labels.join(", ")),
        graph: Some(graph),
        metadata_props: vec![StringStringEntryProto {
            key: CARD_METADATA_KEY.into(),
            value: card.to_json_pretty(),
        }],
        ..Default::default()
    }
}

/// Voxels cropped from each side of the skip of decoder level `l` (same for
/// every legal input size of a valid network; 0 for same padding).
pub fn skip_crops(spec: &NetworkSpec) -> Vec<usize> {
    let s = spec.smallest_input();
    let t = spec.trace_axis(s).expect("smallest legal input traces");
    // t.up is deepest first; t.skips is shallowest first.
    (0..spec.levels - 1)
        .map(|l| {
            let up = t.up[spec.levels - 2 - l];
            (t.skips[l] - up) / 2
        })
        .collect()
}

/// Bytes of the initializers of the weight scheme as stored, in scheme order
/// (what `weights_sha256` hashes).
pub fn stored_weight_bytes(ckpt: &Checkpoint, spec: &NetworkSpec, format: WeightFormat) -> Vec<Vec<u8>> {
    weight_entries(spec)
        .iter()
        .map(|e| {
            let t = &ckpt.weights[&e.name];
            match format {
                WeightFormat::F32 => t.le_bytes(),
                WeightFormat::F16 => t
                    .values
                    .iter()
                    .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_crops() {
        let spec = NetworkSpec::paper(2);
        let crops = skip_crops(&spec);
        // level 0: skip 128 vs up 48 → 40; level 1: 60 vs 28 → 16; level 2: 26 vs 18 → 4.
        let t = spec.trace_axis(132).unwrap();
        assert_eq!(t.skips, vec![128, 60, 26]);
        assert_eq!(t.up, vec![18, 28, 48]);
        assert_eq!(crops, vec![40, 16, 4]);
        let same = NetworkSpec {
            padding: Padding::Same,
            ..spec
        };
        assert_eq!(skip_crops(&same), vec![0, 0, 0]);
    }
}
