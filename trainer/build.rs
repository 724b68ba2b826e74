//! Compiles the shipped base checkpoint into the binary when it is present
//! (`models/zoo/default.safetensors` and `default.card.json`, the default
//! model's training weights), so `--base default` works from a copied
//! binary. With the `tch` feature, also records where LibTorch's shared libraries are as
//! an rpath of every binary and test of this crate, so they run without
//! LD_LIBRARY_PATH. The directory is found the way torch-sys finds it:
//! `$LIBTORCH/lib`, or the `torch` package of the Python on PATH (`python` in a
//! virtual environment, else `python3`) when LIBTORCH_USE_PYTORCH is set.

use std::path::{Path, PathBuf};
use std::process::Command;

fn libtorch_lib_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("LIBTORCH") {
        return Some(PathBuf::from(dir).join("lib"));
    }
    std::env::var_os("LIBTORCH_USE_PYTORCH")?;
    let code = "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))";
    // The interpreter torch-sys runs: `python` inside a virtual environment,
    // else `python3`.
    let python = if std::env::var_os("VIRTUAL_ENV").is_some() {
        "python"
    } else {
        "python3"
    };
    let out = Command::new(python).args(["-c", code]).output().ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Set cfg `default_base` and the two files' paths when both are present.
fn embed_default_base() {
    println!("cargo::rustc-check-cfg=cfg(default_base)");
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let zoo = Path::new(&dir).join("../models/zoo");
    let weights = zoo.join("default.safetensors");
    let card = zoo.join("default.card.json");
    println!("cargo:rerun-if-changed={}", zoo.display());
    println!("cargo:rerun-if-changed={}", weights.display());
    println!("cargo:rerun-if-changed={}", card.display());
    if let (Ok(w), Ok(c)) = (weights.canonicalize(), card.canonicalize()) {
        println!("cargo:rustc-cfg=default_base");
        println!("cargo:rustc-env=EDGE_SEG_DEFAULT_BASE_WEIGHTS={}", w.display());
        println!("cargo:rustc-env=EDGE_SEG_DEFAULT_BASE_CARD={}", c.display());
    }
}

fn main() {
    embed_default_base();
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_USE_PYTORCH");
    println!("cargo:rerun-if-env-changed=VIRTUAL_ENV");
    if std::env::var_os("CARGO_FEATURE_TCH").is_none() {
        return;
    }
    match libtorch_lib_dir() {
        Some(dir) => println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display()),
        None => println!(
            "cargo:warning=LibTorch's library folder not found (set LIBTORCH, or LIBTORCH_USE_PYTORCH=1 with torch importable): run with LD_LIBRARY_PATH"
        ),
    }
}
