//! The bad-input corpus: malformed scans, label maps, manifests, model cards
//! and ONNX models, generated here (deterministically) and kept under
//! `tests/corpus/bad/`.

use edge_seg_export::{onnx_bytes, Checkpoint, WeightFormat};
use edge_seg_models::labels::BASE_LABELS;
use edge_seg_models::spec::{ChannelPlan, Padding, Upsampling};
use edge_seg_models::{ModelCard, CARD_METADATA_KEY};
use prost::Message;
use tract_onnx::prelude::Framework;

use crate::raw_nifti::{gzip, RawNifti};

/// What a corpus file is, and so which commands read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Scan,
    /// A readable scan whose geometry cannot be resampled: `info`
    /// describes it with a warning, segmentation refuses it.
    Geometry,
    Manifest,
    Card,
    Onnx,
    /// A file the bad files refer to (valid on its own).
    Support,
}

/// One file of the corpus.
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: String,
    pub kind: Kind,
    pub bytes: Vec<u8>,
    /// Text the error message must contain ("" for any).
    pub expect: &'static str,
}

fn entry(name: &str, kind: Kind, bytes: Vec<u8>, expect: &'static str) -> Entry {
    Entry {
        name: name.to_string(),
        kind,
        bytes,
        expect,
    }
}

/// A small random-weight model for the base vocabulary, at 4 mm.
pub fn tiny_model_card() -> ModelCard {
    let spec = crate::models::tiny_spec(
        3,
        2,
        ChannelPlan::Doubling,
        Padding::Valid,
        Upsampling::Nearest,
        BASE_LABELS.len(),
    );
    let mut card = crate::models::tiny_card(spec, &BASE_LABELS, 4.0, 1);
    card.task = "corpus".into();
    card
}

/// The valid model the corpus's bad models are made from.
pub fn tiny_model_bytes() -> Vec<u8> {
    onnx_bytes(&Checkpoint::random(tiny_model_card(), 11), WeightFormat::F32).0
}

/// Offsets where NIfTI-1 header fields end (truncation points).
const FIELD_ENDS: [usize; 44] = [
    4, 14, 32, 36, 38, 39, 40, 56, 60, 64, 68, 70, 72, 74, 76, 108, 112, 116, 120, 122, 123, 124, 128, 132, 136, 140,
    144, 148, 228, 252, 254, 256, 260, 264, 268, 272, 276, 280, 296, 312, 328, 344, 348, 350,
];

/// The valid scan bad files start from: 8x8x8 float32.
pub fn good_scan() -> RawNifti {
    let values: Vec<f32> = (0..512).map(|v| (v % 97) as f32 * 10.0 - 400.0).collect();
    RawNifti::float32([8, 8, 8], &values)
}

