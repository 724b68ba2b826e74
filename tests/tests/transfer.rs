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
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(md.contains("finetune − scratch") && md.contains("pairs)"), "{md}");
    assert!(out.join("dice_vs_size.png").exists());
    let rows = || std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    let first = rows();
    assert_eq!(first.lines().count(), 6);
    for line in first.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(r["dice_per_case"].as_array().unwrap().len(), 1, "{line}");
        assert_eq!(r["device"], "cpu");
        // The learning curve behind `iterations`: validated at the end of
        // each run, and of fine-tuning's first phase.
        let curve = r["validation"].as_array().unwrap();
        assert_eq!(curve.last().unwrap()[0], r["iterations"], "{line}");
        let points: Vec<u64> = curve.iter().map(|p| p[0].as_u64().unwrap()).collect();
        let expected: &[u64] = if r["strategy"] == "finetune" { &[2, 4] } else { &[4] };
        assert_eq!(points, expected, "{line}");
    }
    assert!(out.join("learning_curves.png").exists());
    // An interrupted grid, on the same machine: a run whose row is missing
    // resumes from its checkpoint (here a finished one, so nothing trains
    // again and the same weights score the same), unless the checkpoint was
    // trained with other settings or its optimiser state cannot be read:
    // that run starts over.
    let row_of = |rows: &str, strategy: &str, size: u64| -> serde_json::Value {
        rows.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|r| r["strategy"] == strategy && r["size"] == size)
            .unwrap()
    };
    let runs = out.join("work/runs");
    let metrics = runs.join("esophagus-vanilla-n2-s0/metrics.jsonl");
    let trained = std::fs::read_to_string(&metrics).unwrap();
    let other = runs.join("esophagus-finetune-n1-s0/phase2/last/train_state.json");
    let state = std::fs::read_to_string(&other).unwrap();
    assert!(state.contains("\"lr\":"), "{state}");
    let changed = state.replacen("\"lr\":", "\"lr\":0.5,\"was\":", 1);
    std::fs::write(&other, &changed).unwrap();
    let unreadable = runs.join("esophagus-scratch-n2-s0/last/optimizer.safetensors");
    std::fs::remove_file(&unreadable).unwrap();
    let interrupted: Vec<&str> = first
        .lines()
        .filter(|l| {
            let r: serde_json::Value = serde_json::from_str(l).unwrap();
            !(r["strategy"] == "vanilla" && r["size"] == 2
                || r["strategy"] == "finetune" && r["size"] == 1
                || r["strategy"] == "scratch" && r["size"] == 2)
        })
        .collect();
    assert_eq!(interrupted.len(), 3);
    std::fs::write(out.join("results.jsonl"), interrupted.join("\n") + "\n").unwrap();
    let o = Command::new(bin("edge-seg-train")).args(&args).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let log = text(&o);
    assert!(
        log.contains("different configuration; resume with the same settings; starting it over"),
        "{log}"
    );
    assert!(log.contains("optimizer.safetensors cannot be read"), "{log}");
    assert_eq!(log.matches("starting it over").count(), 2, "{log}");
    assert!(
        unreadable.exists(),
        "the run without optimiser state was not started over"
    );
    assert_eq!(
        std::fs::read_to_string(&metrics).unwrap(),
        trained,
        "the resumed run trained again"
    );
    let restarted = std::fs::read_to_string(&other).unwrap();
    assert!(
        !restarted.contains("\"was\""),
        "the run with other settings was not started over"
    );
    let again = rows();
    assert_eq!(again.lines().count(), 6);
    let (before, after) = (row_of(&first, "vanilla", 2), row_of(&again, "vanilla", 2));
    for key in ["dice", "dice_per_case", "iterations", "validation"] {
        assert_eq!(before[key], after[key], "{key}");
    }
    // Its training time counts the earlier sitting.
    let st: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(runs.join("esophagus-vanilla-n2-s0/last/train_state.json")).unwrap(),
    )
    .unwrap();
    assert!(
        after["train_seconds"].as_f64().unwrap() >= st["elapsed_seconds"].as_f64().unwrap(),
        "{after}"
    );
    assert_eq!(row_of(&again, "finetune", 1)["iterations"], 4);
    // A fresh machine: only the committed results folder survives. Every
    // run it records is skipped; a run removed from it is redone.
    std::fs::remove_dir_all(out.join("work")).unwrap();
    let kept: Vec<&str> = first
        .lines()
        .filter(|l| !l.contains("\"scratch\"") || !l.contains("\"size\":1"))
        .collect();
    assert_eq!(kept.len(), 5);
    std::fs::write(out.join("results.jsonl"), kept.join("\n") + "\n").unwrap();
    let o = Command::new(bin("edge-seg-train")).args(&args).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let runs: Vec<String> = std::fs::read_dir(out.join("work/runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(runs, ["esophagus-scratch-n1-s0"], "only the missing run trains again");
    let after = rows();
    assert_eq!(after.lines().count(), 6);
    for line in &kept {
        assert!(after.contains(line), "a recorded run changed:\n{line}\nnow:\n{after}");
    }
}

/// The shipped base, as a new user reaches it: `--base default` on a
/// two-case task, every setting taken from the base's card, and the task
/// model's card naming the base and its weights.
#[test]
fn transfer_from_the_shipped_base() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = edge_seg_tests::phantoms::task(dir.path(), Task::Esophagus, 2, 0, 6.0);
    let out = dir.path().join("ft");
    let o = Command::new(bin("edge-seg-train"))
        .args(["transfer", "--base", "default", "--manifest"])
        .arg(&manifest)
        .args([
            "--strategy",
            "finetune",
            "--iterations",
            "4",
            "--val-every",
            "4",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let zoo = edge_seg_tests::tests_dir().parent().unwrap().join("models/zoo");
    let base_card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(zoo.join("default.card.json")).unwrap()).unwrap();
    let card = Checkpoint::read(&out.join("phase2/last")).unwrap().card;
    let p = &card.provenance;
    assert_eq!(p.base_model.as_deref(), Some("default"));
    assert_eq!(p.base_weights_sha256.as_deref(), base_card["weights_sha256"].as_str());
    assert_eq!(
        card.network.base_filters,
        base_card["network"]["base_filters"].as_u64().unwrap() as usize
    );
    assert_eq!(
        card.spacing_mm.to_vec(),
        serde_json::from_value::<Vec<f64>>(base_card["spacing_mm"].clone()).unwrap()
    );
    // Both phases, in order, add up to the budget.
    let stages: Vec<u64> = p.stages.iter().map(|s| s.iterations).collect();
    assert_eq!(stages, vec![2, 2], "{:?}", p.stages);
    assert_eq!(p.iterations, Some(4));
    assert!(
        p.stages[0].options.contains("last 2 layers trained"),
        "{:?}",
        p.stages[0]
    );
    assert!(
        !p.dataset.as_deref().unwrap().contains('/'),
        "the data set by name, not a path: {:?}",
        p.dataset
    );
    // A flag that contradicts the base is refused, naming both values.
    let o = Command::new(bin("edge-seg-train"))
        .args(["transfer", "--base", "default", "--manifest"])
        .arg(&manifest)
        .args(["--strategy", "vanilla", "--iterations", "2", "--spacing", "2", "--out"])
        .arg(dir.path().join("bad"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = text(&o);
    assert!(e.contains("--spacing 2") && e.contains("default"), "{e}");
}
