//! The run's `metrics.jsonl` and its learning-curve plot.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;
use serde_json::Value;

/// Keep only metric lines up to iteration `keep` (after a resume, lines
/// written past the checkpoint are replayed).
pub fn truncate_metrics(path: &Path, keep: u64) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .and_then(|v| v["iteration"].as_u64())
                .is_some_and(|i| i <= keep)
        })
        .collect();
    let mut body = kept.join("\n");
    if !body.is_empty() {
        body.push('\n');
    }
    edge_seg_models::atomic::write_bytes(path, body.as_bytes())
        .with_context(|| format!("cannot rewrite {}", path.display()))
}

/// The validation Dice a run's `metrics.jsonl` records, by iteration.
pub fn validation_curve(metrics: &Path) -> Result<Vec<(u64, f64)>> {
    let text = std::fs::read_to_string(metrics).with_context(|| format!("cannot read {}", metrics.display()))?;
    Ok(validation_points(&text))
}

/// The validation Dice lines of a `metrics.jsonl` text, by iteration.
fn validation_points(text: &str) -> Vec<(u64, f64)> {
    text.lines()
        .filter_map(|line| {
            let v = serde_json::from_str::<Value>(line).ok()?;
            Some((v["iteration"].as_u64()?, v["val_dice"].as_f64()?))
        })
        .collect()
}

/// Training loss (smoothed) and validation Dice against iterations, as PNG.
pub fn plot_learning_curve(metrics: &Path, png: &Path) -> Result<()> {
    let text = std::fs::read_to_string(metrics).with_context(|| format!("cannot read {}", metrics.display()))?;
    let loss: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|line| {
            let v = serde_json::from_str::<Value>(line).ok()?;
            Some((v["iteration"].as_u64()? as f64, v["loss"].as_f64()?))
        })
        .collect();
    let val: Vec<(f64, f64)> = validation_points(&text)
        .into_iter()
        .map(|(it, d)| (it as f64, d))
        .collect();
    if loss.is_empty() {
        return Ok(());
    }
    // Exponential moving average for readability.
    let mut smooth = Vec::with_capacity(loss.len());
    let mut s = loss[0].1;
    for &(it, l) in &loss {
        s = 0.95 * s + 0.05 * l;
        smooth.push((it, s));
    }
    let max_it = loss.last().unwrap().0.max(1.0);
    let max_loss = loss.iter().map(|p| p.1).fold(0.0f64, f64::max).max(1e-6);
    crate::figure::write_png(png, (900, 500), |root| {
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        let mut chart = ChartBuilder::on(root)
            .caption("learning curve", ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .right_y_label_area_size(55)
            .build_cartesian_2d(0f64..max_it, 0f64..max_loss)
            .map_err(|e| anyhow!("{e}"))?
            .set_secondary_coord(0f64..max_it, 0f64..1f64);
        chart
            .configure_mesh()
            .x_desc("iteration")
            .y_desc("training loss")
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .configure_secondary_axes()
            .y_desc("validation Dice")
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .draw_series(LineSeries::new(loss.iter().copied(), RGBColor(200, 200, 230)))
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .draw_series(LineSeries::new(smooth.iter().copied(), BLUE.stroke_width(2)))
            .map_err(|e| anyhow!("{e}"))?
            .label("loss (smoothed)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
        if !val.is_empty() {
            chart
                .draw_secondary_series(LineSeries::new(val.iter().copied(), RED.stroke_width(2)))
                .map_err(|e| anyhow!("{e}"))?
                .label("validation Dice")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
            chart
                .draw_secondary_series(val.iter().map(|&p| Circle::new(p, 3, RED.filled())))
                .map_err(|e| anyhow!("{e}"))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        Ok(())
    })
}
