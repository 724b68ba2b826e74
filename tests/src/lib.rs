//! Helpers for edge-seg's end-to-end tests: locating the built binaries,
//! running Python peers, and writing NIfTI files byte by byte (including
//! malformed ones).

pub mod corpus;
pub mod models;
pub mod phantoms;
pub mod raw_nifti;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Path of a binary built by `cargo build --release --workspace --bins`
/// (the same profile directory as the running test).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("profile directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --release --workspace --bins` (scripts/test does)",
        path.display()
    );
    path
}

/// Run a binary with arguments and return its output.
pub fn run(name: &str, args: &[&str]) -> Output {
    Command::new(bin(name)).args(args).output().expect("spawn binary")
}

/// `edge-seg-train base` on `manifest` into `out` with a same-padded,
/// doubling-plan network of `levels` levels and `filters` base filters at
/// `spacing` mm; the caller adds the training options.
pub fn tiny_base_training(manifest: &Path, out: &Path, levels: usize, filters: usize, spacing: f64) -> Command {
    let mut c = Command::new(bin("edge-seg-train"));
    c.arg("base")
        .arg("--manifest")
        .arg(manifest)
        .arg("--out")
        .arg(out)
        .args(["--padding", "same", "--plan", "doubling"])
        .args(["--levels", &levels.to_string(), "--filters", &filters.to_string()])
        .args(["--spacing", &spacing.to_string()]);
    c
}

/// Standard output and error of a finished command, as one string.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// True under CI (`CI=true`), where a missing Python peer is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true" || v == "1").unwrap_or(false)
}

/// A Python interpreter that can import every module in `modules`: the one
/// named by `EDGE_SEG_PYTHON`, else `~/.cache/edge-seg/venv/bin/python`.
/// Returns `None` (and says so) when there is none; under CI this panics, so
/// a test that needs a peer fails rather than skips.
pub fn python_with(modules: &[&str]) -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = std::env::var_os("EDGE_SEG_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain(std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/edge-seg/venv/bin/python")))
        .collect();
    let import = format!("import {}", modules.join(", "));
    for py in &candidates {
        let ok = Command::new(py)
            .args(["-c", &import])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return Some(py.clone());
        }
    }
    let msg = format!(
        "Python peer missing: no interpreter among {candidates:?} can `{import}` (run .ci/run, or set EDGE_SEG_PYTHON)"
    );
    if in_ci() {
        panic!("{msg}");
    }
    eprintln!("skipping: {msg}");
    None
}

/// The tests crate's directory (for its Python scripts and fixtures).
pub fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run a Python script from `tests/python/` and panic with its output if it fails.
pub fn run_python(py: &Path, script: &str, args: &[&str]) -> String {
    let path = tests_dir().join("python").join(script);
    let out = Command::new(py).arg(&path).args(args).output().expect("spawn python");
    let t = text(&out);
    assert!(out.status.success(), "python {script} {args:?} failed:\n{t}");
    t
}

/// Leftover temporary files in `dir`.
pub fn temp_files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().contains(edge_seg_models::atomic::TEMP_MARKER))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Assert a command failed cleanly: non-zero exit, the message names `file`,
/// and no panic text.
pub fn assert_clean_failure(out: &Output, file: &str) {
    let t = text(out);
    assert!(!out.status.success(), "expected failure, got success:\n{t}");
    assert!(t.contains(file), "message does not name {file}:\n{t}");
    assert!(!t.contains("panicked"), "panic text in output:\n{t}");
    assert!(!t.contains("RUST_BACKTRACE"), "panic text in output:\n{t}");
    assert_ne!(out.status.code(), Some(101), "exit code 101 is a panic:\n{t}");
}
