//! `edge-seg info FILE|SERIES [--json]`: a NIfTI file, or a DICOM series
//! (a folder holding several lists them).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use edge_seg_runtime::dicom::{find_series, select_series, Series};
use edge_seg_runtime::geometry::orientation_code;
use edge_seg_runtime::memory::format_bytes;
use edge_seg_runtime::scan::{is_dicom, ScanHeader, Source};
use edge_seg_runtime::volume::{check_affine, read_volume, ReadOptions};

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// NIfTI-1 file (.nii or .nii.gz), or a DICOM series: a folder
    /// (searched recursively; several series in it are listed) or a file.
    pub file: PathBuf,
    /// The DICOM series to describe when the folder holds several (index
    /// from 1 or SeriesInstanceUID).
    #[arg(long)]
    pub series: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// One series in a listing.
fn series_json(index: usize, s: &Series) -> serde_json::Value {
    json!({
        "index": index,
        "series_instance_uid": s.uid,
        "modality": s.modality,
        "description": s.description,
        "series_number": s.number,
        "slices": s.frames.len(),
        "files": s.files(),
        "size": s.size(),
    })
}

pub fn run(args: &InfoArgs) -> Result<ExitCode> {
    if !is_dicom(&args.file) {
        return describe(args, read_volume(&args.file)?, None);
    }
    let all = find_series(std::slice::from_ref(&args.file))?;
    if all.len() > 1 && args.series.is_none() {
        if args.json {
            let list: Vec<_> = all.iter().enumerate().map(|(i, s)| series_json(i + 1, s)).collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({ "file": args.file.display().to_string(), "series": list }))?
            );
        } else {
            println!(
                "{}: {} DICOM image series (describe one with --series INDEX or UID)",
                args.file.display(),
                all.len()
            );
            for (i, s) in all.iter().enumerate() {
                println!("  {}: {} ({} files)", i + 1, s.describe(), s.files());
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let chosen = select_series(&all, args.series.as_deref(), &args.file)?;
    let header = ScanHeader::open(&args.file, Some(&chosen.uid))?;
    let scan = header.read(ReadOptions::default())?;
    let series = match &scan.source {
        Source::Dicom { series, .. } => Some(series_json(
            all.iter().position(|s| s.uid == series.uid).unwrap_or(0) + 1,
            series,
        )),
        Source::Nifti => None,
    };
    describe(args, scan.volume, series)
}

fn describe(
    args: &InfoArgs,
    vol: edge_seg_runtime::volume::Volume,
    series: Option<serde_json::Value>,
) -> Result<ExitCode> {
    let h = &vol.header;
    let shape = vol.shape_ijk();
    let spacing = vol.spacing();
    let stats = vol.stats();
    let nvox: u64 = shape.iter().map(|&s| s as u64).product();
    let f32_bytes = nvox * 4;
    let mut warnings = vol.warnings.clone();
    if let Err(problem) = check_affine(&vol.affine) {
        warnings.push(format!("geometry unusable for resampling or inference: {problem}"));
    }
    if stats.non_finite > 0 {
        warnings.push(format!("{} voxels are NaN or infinite", stats.non_finite));
    }
    let orientation = if vol.affine.is_finite() {
        orientation_code(&vol.affine)
    } else {
        "unknown".to_string()
    };
    let oblique = vol.affine.is_finite() && vol.affine.is_oblique(1e-4);
    let datatype = format!("{:?}", vol.datatype).to_lowercase();
    if args.json {
        let mut v = json!({
            "file": args.file.display().to_string(),
            "shape": shape,
            "datatype": datatype,
            "spacing_mm": spacing,
            "orientation": orientation,
            "oblique": oblique,
            "affine": vol.affine.rows(),
            "affine_source": vol.affine_source.name(),
            "sform_code": h.sform_code,
            "qform_code": h.qform_code,
            "scl_slope": h.scl_slope,
            "scl_inter": h.scl_inter,
            "min": if stats.min.is_finite() { Some(stats.min) } else { None },
            "max": if stats.max.is_finite() { Some(stats.max) } else { None },
            "mean": if stats.mean.is_finite() { Some(stats.mean) } else { None },
            "non_finite_voxels": stats.non_finite,
            "voxels": nvox,
            "memory_f32_bytes": f32_bytes,
            "warnings": warnings,
        });
        if let Some(s) = &series {
            v["dicom_series"] = s.clone();
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("file:         {}", args.file.display());
        if let Some(s) = &series {
            println!(
                "series:       {} {} \"{}\" ({} slices in {} files)",
                s["modality"].as_str().unwrap_or(""),
                s["series_instance_uid"].as_str().unwrap_or(""),
                s["description"].as_str().unwrap_or(""),
                s["slices"],
                s["files"]
            );
        }
        println!("shape:        {} x {} x {} (i, j, k)", shape[0], shape[1], shape[2]);
        println!("datatype:     {datatype}");
        println!(
            "spacing:      {:.4} x {:.4} x {:.4} mm",
            spacing[0], spacing[1], spacing[2]
        );
        println!(
            "orientation:  {orientation}{}",
            if oblique { " (oblique: nearest axes)" } else { "" }
        );
        if series.is_some() {
            println!("affine:       RAS, from {}", vol.affine_source.name());
        } else {
            println!(
                "affine:       from {} (sform_code {}, qform_code {})",
                vol.affine_source.name(),
                h.sform_code,
                h.qform_code
            );
        }
        for row in &vol.affine.rows()[..3] {
            println!(
                "              [{:10.4} {:10.4} {:10.4} {:10.4}]",
                row[0], row[1], row[2], row[3]
            );
        }
        if stats.min.is_finite() {
            println!("intensity:    {} .. {} (mean {:.3})", stats.min, stats.max, stats.mean);
        } else {
            println!("intensity:    no finite voxels");
        }
        println!("memory:       {} as float32 ({nvox} voxels)", format_bytes(f32_bytes));
        for w in &warnings {
            println!("warning:      {w}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
