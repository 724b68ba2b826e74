//! The same transfers run under different conditions (from different base
//! models, or with a different stopping rule): per task and training-set size,
//! each result set's strategies as mean ± sd over seeds, and the differences
//! between sets paired by strategy, seed and test case, with bootstrap
//! intervals. Rows are compared only on one test set.

use std::collections::BTreeSet;

use anyhow::{bail, Result};

use super::report::{difference_cell, mean_sd_cell, paired_runs};
use super::RunResult;

/// One condition's experiment rows (every task), under the name the
/// comparison gives it.
pub struct ResultSet {
    pub name: String,
    pub rows: Vec<RunResult>,
}

/// The comparison as Markdown, for the tasks and strategies given, at the
/// sizes where at least two sets have rows of one of those strategies.
/// Fails when two sets scored a task on different test sets.
pub fn compare_result_sets(sets: &[ResultSet], tasks: &[String], strategies: &[String]) -> Result<String> {
    if sets.len() < 2 {
        bail!("a comparison needs at least two result sets, got {}", sets.len());
    }
    let mut md = String::new();
    for task in tasks {
        let mut test_set: Option<(&str, &str)> = None;
        for b in sets {
            for r in b.rows.iter().filter(|r| &r.task == task) {
                match test_set {
                    None => test_set = Some((&b.name, &r.test_set)),
                    Some((first, set)) if set != r.test_set => bail!(
                        "{task}: {} was scored on test set {} but {first} on {set}; compare rows of one test set",
                        b.name,
                        r.test_set
                    ),
                    Some(_) => {}
                }
            }
        }
        let sizes: BTreeSet<usize> = sets
            .iter()
            .flat_map(|b| b.rows.iter().filter(|r| &r.task == task).map(|r| r.size))
            .filter(|&size| {
                strategies
                    .iter()
                    .any(|s| sets.iter().filter(|b| !runs(b, task, size, s).is_empty()).count() >= 2)
            })
            .collect();
        if sizes.is_empty() {
            continue;
        }
        md.push_str(&format!("### {task}\n\n"));
        md.push_str(&header(sets.iter().map(|b| b.name.clone())));
        for &size in &sizes {
            for s in strategies {
                md.push_str(&format!("| {size} | {s} |"));
                for b in sets {
                    let dice: Vec<f64> = runs(b, task, size, s).iter().map(|r| r.dice).collect();
                    md.push_str(&format!(" {} |", mean_sd_cell(&dice)));
                }
                md.push('\n');
            }
        }
        let pairs: Vec<(usize, usize)> = (0..sets.len()).flat_map(|j| (0..j).map(move |i| (i, j))).collect();
        md.push('\n');
        md.push_str(&header(
            pairs
                .iter()
                .map(|&(i, j)| format!("{} − {}", sets[j].name, sets[i].name)),
        ));
        for &size in &sizes {
            for s in strategies {
                md.push_str(&format!("| {size} | {s} |"));
                for &(i, j) in &pairs {
                    let d = paired_runs(&runs(&sets[j], task, size, s), &runs(&sets[i], task, size, s));
                    md.push_str(&format!(" {} |", difference_cell(d)));
                }
                md.push('\n');
            }
        }
        md.push_str(
            "\nMean test Dice ± sd over seeds; differences of mean test Dice between result sets, paired by \
             strategy, seed and test case, with 95 % bootstrap intervals.\n\n",
        );
    }
    Ok(md)
}

/// A set's runs of one strategy at one task and size.
fn runs<'a>(set: &'a ResultSet, task: &str, size: usize, strategy: &str) -> Vec<&'a RunResult> {
    set.rows
        .iter()
        .filter(|r| r.task == task && r.size == size && r.strategy == strategy)
        .collect()
}

/// The head of a table whose rows are (training scans, strategy).
fn header(columns: impl Iterator<Item = String>) -> String {
    let columns: Vec<String> = columns.collect();
    let mut md = String::from("| training scans | strategy |");
    for c in &columns {
        md.push_str(&format!(" {c} |"));
    }
    md.push_str("\n|---:|---|");
    md.push_str(&"---|".repeat(columns.len()));
    md.push('\n');
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(task: &str, strategy: &str, size: usize, seed: u64, per_case: &[f64], test_set: &str) -> RunResult {
        RunResult {
            task: task.into(),
            strategy: strategy.into(),
            size,
            seed,
            dice: per_case.iter().sum::<f64>() / per_case.len() as f64,
            hd95_mm: None,
            dice_per_class: Default::default(),
            hd95_per_class: Default::default(),
            train_seconds: 1.0,
            iterations: 100,
            test_cases: per_case.len(),
            dice_per_case: per_case.to_vec(),
            stopped_early: true,
            device: "cpu".into(),
            test_set: test_set.into(),
            base_weights_sha256: String::new(),
            validation: Vec::new(),
        }
    }

    #[test]
    fn sets_are_compared_pairwise_by_seed_and_test_case() {
        let sparse = ResultSet {
            name: "sparse".into(),
            rows: vec![
                row("t", "finetune", 1, 0, &[0.5, 0.6], "x"),
                row("t", "finetune", 1, 1, &[0.4, 0.5], "x"),
                row("t", "finetune", 10, 0, &[0.9, 0.9], "x"),
                row("t", "scratch", 1, 0, &[0.1, 0.1], "x"),
            ],
        };
        let labelled = ResultSet {
            name: "labelled".into(),
            rows: vec![
                row("t", "finetune", 1, 0, &[0.6, 0.7], "x"),
                row("t", "finetune", 1, 1, &[0.5, 0.6], "x"),
            ],
        };
        let md = compare_result_sets(&[sparse, labelled], &["t".into()], &["finetune".into()]).unwrap();
        // Size 10 has one set only: left out.
        assert!(!md.contains("| 10 |"), "{md}");
        assert!(
            md.contains("| 1 | finetune | 0.500 ± 0.071 (n=2) | 0.600 ± 0.071 (n=2) |"),
            "{md}"
        );
        // Every pair differs by +0.1: the interval is that point.
        assert!(
            md.contains("| 1 | finetune | +0.100 [+0.100, +0.100] (4 pairs) |"),
            "{md}"
        );
    }

    #[test]
    fn different_test_sets_are_refused() {
        let a = ResultSet {
            name: "a".into(),
            rows: vec![row("t", "finetune", 1, 0, &[0.5], "x")],
        };
        let b = ResultSet {
            name: "b".into(),
            rows: vec![row("t", "finetune", 1, 0, &[0.5], "y")],
        };
        let e = compare_result_sets(&[a, b], &["t".into()], &["finetune".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("test set y") && e.contains("but a on x"), "{e}");
    }
}
