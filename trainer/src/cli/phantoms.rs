//! `edge-seg-train phantoms`: synthetic data sets.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;
use edge_seg_models::card::Modality;
use edge_seg_models::labels::Task;
use edge_seg_models::Manifest;
use indicatif::{ProgressBar, ProgressStyle};

use crate::phantom::dataset::resolve;
use crate::phantom::preview::{write_montage, PreviewCase};
use crate::phantom::{generate, PhantomOptions};

#[derive(Debug, Args)]
pub struct PhantomsArgs {
    /// Output folder; the data set goes into OUT/DatasetNNN_Name/.
    #[arg(long)]
    pub out: PathBuf,
    /// Training cases.
    #[arg(long, default_value_t = 10)]
    pub cases: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// ct or mr.
    #[arg(long, default_value = "ct")]
    pub modality: String,
    /// A downstream task instead of the base structures:
    /// esophagus, vertebrae, lung-lobes or prostate (MR).
    #[arg(long)]
    pub task: Option<String>,
    /// Sparse base set: each training case annotates only its source's structures.
    #[arg(long)]
    pub sparse: bool,
    /// Fraction of sparse training cases that are complete.
    #[arg(long, default_value_t = 0.1)]
    pub complete_fraction: f64,
    /// With --sparse: label every structure in every case, keeping each case's
    /// source and field of view (the same images, annotated completely).
    #[arg(long)]
    pub label_all: bool,
    /// Label only these base structures (comma-separated names); the others
    /// become background.
    #[arg(long, value_delimiter = ',')]
    pub structures: Vec<String>,
    /// Complete validation cases, after the training cases.
    #[arg(long, default_value_t = 0)]
    pub val: usize,
    /// Complete test cases, after the validation cases.
    #[arg(long, default_value_t = 0)]
    pub test: usize,
    /// In-plane spacing range, mm.
    #[arg(long, default_value = "0.7-1.0")]
    pub inplane_mm: String,
    /// Slice spacing range, mm.
    #[arg(long, default_value = "1-5")]
    pub slice_mm: String,
    /// Orientations to draw from (comma-separated codes).
    #[arg(long, default_value = "LPS,RAS,LAS,RPS,LPI,PLS")]
    pub orientations: String,
    /// nnU-Net data set number (DatasetNNN_...).
    #[arg(long, default_value_t = 900)]
    pub id: u32,
    /// Data set name (default from the task).
    #[arg(long)]
    pub name: Option<String>,
    /// Also write a PNG montage of the first cases' mid-slices.
    #[arg(long)]
    pub preview: Option<PathBuf>,
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(a: &PhantomsArgs) -> Result<()> {
    let modality = Modality::parse(&a.modality)
        .ok_or_else(|| anyhow::anyhow!("--modality must be ct or mr, got {:?}", a.modality))?;
    let task = match &a.task {
        None => None,
        Some(t) => Some(Task::from_name(t).ok_or_else(|| {
            anyhow::anyhow!("unknown --task {t:?}: choose esophagus, vertebrae, lung-lobes or prostate")
        })?),
    };
    if !(0.0..=1.0).contains(&a.complete_fraction) {
        bail!("--complete-fraction must be between 0 and 1");
    }
    let orientations: Vec<String> = a.orientations.split(',').map(|s| s.trim().to_uppercase()).collect();
    for o in &orientations {
        if crate::phantom::render::parse_orientation(o).is_none() {
            bail!("invalid orientation code {o:?} (examples: RAS, LPS, PLS)");
        }
    }
    let opts = PhantomOptions {
        out: a.out.clone(),
        cases: a.cases,
        seed: a.seed,
        modality,
        task,
        sparse: a.sparse,
        complete_fraction: a.complete_fraction,
        label_all: a.label_all,
        structures: a.structures.iter().map(|s| s.trim().to_string()).collect(),
        val: a.val,
        test: a.test,
        inplane_mm: super::parse_range(&a.inplane_mm).map_err(anyhow::Error::msg)?,
        slice_mm: super::parse_range(&a.slice_mm).map_err(anyhow::Error::msg)?,
        orientations,
        dataset_id: a.id,
        name: a.name.clone(),
    };
    let bar = if a.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} cases, {elapsed}").unwrap());
    bar.set_message("generating");
    let start = Instant::now();
    let g = generate(&opts, |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "wrote {} cases to {} in {:.1} s ({:.2} cases/s, {:.1} Mvoxels/s)",
        g.cases,
        g.dir.display(),
        secs,
        g.cases as f64 / secs,
        g.voxels as f64 / secs / 1e6
    );
    println!("manifest: {}", g.manifest.display());
    if let Some(png) = &a.preview {
        let manifest = Manifest::from_json(&std::fs::read_to_string(&g.manifest)?)?;
        let paths: Vec<(String, PathBuf, PathBuf, String)> = manifest
            .cases
            .iter()
            .take(4)
            .map(|c| {
                let title = format!("{} ({}, {})", c.id, c.source, c.annotated.len());
                let label = resolve(&g.manifest, c.label.as_deref().unwrap_or_default());
                (title, resolve(&g.manifest, &c.image), label, c.source.clone())
            })
            .collect();
        let cases: Vec<PreviewCase> = paths
            .iter()
            .map(|(title, image, labels, source)| PreviewCase {
                title: title.clone(),
                image,
                labels,
                label_names: &manifest.vocabulary,
                lookup: manifest.source_lookup(source).unwrap_or_default(),
                mr: modality == Modality::MR,
            })
            .collect();
        write_montage(png, &cases)?;
        println!("preview: {}", png.display());
    }
    Ok(())
}
