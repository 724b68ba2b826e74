//! Compiles the shipped default model into the binary when it is present.

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(default_model)");
    // Read when the script runs: `env!` would bake in the folder the script
    // was compiled in, and cargo reuses a compiled build script across
    // checkouts of the same package.
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let p = Path::new(&dir).join("../models/zoo/default.onnx");
    // The folder too: a model added where none was is a change of the folder.
    println!("cargo:rerun-if-changed={}", p.display());
    println!("cargo:rerun-if-changed={}", p.parent().unwrap().display());
    if let Ok(abs) = p.canonicalize() {
        println!("cargo:rustc-cfg=default_model");
        println!("cargo:rustc-env=EDGE_SEG_DEFAULT_MODEL={}", abs.display());
    }
}
