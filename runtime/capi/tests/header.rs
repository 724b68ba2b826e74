//! `include/edge_seg.h` is what cbindgen generates from this crate. Set
//! EDGE_SEG_UPDATE_HEADER=1 to rewrite it after changing the API.

use std::path::PathBuf;

#[test]
fn committed_header_is_current() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).unwrap();
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .unwrap();
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let header = crate_dir.join("../../include/edge_seg.h");
    if std::env::var("EDGE_SEG_UPDATE_HEADER").is_ok() {
        std::fs::write(&header, &generated).unwrap();
    }
    let committed = std::fs::read(&header).unwrap_or_default();
    assert!(
        committed == generated,
        "include/edge_seg.h is out of date: run EDGE_SEG_UPDATE_HEADER=1 cargo test --release -p edge-seg-capi --test header"
    );
}
