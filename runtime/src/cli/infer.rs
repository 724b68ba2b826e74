//! `edge-seg infer SCAN...`: segment scans and write label maps.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::model_args::ModelArgs;
use crate::infer::{InferOptions, OutputResampling, Segmenter};
use crate::memory::{format_bytes, parse_size};
use crate::outputs::{check_outputs, output_paths, write_outputs, Report};
use crate::volume::{read_volume_with, ReadOptions};

#[derive(Debug, Args)]
pub struct InferArgs {
    /// NIfTI scans (.nii or .nii.gz).
    #[arg(required = true)]
    pub scans: Vec<PathBuf>,
    /// Output label map (one scan), or an existing directory for several;
    /// default SCAN.seg.nii.gz beside each scan.
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Crop to the body before inference: `body`.
    #[arg(long)]
    pub roi: Option<String>,
    /// Also write one mask file per structure.
    #[arg(long)]
    pub split: bool,
    /// Keep only the largest connected component of each structure.
    #[arg(long)]
    pub largest_component: bool,
    /// Fill holes enclosed by a structure.
    #[arg(long)]
    pub fill_holes: bool,
    /// Test-time augmentation: average over the 8 axis mirrorings (8x slower).
    #[arg(long)]
    pub tta: bool,
    /// How the result reaches the scan's grid: `linear` interpolates the
    /// class scores to each scan voxel (smooth boundaries); `nearest`
    /// copies the model grid's labels (less memory, blocky boundaries).
    #[arg(long, value_enum, default_value_t = OutputResampling::Linear)]
    pub resampling: OutputResampling,
    /// Overlap of blended tiles (same-padded models).
    #[arg(long, default_value_t = 0.5)]
    pub overlap: f64,
    /// No progress bar or summary.
    #[arg(long)]
    pub quiet: bool,
    /// Print the reports as JSON on standard output.
    #[arg(long)]
    pub json: bool,
    /// More detail (backend, tile plan).
    #[arg(short, long)]
    pub verbose: bool,
}

pub fn run(a: &InferArgs) -> Result<ExitCode> {
    let crop = match a.roi.as_deref() {
        None => false,
        Some("body") => true,
        Some(other) => bail!("--roi {other:?}: the only region is `body`"),
    };
    if a.out.as_ref().is_some_and(|o| !o.is_dir()) && a.scans.len() > 1 {
        bail!("-o/--out must be an existing directory when segmenting several scans");
    }
    if !(0.0..1.0).contains(&a.overlap) {
        bail!("--overlap must be in [0, 1)");
    }
    let max_memory = match &a.model.max_memory {
        Some(s) => parse_size(s).map_err(anyhow::Error::msg)?,
        None => crate::memory::default_budget(),
    };
    let loaded = a.model.load()?;
    let model = &loaded.model;
    let backend = loaded.backend.as_ref();
    let chatty = !a.quiet && !a.json;
    if chatty {
        eprintln!("model: {} — {}", model.source, model.describe());
        if model.card.provenance.synthetic_data {
            eprintln!("note: this model was trained on synthetic phantoms, not on patient scans; use it to try edge-seg, not for diagnosis");
        }
        if a.verbose {
            eprintln!(
                "backend: {}; memory budget {}",
                backend.name(),
                format_bytes(max_memory)
            );
        }
    }
    let segmenter = Segmenter {
        model,
        backend,
        options: InferOptions {
            max_memory,
            tile: a.model.tile,
            roi_body: crop,
            tta: a.tta,
            largest_component: a.largest_component,
            fill_holes: a.fill_holes,
            overlap: a.overlap,
            parallel_tiles: loaded.parallel_tiles,
            resampling: a.resampling,
        },
    };
    let mut reports: Vec<Report> = Vec::new();
    let mut failed = 0;
    for scan in &a.scans {
        match segment_one(&segmenter, scan, a, chatty) {
            Ok(r) => reports.push(r),
            Err(e) => {
                failed += 1;
                eprintln!("edge-seg: error: {}", super::error_text::error_text(&e));
            }
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    if failed > 0 {
        if a.scans.len() > 1 {
            eprintln!("edge-seg: {failed} of {} scans failed", a.scans.len());
        }
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn segment_one(s: &Segmenter, scan: &Path, a: &InferArgs, chatty: bool) -> Result<Report> {
    let paths = output_paths(scan, a.out.as_deref(), a.split, &s.model.card.labels);
    check_outputs(scan, &paths)?;
    let tile = s.plan_memory(scan)?;
    let vol = read_volume_with(
        scan,
        ReadOptions {
            max_bytes: s.options.max_memory,
        },
    )?;
    let bar = if chatty {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} tiles {elapsed} (eta {eta})").unwrap());
    bar.set_message(scan.file_name().unwrap_or_default().to_string_lossy().to_string());
    let seg = s.segment(&vol, scan, tile, &|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        true
    })?;
    bar.finish_and_clear();
    let mut warnings = vol.warnings.clone();
    if seg.non_finite > 0 {
        warnings.push(format!(
            "{} NaN or infinite voxels were replaced by the background value",
            seg.non_finite
        ));
    }
    let report = write_outputs(scan, &vol, &seg, s.model, &s.backend.name(), &paths, warnings)?;
    if chatty {
        eprintln!(
            "{} → {} ({:.1} s, {} tiles of {:?}, model grid {:?})",
            scan.display(),
            paths.labels.display(),
            seg.seconds,
            seg.tiles,
            seg.tile,
            seg.model_grid
        );
        let unit = match s.model.card.modality {
            edge_seg_models::card::Modality::CT => " HU",
            _ => "",
        };
        for st in report.structures.iter().filter(|st| st.voxels > 0) {
            let mean = st
                .intensity
                .as_ref()
                .map(|i| format!("  mean {:.0}{unit}", i.mean))
                .unwrap_or_default();
            eprintln!("  {:>3} {:<22} {:>10.1} mL{mean}", st.index, st.name, st.volume_ml);
        }
        for w in &report.warnings {
            eprintln!("  warning: {w}");
        }
    }
    Ok(report)
}
