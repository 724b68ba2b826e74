//! The transfer experiment: for a task, every (training-set size, strategy,
//! seed) run with the same iteration budget, each evaluated on the same
//! held-out test cases (Dice and HD95 per class on the scans' own grids),
//! summarised as `results.csv`, a Markdown table and a plot of Dice against
//! training-set size. Finished runs are kept and not redone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use burn::prelude::*;
use edge_seg_models::card::Modality;
use edge_seg_models::labels::Task;
use edge_seg_models::manifest::Split;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::base_model::BaseModel;
use crate::data::Dataset;
use crate::metrics::{dice, hd95};
use crate::phantom::{generate, PhantomOptions};
use crate::predict::LoadedModel;
use crate::train::{RunOptions, TrainConfig};
use crate::transfer::{transfer, Strategy, TransferPlan};

/// One finished run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunResult {
    pub task: String,
    pub strategy: String,
    pub size: usize,
    pub seed: u64,
    pub dice: f64,
    pub hd95_mm: Option<f64>,
    pub dice_per_class: BTreeMap<String, f64>,
    pub hd95_per_class: BTreeMap<String, f64>,
    pub train_seconds: f64,
    pub iterations: u64,
    pub test_cases: usize,
}

/// The grid and how each run trains.
#[derive(Clone, Debug)]
pub struct ExperimentPlan {
    pub task: Task,
    pub sizes: Vec<usize>,
    pub strategies: Vec<Strategy>,
    pub seeds: u64,
    pub test_cases: usize,
    /// Template for every run (spec, spacing, iterations...). `manifest`,
    /// `seed`, `max_train_cases` are set per run.
    pub config: TrainConfig,
    pub transfer: TransferPlan,
    /// Phantom generation for the task's data set.
    pub data_seed: u64,
    pub inplane_mm: (f64, f64),
    pub slice_mm: (f64, f64),
    /// Tile edge for evaluation.
    pub eval_tile: usize,
}

fn run_name(task: Task, strategy: Strategy, size: usize, seed: u64) -> String {
    format!("{}-{}-n{size}-s{seed}", task.name(), strategy.name())
}

/// The task's phantom data set (generated once, then reused).
pub fn task_dataset(plan: &ExperimentPlan, out: &Path) -> Result<PathBuf> {
    let data = out.join("data");
    let existing = std::fs::read_dir(&data)
        .ok()
        .and_then(|mut rd| rd.find_map(|e| e.ok().map(|e| e.path().join("manifest.json")).filter(|p| p.exists())));
    if let Some(m) = existing {
        return Ok(m);
    }
    let max = *plan.sizes.iter().max().unwrap_or(&1);
    let g = generate(
        &PhantomOptions {
            out: data,
            cases: max,
            seed: plan.data_seed,
            modality: if plan.task == Task::Prostate {
                Modality::MR
            } else {
                Modality::CT
            },
            task: Some(plan.task),
            sparse: false,
            complete_fraction: 1.0,
            val: 0,
            test: plan.test_cases,
            inplane_mm: plan.inplane_mm,
            slice_mm: plan.slice_mm,
            orientations: vec!["LPS".into(), "RAS".into(), "LAS".into()],
            dataset_id: 950 + Task::ALL.iter().position(|t| *t == plan.task).unwrap_or(0) as u32,
            name: None,
        },
        |_, _| {},
    )?;
    Ok(g.manifest)
}

/// Evaluate a checkpoint on the test cases: mean Dice and HD95 per class.
pub fn evaluate(
    ckpt: &Path,
    manifest: &Path,
    tile: usize,
) -> Result<(BTreeMap<String, f64>, BTreeMap<String, f64>, usize)> {
    let model = LoadedModel::from_checkpoint(ckpt, Device::flex())?;
    let ds = Dataset::load(manifest)?;
    let tile = crate::predict::tile_for(&model.card.network, tile);
    let mut dices: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut hds: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let cases: Vec<_> = ds.manifest.cases_in(Split::Test).collect();
    for case in &cases {
        let (vol, truth) = ds.read_case(case)?;
        let truth = truth.ok_or_else(|| anyhow!("test case {} has no labels", case.id))?;
        let pred = model.predict_volume(&vol, &ds.resolve(&case.image), tile)?;
        let s = vol.spacing();
        let spacing_kji = [s[2], s[1], s[0]];
        for (c, name) in ds.manifest.vocabulary.iter().enumerate().skip(1) {
            // An absent-and-not-predicted class has no Dice; count a miss as 0.
            if let Some(d) = dice(pred.view(), truth.view(), c as u16) {
                dices.entry(name.clone()).or_default().push(d);
            }
            if let Some(h) = hd95(pred.view(), truth.view(), c as u16, spacing_kji) {
                hds.entry(name.clone()).or_default().push(h);
            }
        }
    }
    let mean = |m: BTreeMap<String, Vec<f64>>| -> BTreeMap<String, f64> {
        m.into_iter()
            .map(|(k, v)| (k, v.iter().sum::<f64>() / v.len() as f64))
            .collect()
    };
    Ok((mean(dices), mean(hds), cases.len()))
}

