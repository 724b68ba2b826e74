//! Training end to end on tiny phantoms: the loss falls and the validation
//! Dice rises above chance; a run stopped and resumed ends exactly where an
//! uninterrupted run ends.

use std::path::{Path, PathBuf};
use std::process::Command;

use edge_seg_models::labels::Task;
use edge_seg_tests::{bin, text, tiny_base_training};
use serde_json::Value;

fn tiny_phantoms(dir: &Path, cases: usize, val: usize, sparse: bool, task: Option<Task>) -> PathBuf {
    let mut o = edge_seg_tests::phantoms::small(dir, cases, 3, 5.0);
    o.task = task;
    o.inplane_mm = (5.0, 6.0);
    o.slice_mm = (5.0, 6.0);
    o.val = val;
    o.sparse = sparse;
    edge_seg_tests::phantoms::write(&o)
}

fn train_cmd(manifest: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = tiny_base_training(manifest, out, 3, 8, 6.0);
    c.args([
        "--patch", "32", "--batch", "2", "--warmup", "5", "--lr", "3e-3", "--quiet",
    ])
    .args(extra);
    c
}

fn metrics(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Dice of class `c` and the Dice a random labelling with the same class
/// frequencies would score (2·f·g / (f + g)).
fn dice_and_chance(pred: &[u16], truth: &[u16], c: u16) -> (f64, f64) {
    let (mut inter, mut p, mut t) = (0f64, 0f64, 0f64);
    for (&a, &b) in pred.iter().zip(truth) {
        p += (a == c) as u8 as f64;
        t += (b == c) as u8 as f64;
        inter += (a == c && b == c) as u8 as f64;
    }
    let n = pred.len() as f64;
    let (f, g) = (p / n, t / n);
    let dice = if p + t > 0.0 { 2.0 * inter / (p + t) } else { 0.0 };
    let chance = if f + g > 0.0 { 2.0 * f * g / (f + g) } else { 0.0 };
    (dice, chance)
}

#[test]
fn tiny_training_learns() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = tiny_phantoms(dir.path(), 6, 1, false, Some(Task::Vertebrae));
    let out = dir.path().join("run");
    let o = train_cmd(
        &manifest,
        &out,
        &["--iterations", "200", "--val-every", "200", "--augment", "none"],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let m = metrics(&out);
    let losses: Vec<f64> = m.iter().filter_map(|v| v["loss"].as_f64()).collect();
    assert_eq!(losses.len(), 200);
    let first = losses[..20].iter().sum::<f64>() / 20.0;
    let last = losses[180..].iter().sum::<f64>() / 20.0;
    assert!(last < 0.8 * first, "loss did not fall: {first:.3} → {last:.3}");
    assert!(out.join("learning_curve.png").exists());
    assert!(out.join("last/optimizer.safetensors").exists());
    // Predict the validation case with the best checkpoint and compare with
    // its labels: the vertebrae are found well above chance. (A one-structure
    // task: a tiny net learns it in a couple of hundred iterations, where the
    // thirteen base structures need thousands.)
    let ds = edge_seg_trainer::data::Dataset::load(&manifest).unwrap();
    let val = ds
        .manifest
        .cases
        .iter()
        .find(|c| c.split == edge_seg_models::manifest::Split::Val)
        .unwrap();
    let scan = ds.resolve(&val.image);
    let pred_path = dir.path().join("pred.nii.gz");
    let o = Command::new(bin("edge-seg-train"))
        .args([
            "predict",
            "--checkpoint",
            out.join("best").to_str().unwrap(),
            scan.to_str().unwrap(),
            "-o",
            pred_path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let pred: Vec<u16> = edge_seg_runtime::volume::read_volume(&pred_path)
        .unwrap()
        .data
        .iter()
        .map(|&v| v as u16)
        .collect();
    let (_, truth) = ds.read_case(val).unwrap();
    let truth: Vec<u16> = truth.unwrap().iter().copied().collect();
    let vertebrae = 1;
    let (dice, chance) = dice_and_chance(&pred, &truth, vertebrae);
    assert!(
        dice > 0.3 && dice > 5.0 * chance,
        "vertebrae Dice {dice:.3}, chance {chance:.4}"
    );
}

#[test]
fn resume_continues_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = tiny_phantoms(dir.path(), 3, 0, true, None);
    let full = dir.path().join("full");
    let split = dir.path().join("split");
    let common = ["--iterations", "6", "--val-every", "3", "--seed", "7"];
    let o = train_cmd(&manifest, &full, &common)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let mut first: Vec<&str> = common.to_vec();
    first.extend(["--stop-after", "3"]);
    let o = train_cmd(&manifest, &split, &first)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(split.join("last/train_state.json")).unwrap()).unwrap();
    assert_eq!(state["iteration"], 3);
    // Without --resume the run refuses to overwrite.
    let o = train_cmd(&manifest, &split, &common)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("--resume"));
    let mut resume: Vec<&str> = common.to_vec();
    resume.push("--resume");
    let o = train_cmd(&manifest, &split, &resume)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let a = std::fs::read(full.join("last/model.safetensors")).unwrap();
    let b = std::fs::read(split.join("last/model.safetensors")).unwrap();
    assert!(a == b, "resumed weights differ from the uninterrupted run");
    let la: Vec<f64> = metrics(&full).iter().filter_map(|v| v["loss"].as_f64()).collect();
    let lb: Vec<f64> = metrics(&split).iter().filter_map(|v| v["loss"].as_f64()).collect();
    assert_eq!(la, lb);
}

/// `edge-seg-train bench` times whole steps as the PyTorch peer does and,
/// separately, each phase; both timings cover the same number of steps.
#[test]
fn bench_reports_whole_steps_and_phases() {
    let o = edge_seg_tests::run(
        "edge-seg-train",
        &[
            "bench",
            "--padding",
            "same",
            "--plan",
            "doubling",
            "--filters",
            "2",
            "--levels",
            "2",
            "--patch",
            "16",
            "--batch",
            "1",
            "--steps",
            "2",
            "--json",
        ],
    );
    assert!(
        o.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).expect("bench prints JSON");
    let whole = v["seconds_per_step"].as_f64().unwrap();
    let phased = v["phased_seconds_per_step"].as_f64().unwrap();
    let phases = ["forward_seconds", "backward_seconds", "optimizer_seconds"]
        .iter()
        .map(|k| v[k].as_f64().unwrap())
        .sum::<f64>();
    assert!(whole > 0.0 && phased > 0.0, "{v}");
    // The phases are the phased step, up to the timer reads between them.
    assert!(
        (phases - phased).abs() <= 0.05 * phased + 1e-4,
        "phases {phases} vs step {phased}"
    );
}
