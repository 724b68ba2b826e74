//! The tract backend's graph rewrites (final Softmax cut, decoder
//! upsampling, 3×3×3 convolutions) on any ONNX graph: rewritten or left
//! alone, never a panic.
#![no_main]

use edge_seg_runtime::backend::tract::{conv3, final_softmax, rewrite_for_tile, Rewrites};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(proto) = edge_seg_runtime::model::decode_onnx(data) else {
        return;
    };
    let proto = final_softmax::without_final_softmax(&proto).unwrap_or(proto);
    for tile in [[8, 8, 8], [20, 12, 16]] {
        let _ = rewrite_for_tile(
            &proto,
            tile,
            Rewrites {
                upsample: true,
                convs: Some(conv3::Kind::Avx2),
            },
        );
    }
});
