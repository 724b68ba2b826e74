//! Reports of the transfer experiment: a task's results as `results.csv`,
//! a Markdown table of mean ± sd with paired bootstrap intervals, a plot of
//! Dice against training-set size and one of the runs' validation curves;
//! the same over several tasks.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use super::RunResult;

pub(crate) fn mean_std(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len().max(1) as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len().max(2) - 1) as f64;
    (m, var.sqrt())
}

/// `results.csv`, `results.md`, `dice_vs_size.png` and `learning_curves.png`
/// from `results`.
pub fn write_summaries(results: &[RunResult], out: &Path) -> Result<()> {
    let mut all: Vec<RunResult> = results.to_vec();
    all.sort_by(|a, b| (&a.task, a.size, &a.strategy, a.seed).cmp(&(&b.task, b.size, &b.strategy, b.seed)));
    let mut csv =
        String::from("task,strategy,size,seed,dice,hd95_mm,train_seconds,iterations,test_cases,stopped_early,device\n");
    for r in &all {
        csv.push_str(&format!(
            "{},{},{},{},{:.4},{},{:.1},{},{},{},{}\n",
            r.task,
            r.strategy,
            r.size,
            r.seed,
            r.dice,
            r.hd95_mm.map(|h| format!("{h:.2}")).unwrap_or_default(),
            r.train_seconds,
            r.iterations,
            r.test_cases,
            r.stopped_early,
            r.device
        ));
    }
    edge_seg_models::atomic::write_bytes(&out.join("results.csv"), csv.as_bytes())?;
    // Markdown: mean ± std Dice per task, size and strategy.
    let mut groups: BTreeMap<(String, usize, String), Vec<f64>> = BTreeMap::new();
    for r in &all {
        groups
            .entry((r.task.clone(), r.size, r.strategy.clone()))
            .or_default()
            .push(r.dice);
    }
    let tasks: Vec<String> = all
        .iter()
        .map(|r| r.task.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut md = String::new();
    for task in &tasks {
        md.push_str(&format!(
            "### {task}\n\n| training scans | scratch | vanilla | finetune |\n|---:|---|---|---|\n"
        ));
        let sizes: std::collections::BTreeSet<usize> = all.iter().filter(|r| &r.task == task).map(|r| r.size).collect();
        for size in sizes {
            md.push_str(&format!("| {size} |"));
            for s in STRATEGIES {
                let v = groups.get(&(task.clone(), size, s.to_string()));
                md.push_str(&format!(" {} |", mean_sd_cell(v.map_or(&[][..], |v| &v[..]))));
            }
            md.push('\n');
        }
        md.push('\n');
        md.push_str(&comparison_table(&all, task));
    }
    edge_seg_models::atomic::write_bytes(&out.join("results.md"), md.as_bytes())?;
    // The tables are written: a plot that cannot be drawn (no fonts on the
    // machine, say) must not fail the grid.
    if let Err(e) = plot(&all, &tasks, &out.join("dice_vs_size.png")) {
        eprintln!("warning: {e:#}; the numbers are in results.csv and results.md");
    }
    if let Err(e) = plot_learning_curves(&all, &tasks, &out.join("learning_curves.png")) {
        eprintln!("warning: {e:#}; the validation curves are in results.jsonl");
    }
    Ok(())
}

/// Paired differences of test Dice: each pair is one test case under one
/// seed, scored by two strategies' runs at the same size.
pub struct PairedDifference {
    pub mean: f64,
    /// 95 % bootstrap interval of the mean (10,000 resamples of the pairs).
    pub low: f64,
    pub high: f64,
    pub pairs: usize,
}

/// `a` − `b` at one task and size, over the seeds both ran (per test case
/// where the rows hold per-case Dice, else per run).
pub fn paired_difference(all: &[RunResult], task: &str, size: usize, a: &str, b: &str) -> Option<PairedDifference> {
    let runs = |s: &str| {
        all.iter()
            .filter(|r| r.task == task && r.size == size && r.strategy == s)
            .collect::<Vec<_>>()
    };
    paired_runs(&runs(a), &runs(b))
}

/// `a` − `b` over two sets of runs of one cell, paired by seed (and by test
/// case where both rows hold per-case Dice).
pub(crate) fn paired_runs(a: &[&RunResult], b: &[&RunResult]) -> Option<PairedDifference> {
    use rand::{Rng, SeedableRng};
    let mut d = Vec::new();
    for ra in a {
        let Some(rb) = b.iter().find(|r| r.seed == ra.seed) else {
            continue;
        };
        if !ra.dice_per_case.is_empty() && ra.dice_per_case.len() == rb.dice_per_case.len() {
            d.extend(ra.dice_per_case.iter().zip(&rb.dice_per_case).map(|(x, y)| x - y));
        } else {
            d.push(ra.dice - rb.dice);
        }
    }
    if d.is_empty() {
        return None;
    }
    let mean = d.iter().sum::<f64>() / d.len() as f64;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut means: Vec<f64> = (0..10_000)
        .map(|_| (0..d.len()).map(|_| d[rng.random_range(0..d.len())]).sum::<f64>() / d.len() as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    Some(PairedDifference {
        mean,
        low: means[249],
        high: means[9_749],
        pairs: d.len(),
    })
}

/// A table cell: a paired difference with its interval, or "–".
pub(crate) fn difference_cell(p: Option<PairedDifference>) -> String {
    match p {
        Some(p) => format!("{:+.3} [{:+.3}, {:+.3}] ({} pairs)", p.mean, p.low, p.high, p.pairs),
        None => "–".into(),
    }
}

/// A table cell: mean ± sd of the runs' Dice and their count, or "–"; one run
/// has no spread to show, so its cell is the Dice alone.
pub(crate) fn mean_sd_cell(dice: &[f64]) -> String {
    match dice {
        [] => "–".into(),
        [d] => format!("{d:.3} (n=1)"),
        _ => {
            let (m, sd) = mean_std(dice);
            format!("{m:.3} ± {sd:.3} (n={})", dice.len())
        }
    }
}

/// Markdown: fine-tune against scratch and against vanilla at each size.
fn comparison_table(all: &[RunResult], task: &str) -> String {
    let sizes: std::collections::BTreeSet<usize> = all.iter().filter(|r| r.task == task).map(|r| r.size).collect();
    let mut md = String::from("| training scans | finetune − scratch | finetune − vanilla |\n|---:|---|---|\n");
    for size in sizes {
        md.push_str(&format!(
            "| {size} | {} | {} |\n",
            difference_cell(paired_difference(all, task, size, "finetune", "scratch")),
            difference_cell(paired_difference(all, task, size, "finetune", "vanilla"))
        ));
    }
    md.push_str("\nDifferences of mean test Dice, paired by seed and test case, with 95 % bootstrap intervals.\n\n");
    md
}

const STRATEGIES: [&str; 3] = ["scratch", "vanilla", "finetune"];
const COLOURS: [RGBColor; 3] = [RGBColor(200, 60, 60), RGBColor(60, 120, 200), RGBColor(40, 160, 80)];

/// A figure of one panel per task, two to a row.
fn task_panels(
    png: &Path,
    tasks: &[String],
    mut draw: impl FnMut(&DrawingArea<BitMapBackend, plotters::coord::Shift>, &String) -> Result<()>,
) -> Result<()> {
    let panels = tasks.len().max(1);
    let cols = panels.min(2);
    let rows = panels.div_ceil(cols);
    crate::figure::write_png(png, (480 * cols as u32, 400 * rows as u32), |root| {
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        for (area, task) in root.split_evenly((rows, cols)).iter().zip(tasks) {
            draw(area, task)?;
        }
        Ok(())
    })
}

type Panel<'a, 'b> = ChartContext<
    'a,
    BitMapBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// One task's axes: `x` from 0 to `x_max` (whole numbers: scans or
/// iterations), Dice from 0 to 1.
fn panel<'a, 'b>(
    area: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    caption: &str,
    x_max: f64,
    x_desc: &str,
    y_desc: &str,
) -> Result<Panel<'a, 'b>> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d(0f64..x_max, 0f64..1f64)
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    Ok(chart)
}

/// The strategies' legend in a panel's lower right corner.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(chart: &mut ChartContext<'a, DB, CT>) -> Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow!("{e}"))
}

