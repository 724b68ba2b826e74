//! `edge-seg infer SCAN...`: segment scans and write label maps.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::model_args::ModelArgs;
use edge_seg_runtime::infer::{InferOptions, OutputResampling, Segmenter};
use edge_seg_runtime::memory::{format_bytes, parse_size};
use edge_seg_runtime::outputs::{check_outputs, output_paths, write_outputs, OutputFormat, Report};
use edge_seg_runtime::scan::{is_dicom, nifti_files_in, ScanHeader};
use edge_seg_runtime::volume::ReadOptions;

/// `--resampling`: [`OutputResampling`] as the command line spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Resampling {
    /// Interpolate the class scores to each scan voxel (smooth boundaries).
    Linear,
    /// Copy the model grid's labels (less memory, blocky boundaries).
    Nearest,
}

impl From<Resampling> for OutputResampling {
    fn from(r: Resampling) -> Self {
        match r {
            Resampling::Linear => OutputResampling::Linear,
            Resampling::Nearest => OutputResampling::Nearest,
        }
    }
}

/// `--output-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// NIfTI label map on the scan's grid.
    Nifti,
    /// DICOM Segmentation referencing the series (DICOM input only).
    DicomSeg,
}

#[derive(Debug, Args)]
pub struct InferArgs {
    /// Scans: NIfTI files (.nii or .nii.gz), folders of them (every .nii
    /// and .nii.gz file directly inside, the model loaded once), or DICOM
    /// series (a folder holding the series' files, searched recursively,
    /// or one file of it).
    #[arg(required = true)]
    pub scans: Vec<PathBuf>,
    /// The DICOM series to segment when a folder holds several: its index
    /// in `edge-seg info FOLDER`'s list (from 1) or its SeriesInstanceUID.
    #[arg(long)]
    pub series: Option<String>,
    /// Label map format: `nifti`, or `dicom-seg` (a DICOM Segmentation
    /// referencing the series; DICOM input only).
    #[arg(long, value_enum, default_value_t = Format::Nifti)]
    pub output_format: Format,
    /// Segment a DICOM series whose modality differs from the model's.
    #[arg(long)]
    pub force: bool,
    /// Output label map (one scan), or a directory for several (created
    /// when a folder is given); default SCAN.seg.nii.gz beside each scan.
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    /// Write and report only these structures (names or label indices,
    /// comma-separated); the others become background.
    #[arg(long, value_delimiter = ',')]
    pub structures: Vec<String>,
    /// Skip scans whose label map already exists (to continue an
    /// interrupted batch).
    #[arg(long)]
    pub skip_existing: bool,
    /// Also draw a PNG: axial, coronal and sagittal slices through the
    /// structures' centre with coloured overlays and a legend (a file for
    /// one scan, a directory for several: DIR/SCAN.seg.png).
    #[arg(long)]
    pub preview: Option<PathBuf>,
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
    #[arg(long, value_enum, default_value_t = Resampling::Linear)]
    pub resampling: Resampling,
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
    let scans = expand_folders(&a.scans)?;
    let folder_given = a.scans.iter().any(|p| p.is_dir() && !is_dicom(p));
    if let (Some(o), true) = (&a.out, folder_given) {
        if !o.is_dir() {
            std::fs::create_dir_all(o)
                .map_err(|e| anyhow::anyhow!("{}: cannot create the output folder: {e}", o.display()))?;
        }
    }
    if a.out.as_ref().is_some_and(|o| !o.is_dir()) && scans.len() > 1 {
        bail!("-o/--out must be an existing directory when segmenting several scans");
    }
    if a.preview.as_ref().is_some_and(|p| !p.is_dir()) && scans.len() > 1 {
        bail!("--preview must be an existing directory when segmenting several scans");
    }
    if !(0.0..1.0).contains(&a.overlap) {
        bail!("--overlap must be in [0, 1)");
    }
    let max_memory = match &a.model.max_memory {
        Some(s) => parse_size(s).map_err(anyhow::Error::msg)?,
        None => edge_seg_runtime::memory::default_budget(),
    };
    let loaded = a.model.load()?;
    let model = &loaded.model;
    let backend = loaded.backend.as_ref();
    let structures = select_structures(&a.structures, &model.card.labels, &model.source.to_string())?;
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
            resampling: a.resampling.into(),
        },
    };
    let mut reports: Vec<Report> = Vec::new();
    let mut failed = 0;
    let mut skipped = 0;
    for scan in &scans {
        if a.skip_existing {
            let paths = output_paths(
                scan,
                a.out.as_deref(),
                a.split,
                &model.card.labels,
                structures.as_deref(),
                a.output_format.into(),
            );
            if paths.labels.exists() {
                skipped += 1;
                if chatty {
                    eprintln!("{}: {} exists, skipped", scan.display(), paths.labels.display());
                }
                continue;
            }
        }
        match process_scan(&segmenter, scan, a, structures.as_deref(), chatty) {
            Ok(r) => reports.push(r),
            Err(e) => {
                failed += 1;
                eprintln!("edge-seg: error: {}", edge_seg_runtime::error_text::error_text(&e));
            }
        }
    }
    if chatty && scans.len() > 1 {
        eprintln!(
            "{} of {} scans segmented{}{}",
            reports.len(),
            scans.len(),
            if skipped > 0 {
                format!(", {skipped} skipped")
            } else {
                String::new()
            },
            if failed > 0 {
                format!(", {failed} failed")
            } else {
                String::new()
            }
        );
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    if failed > 0 {
        if scans.len() > 1 {
            eprintln!("edge-seg: {failed} of {} scans failed", scans.len());
        }
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The 1st and 99th percentiles of the finite voxels (the grey range of an
/// MR preview).
fn percentile_window(data: &ndarray::Array3<f32>) -> (f32, f32) {
    let mut v: Vec<f32> = data.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (0.0, 1.0);
    }
    v.sort_by(f32::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    let (lo, hi) = (at(0.01), at(0.99));
    if hi > lo {
        (lo, hi)
    } else {
        (lo, lo + 1.0)
    }
}

impl From<Format> for OutputFormat {
    fn from(f: Format) -> Self {
        match f {
            Format::Nifti => OutputFormat::Nifti,
            Format::DicomSeg => OutputFormat::DicomSeg,
        }
    }
}

/// The scans named: files and DICOM series' folders as given, folders of
/// NIfTI files replaced by the files directly inside them (sorted by name).
fn expand_folders(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut scans = Vec::new();
    for p in inputs {
        if !p.is_dir() {
            scans.push(p.clone());
            continue;
        }
        let found = nifti_files_in(p).map_err(|e| anyhow::anyhow!("{}: cannot read the folder: {e}", p.display()))?;
        if found.is_empty() {
            // A DICOM series (or nothing: reading it says so).
            scans.push(p.clone());
        }
        scans.extend(found);
    }
    Ok(scans)
}

/// Label indices named by `--structures` (names, case-insensitive, or
/// indices), `None` when the option is absent.
fn select_structures(asked: &[String], labels: &[String], model: &str) -> Result<Option<Vec<usize>>> {
    if asked.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for a in asked {
        let a = a.trim();
        let found = match a.parse::<usize>() {
            Ok(i) if i >= 1 && i < labels.len() => Some(i),
            Ok(_) => None,
            Err(_) => labels
                .iter()
                .position(|l| l.eq_ignore_ascii_case(a) || l.replace('_', " ").eq_ignore_ascii_case(a))
                .filter(|&i| i > 0),
        };
        match found {
            Some(i) if !out.contains(&i) => out.push(i),
            Some(_) => {}
            None => bail!(
                "--structures: {a:?} is not a structure of {model}; its structures are {}",
                labels
                    .iter()
                    .enumerate()
                    .skip(1)
                    .map(|(i, l)| format!("{i} {l}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
    out.sort();
    Ok(Some(out))
}

fn process_scan(
    s: &Segmenter,
    scan: &Path,
    a: &InferArgs,
    structures: Option<&[usize]>,
    chatty: bool,
) -> Result<Report> {
    let paths = output_paths(
        scan,
        a.out.as_deref(),
        a.split,
        &s.model.card.labels,
        structures,
        a.output_format.into(),
    );
    check_outputs(scan, &paths)?;
    let header = ScanHeader::open(scan, a.series.as_deref())?;
    if let Some(modality) = header.modality() {
        let expected = s.model.card.modality.to_string();
        if !modality.eq_ignore_ascii_case(&expected) && !a.force {
            bail!(
                "{}: the series is {modality}, the model {} segments {expected} scans (--force to run it anyway)",
                scan.display(),
                s.model.source
            );
        }
    } else if a.output_format == Format::DicomSeg {
        bail!(
            "{}: --output-format dicom-seg needs a DICOM series as input (this is a NIfTI file)",
            scan.display()
        );
    }
    let tile = s.plan_memory_for(scan, header.shape, &header.affine)?;
    let scan_data = header.read(ReadOptions {
        max_bytes: s.options.max_memory,
    })?;
    let vol = &scan_data.volume;
    let bar = if chatty {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} tiles {elapsed} (eta {eta})").unwrap());
    bar.set_message(scan.file_name().unwrap_or_default().to_string_lossy().to_string());
    let mut seg = s.segment(vol, scan, tile, &|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        true
    })?;
    bar.finish_and_clear();
    if let Some(keep) = structures {
        seg.labels
            .mapv_inplace(|l| if keep.contains(&(l as usize)) { l } else { 0 });
    }
    let mut warnings = vol.warnings.clone();
    if seg.non_finite > 0 {
        warnings.push(format!(
            "{} NaN or infinite voxels were replaced by the background value",
            seg.non_finite
        ));
    }
    let report = write_outputs(
        &scan_data,
        &seg,
        s.model,
        &s.backend.name(),
        &paths,
        warnings,
        structures,
    )?;
    if let Some(p) = &a.preview {
        let dest = if p.is_dir() {
            let stem = paths
                .labels
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            p.join(format!(
                "{}.png",
                stem.trim_end_matches(".dcm")
                    .trim_end_matches(".gz")
                    .trim_end_matches(".nii")
            ))
        } else {
            p.clone()
        };
        let window = match s.model.card.intensity {
            edge_seg_models::card::Intensity::Window { min, max, .. } => (min, max),
            edge_seg_models::card::Intensity::ZScore => percentile_window(&vol.data),
        };
        let pv = edge_seg_runtime::preview::render(vol, &seg.labels, &s.model.card.labels, window);
        edge_seg_runtime::preview::write_png(&dest, &pv.picture)?;
        if chatty {
            eprintln!("  preview {}", dest.display());
        }
    }
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
