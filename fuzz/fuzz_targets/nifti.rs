//! The NIfTI reading path: header and data, plain and gzip-compressed.
#![no_main]

use std::path::Path;

use edge_seg_runtime::volume::{read_volume_bytes, ReadOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A small limit keeps absurd headers from allocating and one input
    // cheap: volumes above 1 MiB are refused before any voxel is decoded.
    let opts = ReadOptions { max_bytes: 1 << 20 };
    if let Ok(vol) = read_volume_bytes(Path::new("fuzz.nii"), data, opts) {
        let _ = vol.stats();
        let _ = vol.check_geometry(Path::new("fuzz.nii"));
        let _ = edge_seg_runtime::geometry::orientation_code(&vol.affine);
    }
});