/// Validation Dice against iteration for every run at each task's largest
/// size: whether the runs had stopped learning when they stopped.
fn plot_learning_curves(all: &[RunResult], tasks: &[String], png: &Path) -> Result<()> {
    let with_curves: Vec<&RunResult> = all.iter().filter(|r| !r.validation.is_empty()).collect();
    if with_curves.is_empty() {
        return Ok(());
    }
    let max_it = with_curves
        .iter()
        .flat_map(|r| r.validation.iter().map(|&(it, _)| it))
        .max()
        .unwrap_or(1) as f64;
    let tasks: Vec<String> = tasks
        .iter()
        .filter(|t| with_curves.iter().any(|r| &r.task == *t))
        .cloned()
        .collect();
    task_panels(png, &tasks, |area, task| {
        let runs: Vec<&&RunResult> = with_curves.iter().filter(|r| &r.task == task).collect();
        let size = runs.iter().map(|r| r.size).max().unwrap_or(0);
        let mut chart = panel(
            area,
            &format!("{task}, {size} training scans"),
            max_it,
            "iteration",
            "validation Dice",
        )?;
        for (s, colour) in STRATEGIES.iter().zip(COLOURS) {
            for (i, r) in runs.iter().filter(|r| r.size == size && r.strategy == *s).enumerate() {
                let points = r.validation.iter().map(|&(it, d)| (it as f64, d));
                let series = chart
                    .draw_series(LineSeries::new(points, colour.stroke_width(1)))
                    .map_err(|e| anyhow!("{e}"))?;
                if i == 0 {
                    series
                        .label(*s)
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
                }
            }
        }
        legend(&mut chart)
    })
}

