//! `edge-seg stats SCAN LABELS [--json]`: the per-structure report of an
//! existing label map (e.g. one corrected by hand) over its scan.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;
use ndarray::Array3;
use serde_json::json;

use super::model_args::load_model;
use edge_seg_runtime::statistics::{border_warnings, structure_statistics, StructureReport};
use edge_seg_runtime::volume::read_volume;

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The scan (NIfTI).
    pub scan: PathBuf,
    /// Its label map (NIfTI, integer labels on the scan's grid).
    pub labels: PathBuf,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The model whose label names the map uses (a built-in name or an ONNX
    /// file); labels beyond its list are reported as `label N`.
    #[arg(long, default_value = edge_seg_runtime::builtin::DEFAULT_MODEL)]
    pub model: String,
    /// Model card for an ONNX file without one.
    #[arg(long)]
    pub card: Option<PathBuf>,
}

/// Largest affine difference (mm) at which two files share a grid.
const GRID_TOLERANCE_MM: f64 = 1e-3;

pub fn run(a: &StatsArgs) -> Result<ExitCode> {
    let scan = read_volume(&a.scan)?;
    let map = read_volume(&a.labels)?;
    let (ss, ls) = (scan.shape_ijk(), map.shape_ijk());
    if ss != ls {
        bail!(
            "{} has shape {ls:?} but the scan {} has {ss:?}: not a label map of this scan",
            a.labels.display(),
            a.scan.display()
        );
    }
    let d = scan.affine.max_abs_diff(&map.affine);
    if !(d <= GRID_TOLERANCE_MM) {
        bail!(
            "{} and the scan {} have different affines (differ by {d:.4} mm): not on the scan's grid",
            a.labels.display(),
            a.scan.display()
        );
    }
    let mut labels = Array3::<u16>::zeros(map.data.dim());
    for (l, &v) in labels.iter_mut().zip(map.data.iter()) {
        if !(v >= 0.0 && v <= u16::MAX as f32 && v.fract() == 0.0) {
            bail!(
                "{}: holds {v}, not a label (a whole number from 0 to 65535)",
                a.labels.display()
            );
        }
        *l = v as u16;
    }
    let model = load_model(&a.model, a.card.as_deref())?;
    let mut names = model.card.labels.clone();
    let top = labels.iter().copied().max().unwrap_or(0) as usize;
    while names.len() <= top {
        names.push(format!("label {}", names.len()));
    }
    let structures = structure_statistics(&labels, &scan.data, &scan.affine, &names);
    let warnings = border_warnings(&structures);
    if a.json {
        let out = json!({
            "scan": a.scan.display().to_string(),
            "label_map": a.labels.display().to_string(),
            "shape": ss,
            "voxel_volume_mm3": scan.affine.det3().abs(),
            "structures": structures,
            "warnings": warnings,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", table(&structures));
        for w in &warnings {
            println!("warning: {w}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per structure present.
pub fn table(structures: &[StructureReport]) -> String {
    let mut s = format!(
        "{:>5} {:<22} {:>10} {:>9} {:>9} {:>8} {:>8} {:>8}  {:<26} {}\n",
        "label", "structure", "volume mL", "mean", "median", "sd", "min", "max", "centroid RAS mm", "border"
    );
    for st in structures.iter().filter(|st| st.voxels > 0) {
        let (mean, median, sd, min, max) = match &st.intensity {
            Some(i) => (i.mean, i.median, i.sd, i.min, i.max),
            None => (f64::NAN, f64::NAN, f64::NAN, f64::NAN, f64::NAN),
        };
        let c = st.centroid_ras_mm.unwrap_or([f64::NAN; 3]);
        s.push_str(&format!(
            "{:>5} {:<22} {:>10.1} {:>9.1} {:>9.1} {:>8.1} {:>8.1} {:>8.1}  {:<26} {}\n",
            st.index,
            st.name,
            st.volume_ml,
            mean,
            median,
            sd,
            min,
            max,
            format!("({:.1}, {:.1}, {:.1})", c[0], c[1], c[2]),
            if st.touches_border { "touches" } else { "" }
        ));
    }
    s
}