/// Run the grid (skipping finished runs) and write the summaries.
pub fn run_experiment(
    plan: &ExperimentPlan,
    base_model: &BaseModel,
    out: &Path,
    device: &Device,
    quiet: bool,
) -> Result<Vec<RunResult>> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let base = &base_model.checkpoint;
    let manifest = task_dataset(plan, out)?;
    let vocabulary = Dataset::load(&manifest)?.manifest.vocabulary;
    let mut results = Vec::new();
    let total = plan.sizes.len() * plan.strategies.len() * plan.seeds as usize;
    let mut n = 0;
    for &size in &plan.sizes {
        for &strategy in &plan.strategies {
            for seed in 0..plan.seeds {
                n += 1;
                let name = run_name(plan.task, strategy, size, seed);
                let dir = out.join("runs").join(&name);
                let result_path = dir.join("result.json");
                if let Ok(text) = std::fs::read_to_string(&result_path) {
                    if let Ok(r) = serde_json::from_str::<RunResult>(&text) {
                        if !quiet {
                            eprintln!("[{n}/{total}] {name}: done before (Dice {:.3})", r.dice);
                        }
                        results.push(r);
                        continue;
                    }
                }
                // An unfinished run starts over.
                let _ = std::fs::remove_dir_all(&dir);
                let mut cfg = plan.config.clone();
                cfg.manifest = manifest.clone();
                cfg.spec = crate::transfer::task_spec(&base.card.network, vocabulary.len());
                cfg.task = plan.task.name().to_string();
                cfg.seed = 1000 * seed + size as u64;
                cfg.max_train_cases = Some(size);
                cfg.modality = if plan.task == Task::Prostate {
                    Modality::MR
                } else {
                    Modality::CT
                };
                // CT tasks keep a window given on the command line.
                cfg.intensity = match (cfg.modality, plan.config.intensity) {
                    (Modality::CT, w @ edge_seg_models::card::Intensity::Window { .. }) => w,
                    (Modality::CT, _) => edge_seg_models::card::Intensity::ct_default(),
                    (Modality::MR, _) => edge_seg_models::card::Intensity::ZScore,
                };
                let tp = TransferPlan {
                    strategy,
                    ..plan.transfer.clone()
                };
                let start = Instant::now();
                let (outcome, final_ckpt) = transfer(
                    &cfg,
                    base_model,
                    &tp,
                    &dir,
                    device,
                    &RunOptions {
                        quiet: true,
                        ..Default::default()
                    },
                )?;
                let train_seconds = start.elapsed().as_secs_f64();
                let (dice_per_class, hd95_per_class, test_cases) = evaluate(&final_ckpt, &manifest, plan.eval_tile)?;
                let classes = vocabulary.len() - 1;
                let dice = dice_per_class.values().sum::<f64>() / classes as f64;
                let hd95_mm = if hd95_per_class.is_empty() {
                    None
                } else {
                    Some(hd95_per_class.values().sum::<f64>() / hd95_per_class.len() as f64)
                };
                let r = RunResult {
                    task: plan.task.name().into(),
                    strategy: strategy.name().into(),
                    size,
                    seed,
                    dice,
                    hd95_mm,
                    dice_per_class,
                    hd95_per_class,
                    train_seconds,
                    iterations: outcome.iterations,
                    test_cases,
                };
                edge_seg_models::atomic::write_bytes(&result_path, serde_json::to_string_pretty(&r)?.as_bytes())?;
                if !quiet {
                    eprintln!("[{n}/{total}] {name}: Dice {:.3} ({:.0} s)", r.dice, train_seconds);
                }
                results.push(r);
            }
        }
    }
    write_summaries(&results, out)?;
    Ok(results)
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len().max(1) as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len().max(2) - 1) as f64;
    (m, var.sqrt())
}