fn scans() -> Vec<Entry> {
    let good = good_scan();
    let bytes = good.bytes();
    let with = |f: &dyn Fn(&mut RawNifti)| {
        let mut r = good.clone();
        f(&mut r);
        r.bytes()
    };
    let mut v = Vec::new();
    for &end in &FIELD_ENDS {
        let cut = bytes[..end].to_vec();
        let expect = if end < 4 {
            ""
        } else if end < 348 {
            "truncated header"
        } else {
            "data shorter"
        };
        v.push(entry(&format!("scan-cut-{end:03}.nii"), Kind::Scan, cut, expect));
    }
    v.push(entry(
        "scan-cut-gz-100.nii.gz",
        Kind::Scan,
        gzip(&bytes[..100]),
        "truncated header",
    ));
    let gz = gzip(&bytes);
    v.push(entry(
        "scan-gzip-cut.nii.gz",
        Kind::Scan,
        gz[..gz.len() / 2].to_vec(),
        "",
    ));
    let mut corrupt = gz.clone();
    let mid = corrupt.len() / 2;
    for b in &mut corrupt[mid..mid + 8] {
        *b ^= 0x5a;
    }
    v.push(entry("scan-gzip-corrupt.nii.gz", Kind::Scan, corrupt, "gzip"));
    v.push(entry("scan-empty.nii", Kind::Scan, vec![], "empty"));
    v.push(entry(
        "scan-text.nii",
        Kind::Scan,
        b"just text, not a scan ".repeat(30),
        "not a NIfTI",
    ));
    v.push(entry(
        "scan-wrong-magic.nii",
        Kind::Scan,
        with(&|r| r.magic = *b"abcd"),
        "magic",
    ));
    v.push(entry(
        "scan-pair-magic.nii",
        Kind::Scan,
        with(&|r| r.magic = *b"ni1\0"),
        ".hdr/.img",
    ));
    v.push(entry(
        "scan-nifti2.nii",
        Kind::Scan,
        {
            let mut b = vec![0u8; 600];
            b[..4].copy_from_slice(&540i32.to_le_bytes());
            b
        },
        "NIfTI-2",
    ));
    v.push(entry(
        "scan-offset-beyond.nii",
        Kind::Scan,
        {
            let mut b = bytes.clone();
            b[108..112].copy_from_slice(&1.0e7f32.to_le_bytes());
            b
        },
        "data shorter",
    ));
    v.push(entry(
        "scan-offset-inside.nii",
        Kind::Scan,
        with(&|r| r.vox_offset = 100.0),
        "vox_offset",
    ));
    v.push(entry(
        "scan-offset-nan.nii",
        Kind::Scan,
        with(&|r| r.vox_offset = f32::NAN),
        "vox_offset",
    ));
    v.push(entry(
        "scan-dim-zero.nii",
        Kind::Scan,
        with(&|r| r.dim[2] = 0),
        "dim[2]",
    ));
    v.push(entry(
        "scan-dim-negative.nii",
        Kind::Scan,
        with(&|r| r.dim[3] = -8),
        "dim[3]",
    ));
    v.push(entry(
        "scan-dim0-zero.nii",
        Kind::Scan,
        with(&|r| r.dim[0] = 0),
        "dim[0]",
    ));
    v.push(entry(
        "scan-dim0-eight.nii",
        Kind::Scan,
        with(&|r| r.dim[0] = 8),
        "dim[0]",
    ));
    v.push(entry(
        "scan-dims-overflow.nii",
        Kind::Scan,
        with(&|r| r.dim = [7, 32767, 32767, 32767, 32767, 32767, 32767, 32767]),
        "memory",
    ));
    v.push(entry(
        "scan-terabytes.nii",
        Kind::Scan,
        with(&|r| {
            r.dim = [3, 30000, 30000, 30000, 1, 1, 1, 1];
        }),
        "memory",
    ));
    v.push(entry(
        "scan-complex.nii",
        Kind::Scan,
        with(&|r| {
            r.datatype = 32;
            r.bitpix = 64;
        }),
        "unsupported datatype",
    ));
    v.push(entry(
        "scan-rgb.nii",
        Kind::Scan,
        with(&|r| {
            r.datatype = 128;
            r.bitpix = 24;
        }),
        "unsupported datatype",
    ));
    v.push(entry(
        "scan-unknown-type.nii",
        Kind::Scan,
        with(&|r| r.datatype = 999),
        "unsupported datatype",
    ));
    v.push(entry("scan-bitpix.nii", Kind::Scan, with(&|r| r.bitpix = 8), "bitpix"));
    v.push(entry(
        "scan-2d.nii",
        Kind::Scan,
        with(&|r| r.dim = [2, 8, 8, 1, 1, 1, 1, 1]),
        "2D",
    ));
    v.push(entry(
        "scan-one-slice.nii",
        Kind::Scan,
        with(&|r| r.dim = [3, 8, 8, 1, 1, 1, 1, 1]),
        "degenerate",
    ));
    // Geometry that cannot be resampled (info describes these; infer refuses).
    v.push(entry(
        "scan-zero-spacing.nii",
        Kind::Geometry,
        with(&|r| r.srow[1] = [0.0, 0.0, 0.0, 0.0]),
        "spacing",
    ));
    v.push(entry(
        "scan-nan-pixdim.nii",
        Kind::Geometry,
        with(&|r| {
            r.sform_code = 0;
            r.qform_code = 0;
            r.pixdim[1] = f32::NAN;
        }),
        "spacing",
    ));
    v.push(entry(
        "scan-zero-pixdim.nii",
        Kind::Geometry,
        with(&|r| {
            r.sform_code = 0;
            r.qform_code = 0;
            r.pixdim[2] = 0.0;
        }),
        "spacing",
    ));
    // Bit flips in fields that must be right.
    for (name, offset, bit) in [
        ("scan-flip-sizeof.nii", 1usize, 3u8),
        ("scan-flip-magic.nii", 345, 1),
        ("scan-flip-datatype.nii", 71, 2),
        ("scan-flip-bitpix.nii", 72, 4),
        ("scan-flip-dim0.nii", 41, 6),
    ] {
        let mut b = bytes.clone();
        b[offset] ^= 1 << bit;
        v.push(entry(name, Kind::Scan, b, ""));
    }
    v
}

