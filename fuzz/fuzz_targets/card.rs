//! The model-card parser and validation.
#![no_main]

use edge_seg_models::ModelCard;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(card) = ModelCard::from_json(text) {
            let _ = card.network.parameter_count();
            let _ = card.network.forward_flops(card.tile.input);
        }
    }
});
