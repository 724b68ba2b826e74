//! `edge-seg info FILE [--json]`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use edge_seg_runtime::geometry::orientation_code;
use edge_seg_runtime::memory::format_bytes;
use edge_seg_runtime::volume::{check_affine, read_volume};

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// NIfTI-1 file (.nii or .nii.gz).
    pub file: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &InfoArgs) -> Result<ExitCode> {
    let vol = read_volume(&args.file)?;
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
        let v = json!({
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
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("file:         {}", args.file.display());
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
        println!(
            "affine:       from {} (sform_code {}, qform_code {})",
            vol.affine_source.name(),
            h.sform_code,
            h.qform_code
        );
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