fn manifests() -> Vec<Entry> {
    let ok_case = r#"{"id": "c1", "image": "support-image.nii.gz", "label": "LABEL", "annotated": ["liver"], "modality": "CT", "source": "s", "split": "train"}"#;
    let manifest = |label: &str| -> Vec<u8> {
        format!(
            r#"{{"format_version": 1, "vocabulary": ["background", "liver"], "sources": {{"s": {{"labels": {{"1": "liver"}}}}}}, "cases": [{}]}}"#,
            ok_case.replace("LABEL", label)
        )
        .into_bytes()
    };
    vec![
        entry(
            "manifest-not-json.json",
            Kind::Manifest,
            b"{ this is not json".to_vec(),
            "not valid JSON",
        ),
        entry(
            "manifest-wrong-types.json",
            Kind::Manifest,
            br#"{"format_version": "one", "vocabulary": 3, "sources": [], "cases": {}}"#.to_vec(),
            "invalid type",
        ),
        entry(
            "manifest-version.json",
            Kind::Manifest,
            br#"{"format_version": 9, "vocabulary": ["background", "a"], "sources": {}, "cases": []}"#.to_vec(),
            "format_version 9",
        ),
        entry(
            "manifest-unknown-label.json",
            Kind::Manifest,
            manifest("support-label.nii.gz").replace_str("\"annotated\": [\"liver\"]", "\"annotated\": [\"spleen\"]"),
            "not in the vocabulary",
        ),
        entry(
            "manifest-missing-file.json",
            Kind::Manifest,
            manifest("no-such-label.nii.gz"),
            "no-such-label.nii.gz",
        ),
        entry(
            "manifest-label-shape.json",
            Kind::Manifest,
            manifest("support-label-shape.nii.gz"),
            "shape",
        ),
        entry(
            "manifest-label-affine.json",
            Kind::Manifest,
            manifest("support-label-affine.nii.gz"),
            "affine",
        ),
        entry(
            "manifest-label-values.json",
            Kind::Manifest,
            manifest("support-label-values.nii.gz"),
            "not in the mapping",
        ),
    ]
}

/// Byte-string replacement (for building variants of JSON).
trait ReplaceStr {
    fn replace_str(self, from: &str, to: &str) -> Vec<u8>;
}

impl ReplaceStr for Vec<u8> {
    fn replace_str(self, from: &str, to: &str) -> Vec<u8> {
        String::from_utf8(self).unwrap().replace(from, to).into_bytes()
    }
}

fn support() -> Vec<Entry> {
    let mut image = RawNifti::float32([8, 8, 8], &[40.0; 512]);
    image.srow = [[4.0, 0.0, 0.0, 0.0], [0.0, 4.0, 0.0, 0.0], [0.0, 0.0, 4.0, 0.0]];
    let label = |f: &dyn Fn(&mut RawNifti)| {
        let mut r = RawNifti {
            datatype: 2,
            bitpix: 8,
            data: (0..512).map(|v| (v % 2) as u8).collect(),
            ..image.clone()
        };
        f(&mut r);
        gzip(&r.bytes())
    };
    vec![
        entry("support-image.nii.gz", Kind::Support, gzip(&image.bytes()), ""),
        entry("support-label.nii.gz", Kind::Support, label(&|_| {}), ""),
        entry(
            "support-label-shape.nii.gz",
            Kind::Support,
            label(&|r| {
                r.dim = [3, 8, 8, 4, 1, 1, 1, 1];
                r.data.truncate(256);
            }),
            "",
        ),
        entry(
            "support-label-affine.nii.gz",
            Kind::Support,
            label(&|r| r.srow[0][3] = 12.0),
            "",
        ),
        entry(
            "support-label-values.nii.gz",
            Kind::Support,
            label(&|r| r.data[100] = 7),
            "",
        ),
        entry(
            "support-model-nocard.onnx",
            Kind::Support,
            {
                let mut p = tract_onnx::onnx()
                    .proto_model_for_read(&mut &tiny_model_bytes()[..])
                    .unwrap();
                p.metadata_props.clear();
                p.encode_to_vec()
            },
            "",
        ),
    ]
}

