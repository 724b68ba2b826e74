//! The dataset-manifest parser and validation.
#![no_main]

use edge_seg_models::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(m) = Manifest::from_json(text) {
            for c in &m.cases {
                let _ = m.annotated_indices(c);
                let _ = m.is_complete(c);
                let _ = m.source_lookup(&c.source);
            }
        }
    }
});
