//! The ONNX model loader: protobuf parsing, card and graph checks, weight hash.
#![no_main]

use edge_seg_runtime::model::{Model, ModelSource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Model::from_bytes(data, ModelSource::Builtin("fuzz"), None);
});