/// One panel per task: mean Dice against training-set size, one line per
/// strategy.
fn plot(all: &[RunResult], tasks: &[String], png: &Path) -> Result<()> {
    task_panels(png, tasks, |area, task| {
        let sizes: Vec<usize> = all
            .iter()
            .filter(|r| &r.task == task)
            .map(|r| r.size)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let max_size = *sizes.last().unwrap_or(&1) as f64;
        let mut chart = panel(area, task, max_size + 1.0, "training scans", "test Dice")?;
        for (s, colour) in STRATEGIES.iter().zip(COLOURS) {
            let stats: Vec<(f64, (f64, f64))> = sizes
                .iter()
                .filter_map(|&n| {
                    let v: Vec<f64> = all
                        .iter()
                        .filter(|r| &r.task == task && r.size == n && r.strategy == *s)
                        .map(|r| r.dice)
                        .collect();
                    (!v.is_empty()).then(|| (n as f64, mean_std(&v)))
                })
                .collect();
            let points: Vec<(f64, f64)> = stats.iter().map(|&(n, (m, _))| (n, m)).collect();
            if points.is_empty() {
                continue;
            }
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                .map_err(|e| anyhow!("{e}"))?
                .label(*s)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 4, colour.filled())))
                .map_err(|e| anyhow!("{e}"))?;
            // ± one standard deviation over seeds.
            chart
                .draw_series(stats.iter().map(|&(n, (m, sd))| {
                    ErrorBar::new_vertical(n, (m - sd).max(0.0), m, (m + sd).min(1.0), colour.stroke_width(1), 8)
                }))
                .map_err(|e| anyhow!("{e}"))?;
        }
        legend(&mut chart)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_shows_a_spread_only_over_two_runs_or_more() {
        assert_eq!(mean_sd_cell(&[]), "–");
        assert_eq!(mean_sd_cell(&[0.4931]), "0.493 (n=1)");
        assert_eq!(mean_sd_cell(&[0.5, 0.6]), "0.550 ± 0.071 (n=2)");
    }
}
