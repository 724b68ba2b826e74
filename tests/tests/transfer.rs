//! Transfer end to end: fine-tuning's first phase freezes all but the
//! tail; the experiment grid resumes without redoing finished runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use edge_seg_export::Checkpoint;
use edge_seg_models::labels::{Task, BASE_LABELS};
use edge_seg_models::spec::{ChannelPlan, Padding, Upsampling};
use edge_seg_tests::models::{tiny_card, tiny_spec};
use edge_seg_tests::{bin, text};

fn tiny_base(dir: &Path) -> PathBuf {
    let spec = tiny_spec(
        2,
        4,
        ChannelPlan::Doubling,
        Padding::Same,
        Upsampling::Nearest,
        BASE_LABELS.len(),
    );
    let pools = (24 - spec.smallest_input()) / spec.pool_factor();
    let card = tiny_card(spec, &BASE_LABELS, 8.0, pools);
    assert_eq!(card.tile.input, [24; 3]);
    let p = dir.join("base");
    Checkpoint::random(card, 4).write(&p).unwrap();
    p
}

fn esophagus(dir: &Path) -> PathBuf {
    edge_seg_tests::phantoms::task(dir, Task::Esophagus, 2, 1, 6.0)
}

fn tiny_args() -> Vec<&'static str> {
    vec![
        "--spacing",
        "8",
        "--patch",
        "24",
        "--batch",
        "1",
        "--warmup",
        "1",
        "--quiet",
        "--val-every",
        "0",
    ]
}

#[test]
fn finetune_phase_one_changes_only_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let base = tiny_base(dir.path());
    let manifest = esophagus(dir.path());
    let out = dir.path().join("ft");
    let mut args = vec![
        "transfer",
        "--base",
        base.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
        "--strategy",
        "finetune",
        "--out",
        out.to_str().unwrap(),
        "--iterations",
        "6",
        "--phase1",
        "3",
    ];
    args.extend(tiny_args());
    let o = Command::new(bin("edge-seg-train")).args(&args).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let b = Checkpoint::read(&base).unwrap();
    let p1 = Checkpoint::read(&out.join("phase1/last")).unwrap();
    let tail = ["dec0.conv1.weight", "dec0.conv1.bias", "head.weight", "head.bias"];
    for (name, t) in &p1.weights {
        if name.starts_with("head.") {
            continue; // a fresh head: different shape
        }
        if tail.contains(&name.as_str()) {
            assert_ne!(t, &b.weights[name], "{name} should have trained");
        } else {
            assert!(t == &b.weights[name], "{name} changed while frozen");
        }
    }
    // Phase 2 trains everything.
    let p2 = Checkpoint::read(&out.join("phase2/last")).unwrap();
    assert_ne!(p2.weights["enc0.conv0.weight"], b.weights["enc0.conv0.weight"]);
    assert_eq!(p2.card.provenance.strategy.as_deref(), Some("finetune"));
    assert_eq!(p2.card.labels, Task::Esophagus.labels());
}

#[test]
fn experiment_resumes_without_redoing_finished_runs() {
    let dir = tempfile::tempdir().unwrap();
    let base = tiny_base(dir.path());
    let out = dir.path().join("exp");
    let mut args = vec![
        "experiment",
        "--base",
        base.to_str().unwrap(),
        "--task",
        "esophagus",
        "--sizes",
        "1,2",
        "--strategies",
        "scratch,vanilla,finetune",
        "--seeds",
        "1",
        "--test-cases",
        "1",
        "--out",
        out.to_str().unwrap(),
        "--iterations",
        "4",
        "--phase1",
        "2",
        "--inplane-mm",
        "6",
        "--slice-mm",
        "6",
        "--eval-tile",
        "48",
    ];
    args.extend(tiny_args());
    let o = Command::new(bin("edge-seg-train")).args(&args).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 6, "{csv}");
    assert!(csv.starts_with("task,strategy,size,seed,dice"));
    assert!(out.join("results.md").exists() && out.join("dice_vs_size.png").exists());
    let stamp = |name: &str| {
        std::fs::metadata(out.join("runs").join(name).join("result.json"))
            .unwrap()
            .modified()
            .unwrap()
    };
    let before = stamp("esophagus-vanilla-n2-s0");
    // An interrupted run (no result.json) is redone; finished ones are not.
    std::fs::remove_file(out.join("runs/esophagus-scratch-n1-s0/result.json")).unwrap();
    let o = Command::new(bin("edge-seg-train")).args(&args).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(stamp("esophagus-vanilla-n2-s0"), before, "a finished run was redone");
    assert!(out.join("runs/esophagus-scratch-n1-s0/result.json").exists());
    assert_eq!(
        std::fs::read_to_string(out.join("results.csv"))
            .unwrap()
            .lines()
            .count(),
        7
    );
}