/// `results.csv`, `results.md` and `dice_vs_size.png` from the results of
/// every task run into `out` (runs of other tasks in the same folder are
/// included).
pub fn write_summaries(results: &[RunResult], out: &Path) -> Result<()> {
    let mut all: Vec<RunResult> = results.to_vec();
    if let Ok(rd) = std::fs::read_dir(out.join("runs")) {
        for e in rd.flatten() {
            if let Ok(text) = std::fs::read_to_string(e.path().join("result.json")) {
                if let Ok(r) = serde_json::from_str::<RunResult>(&text) {
                    if !all
                        .iter()
                        .any(|x| x.task == r.task && x.strategy == r.strategy && x.size == r.size && x.seed == r.seed)
                    {
                        all.push(r);
                    }
                }
            }
        }
    }
    all.sort_by(|a, b| (&a.task, a.size, &a.strategy, a.seed).cmp(&(&b.task, b.size, &b.strategy, b.seed)));
    let mut csv = String::from("task,strategy,size,seed,dice,hd95_mm,train_seconds,iterations,test_cases\n");
    for r in &all {
        csv.push_str(&format!(
            "{},{},{},{},{:.4},{},{:.1},{},{}\n",
            r.task,
            r.strategy,
            r.size,
            r.seed,
            r.dice,
            r.hd95_mm.map(|h| format!("{h:.2}")).unwrap_or_default(),
            r.train_seconds,
            r.iterations,
            r.test_cases
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
    let strategies = ["scratch", "vanilla", "finetune"];
    let mut md = String::new();
    for task in &tasks {
        md.push_str(&format!(
            "### {task}\n\n| training scans | scratch | vanilla | finetune |\n|---:|---|---|---|\n"
        ));
        let sizes: std::collections::BTreeSet<usize> = all.iter().filter(|r| &r.task == task).map(|r| r.size).collect();
        for size in sizes {
            md.push_str(&format!("| {size} |"));
            for s in strategies {
                match groups.get(&(task.clone(), size, s.to_string())) {
                    Some(v) => {
                        let (m, sd) = mean_std(v);
                        md.push_str(&format!(" {m:.3} ± {sd:.3} (n={}) |", v.len()));
                    }
                    None => md.push_str(" – |"),
                }
            }
            md.push('\n');
        }
        md.push('\n');
    }
    edge_seg_models::atomic::write_bytes(&out.join("results.md"), md.as_bytes())?;
    // The tables are written: a plot that cannot be drawn (no fonts on the
    // machine, say) must not fail the grid.
    if let Err(e) = plot(&all, &tasks, &out.join("dice_vs_size.png")) {
        eprintln!("warning: {e:#}; the numbers are in results.csv and results.md");
    }
    Ok(())
}

/// One panel per task: mean Dice against training-set size, one line per strategy.
fn plot(all: &[RunResult], tasks: &[String], png: &Path) -> Result<()> {
    let panels = tasks.len().max(1);
    crate::figure::write_png(png, (480 * panels as u32, 400), |root| {
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        let areas = root.split_evenly((1, panels));
        let colours = [RGBColor(200, 60, 60), RGBColor(60, 120, 200), RGBColor(40, 160, 80)];
        for (area, task) in areas.iter().zip(tasks) {
            let sizes: Vec<usize> = all
                .iter()
                .filter(|r| &r.task == task)
                .map(|r| r.size)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let max_size = *sizes.last().unwrap_or(&1) as f64;
            let mut chart = ChartBuilder::on(area)
                .caption(task, ("sans-serif", 20))
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(45)
                .build_cartesian_2d(0f64..max_size + 1.0, 0f64..1f64)
                .map_err(|e| anyhow!("{e}"))?;
            chart
                .configure_mesh()
                .x_desc("training scans")
                .y_desc("test Dice")
                .draw()
                .map_err(|e| anyhow!("{e}"))?;
            for (s, colour) in ["scratch", "vanilla", "finetune"].iter().zip(colours) {
                let points: Vec<(f64, f64)> = sizes
                    .iter()
                    .filter_map(|&n| {
                        let v: Vec<f64> = all
                            .iter()
                            .filter(|r| &r.task == task && r.size == n && r.strategy == *s)
                            .map(|r| r.dice)
                            .collect();
                        (!v.is_empty()).then(|| (n as f64, mean_std(&v).0))
                    })
                    .collect();
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
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| anyhow!("{e}"))?;
        }
        Ok(())
    })
}