fn cards() -> Vec<Entry> {
    let good = {
        let p = tract_onnx::onnx()
            .proto_model_for_read(&mut &tiny_model_bytes()[..])
            .unwrap();
        p.metadata_props
            .iter()
            .find(|m| m.key == CARD_METADATA_KEY)
            .unwrap()
            .value
            .clone()
    };
    let v: serde_json::Value = serde_json::from_str(&good).unwrap();
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut c = v.clone();
        f(&mut c);
        serde_json::to_vec_pretty(&c).unwrap()
    };
    vec![
        entry(
            "card-not-json.json",
            Kind::Card,
            b"not json at all".to_vec(),
            "not valid JSON",
        ),
        entry(
            "card-wrong-types.json",
            Kind::Card,
            with(&|c| c["labels"] = serde_json::json!("liver")),
            "invalid type",
        ),
        entry(
            "card-version.json",
            Kind::Card,
            with(&|c| c["format_version"] = serde_json::json!(42)),
            "format_version 42",
        ),
        entry(
            "card-label-count.json",
            Kind::Card,
            with(&|c| {
                c["labels"].as_array_mut().unwrap().pop();
            }),
            "labels but the network has",
        ),
        entry(
            "card-illegal-tile.json",
            Kind::Card,
            with(&|c| c["tile"]["input"] = serde_json::json!([45, 45, 45])),
            "not legal",
        ),
        entry(
            "card-hash.json",
            Kind::Card,
            with(&|c| c["weights_sha256"] = serde_json::json!("ab".repeat(32))),
            "weight hash mismatch",
        ),
        entry(
            "card-classes.json",
            Kind::Card,
            with(&|c| {
                c["labels"].as_array_mut().unwrap().pop();
                c["network"]["classes"] = serde_json::json!(BASE_LABELS.len() - 1);
            }),
            "classes",
        ),
    ]
}

fn onnx() -> Vec<Entry> {
    let good = tiny_model_bytes();
    let proto = || tract_onnx::onnx().proto_model_for_read(&mut &good[..]).unwrap();
    let mut missing = proto();
    missing
        .graph
        .as_mut()
        .unwrap()
        .initializer
        .retain(|t| t.name != "enc1.conv0.weight");
    let mut tampered = proto();
    let t = tampered
        .graph
        .as_mut()
        .unwrap()
        .initializer
        .iter_mut()
        .find(|t| t.name == "head.bias")
        .unwrap();
    t.raw_data[1] ^= 0x10;
    let mut bad_card = proto();
    bad_card.metadata_props[0].value = "{\"format_version\": 1}".into();
    let mut nocard = proto();
    nocard.metadata_props.clear();
    let mut two_inputs = proto();
    let g = two_inputs.graph.as_mut().unwrap();
    let extra = g.input[0].clone();
    g.input.push(tract_onnx::pb::ValueInfoProto {
        name: "second".into(),
        ..extra
    });
    vec![
        entry("model-empty.onnx", Kind::Onnx, vec![], "empty"),
        entry(
            "model-text.onnx",
            Kind::Onnx,
            b"this is not a protobuf".to_vec(),
            "not a valid ONNX model",
        ),
        entry(
            "model-cut.onnx",
            Kind::Onnx,
            good[..good.len() / 3].to_vec(),
            "not a valid ONNX model",
        ),
        entry(
            "model-missing-initializer.onnx",
            Kind::Onnx,
            missing.encode_to_vec(),
            "weight hash mismatch",
        ),
        entry(
            "model-tampered.onnx",
            Kind::Onnx,
            tampered.encode_to_vec(),
            "weight hash mismatch",
        ),
        entry(
            "model-bad-card.onnx",
            Kind::Onnx,
            bad_card.encode_to_vec(),
            "model card",
        ),
        entry(
            "model-no-card.onnx",
            Kind::Onnx,
            nocard.encode_to_vec(),
            "no model card",
        ),
        entry(
            "model-two-inputs.onnx",
            Kind::Onnx,
            two_inputs.encode_to_vec(),
            "inputs",
        ),
    ]
}

/// Every corpus file, in a stable order.
pub fn bad_corpus() -> Vec<Entry> {
    let mut v = scans();
    v.extend(manifests());
    v.extend(cards());
    v.extend(onnx());
    v.extend(support());
    v
}
