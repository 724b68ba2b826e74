//! The DICOM series reader on one file: header parsing (single-frame and
//! enhanced multi-frame), grouping, slice layout and pixel decoding (every
//! codec built), under a 1 MiB volume limit so one input stays cheap.
#![no_main]

use edge_seg_runtime::dicom::layout::layout;
use edge_seg_runtime::dicom::{find_series, read_series};
use edge_seg_runtime::volume::ReadOptions;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The reader takes files: the input goes to one per process.
    let path = std::env::temp_dir().join(format!("edge-seg-fuzz-{}.dcm", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(all) = find_series(std::slice::from_ref(&path)) {
        for s in &all {
            if let Ok(l) = layout(s) {
                let _ = read_series(s, &l, ReadOptions { max_bytes: 1 << 20 });
            }
        }
    }
});
