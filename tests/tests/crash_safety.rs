//! Training survives being killed and running out of disk: checkpoints are
//! never partial, and `--resume` continues from the last one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use edge_seg_export::Checkpoint;
use edge_seg_tests::{bin, text, tiny_base_training};
use serde_json::Value;

const ITERATIONS: u64 = 60;

fn phantoms(dir: &Path) -> PathBuf {
    let mut o = edge_seg_tests::phantoms::small(dir, 3, 12, 6.0);
    o.sparse = true;
    edge_seg_tests::phantoms::write(&o)
}

fn train(manifest: &Path, out: &Path, resume: bool) -> Command {
    let mut c = tiny_base_training(manifest, out, 2, 4, 8.0);
    c.args(["--patch", "24", "--batch", "1", "--val-every", "3", "--quiet"])
        .args(["--iterations", &ITERATIONS.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if resume {
        c.arg("--resume");
    }
    c
}

/// A checkpoint folder is complete: its state, card, weights (loadable)
/// and optimiser state are all there.
fn assert_complete(dir: &Path) -> u64 {
    let state: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("train_state.json")).unwrap()).unwrap();
    Checkpoint::read(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    if dir.ends_with("last") {
        assert!(dir.join("optimizer.safetensors").metadata().unwrap().len() > 0);
    }
    state["iteration"].as_u64().unwrap()
}

fn iterations_logged(out: &Path) -> Vec<u64> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("loss").is_some())
        .map(|v| v["iteration"].as_u64().unwrap())
        .collect()
}

#[test]
fn killed_runs_resume_from_their_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = phantoms(dir.path());
    let out = dir.path().join("run");
    // Kill at pseudo-random moments (fixed seed for reproducibility).
    let mut state = 0x9e37_79b9u64;
    let mut trials = 0;
    let mut resume = false;
    loop {
        let mut child = train(&manifest, &out, resume).spawn().unwrap();
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // Kills come later as trials add up, so a loaded machine, where a
        // run needs longer to reach its next checkpoint, still finishes.
        let wait = Duration::from_millis((400 + (state >> 33) % 1200) * (1 + trials / 8));
        let started = Instant::now();
        let mut finished = None;
        while started.elapsed() < wait {
            if let Some(status) = child.try_wait().unwrap() {
                finished = Some(status);
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(status) = finished {
            assert!(
                status.success(),
                "training failed: {}",
                text(&child.wait_with_output().unwrap())
            );
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        trials += 1;
        // Whatever is in place is complete.
        for name in ["last", "best"] {
            if out.join(name).exists() {
                assert_complete(&out.join(name));
            }
        }
        resume = out.join("last").exists();
        if !resume {
            // Killed before the first checkpoint: start over.
            let _ = std::fs::remove_dir_all(&out);
        }
        assert!(trials < 30, "training never finished");
    }
    assert!(trials >= 2, "only {trials} kills happened");
    assert_eq!(assert_complete(&out.join("last")), ITERATIONS);
    // Every iteration is logged exactly once, in order.
    assert_eq!(iterations_logged(&out), (1..=ITERATIONS).collect::<Vec<_>>());
    let leftovers: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    eprintln!("{trials} kill-and-resume trials passed");
}

#[test]
fn a_full_disk_keeps_the_previous_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = phantoms(dir.path());
    let out = dir.path().join("run");
    // A first run stops after 3 iterations with a checkpoint.
    let o = train(&manifest, &out, false)
        .args(["--stop-after", "3"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let before = std::fs::read(out.join("last/model.safetensors")).unwrap();
    assert_eq!(assert_complete(&out.join("last")), 3);
    // Resume with a file-size limit below the weights file: the next
    // checkpoint cannot be written.
    let limit = before.len() / 2;
    let mut c = Command::new("prlimit");
    c.arg(format!("--fsize={limit}")).arg("--").arg(bin("edge-seg-train"));
    c.args(train(&manifest, &out, true).get_args());
    let o = c.output().unwrap();
    assert!(!o.status.success(), "the write should have failed");
    let t = text(&o);
    assert!(t.contains("large") || t.contains("space") || t.contains("quota"), "{t}");
    assert!(!t.contains("panicked"), "{t}");
    assert_eq!(assert_complete(&out.join("last")), 3);
    assert_eq!(std::fs::read(out.join("last/model.safetensors")).unwrap(), before);
    // Without the limit the run resumes from that checkpoint and finishes.
    let o = train(&manifest, &out, true).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(assert_complete(&out.join("last")), ITERATIONS);
}
