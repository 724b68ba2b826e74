//! What `edge-seg infer` writes for a scan: the label map (`.seg.nii.gz`,
//! same geometry and header codes as the scan; or, for a DICOM series, a
//! DICOM Segmentation `.seg.dcm` referencing it), a colour table in 3D
//! Slicer's format (`.seg.ctbl`), a JSON report with per-structure volumes
//! and provenance (`.seg.json`), and optionally one NIfTI mask per structure.
//!
//! Every file is first written under a temporary name; they are renamed
//! into place together only when all are complete.

use std::path::{Path, PathBuf};

use edge_seg_models::atomic::{sync_dir_of, temp_path};
use edge_seg_models::labels::label_colour;
use serde::Serialize;

use crate::dicom::{build_seg, SegOptions};
use crate::infer::Segmentation;
use crate::model::Model;
use crate::scan::{Scan, Source};
pub use crate::statistics::StructureReport;
use crate::statistics::{border_warnings, structure_statistics};
use crate::volume::{check_not_input, check_output_location, check_output_path, write_labels, Problem, VolumeError};

/// How the label map is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputFormat {
    /// NIfTI on the scan's grid (`.seg.nii.gz`).
    Nifti,
    /// A DICOM Segmentation referencing the scan's series (`.seg.dcm`).
    DicomSeg,
}

impl OutputFormat {
    /// The suffix of default label-map names.
    pub fn suffix(self) -> &'static str {
        match self {
            OutputFormat::Nifti => ".nii.gz",
            OutputFormat::DicomSeg => ".dcm",
        }
    }
}

/// The files written for one scan.
#[derive(Clone, Debug, Serialize)]
pub struct OutputPaths {
    pub format: OutputFormat,
    pub labels: PathBuf,
    pub colour_table: PathBuf,
    pub report: PathBuf,
    /// One mask per structure written (`--split`): its label and path.
    pub masks: Vec<(u16, PathBuf)>,
}

/// Split `x.nii.gz` / `x.nii` / `x.dcm` into `x` and the suffix.
fn split_output_name(name: &str) -> (&str, &str) {
    for suffix in [".nii.gz", ".nii", ".dcm"] {
        if let Some(s) = name.strip_suffix(suffix) {
            return (s, suffix);
        }
    }
    (name, "")
}

/// Safe file-name form of a label.
fn file_label(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Output paths for `scan` (a file, or a DICOM series' folder): beside it
/// (`scan.seg.nii.gz` or `scan.seg.dcm`, ...), or based on `out` (a file
/// name, or a directory for several scans). With `split`, a NIfTI mask path
/// for each structure of `labels` (those of `structures` only, when given).
pub fn output_paths(
    scan: &Path,
    out: Option<&Path>,
    split: bool,
    labels: &[String],
    structures: Option<&[usize]>,
    format: OutputFormat,
) -> OutputPaths {
    let scan_name = scan.file_name().unwrap_or_default().to_string_lossy().to_string();
    let (scan_stem, _) = split_output_name(&scan_name);
    let default_name = format!("{scan_stem}.seg{}", format.suffix());
    let labels_path = match out {
        Some(o) if o.is_dir() => o.join(default_name),
        Some(o) => o.to_path_buf(),
        None => scan.with_file_name(default_name),
    };
    let name = labels_path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    let (stem, suffix) = split_output_name(&name);
    // Masks are NIfTI whatever the label map's format.
    let suffix = if suffix.starts_with(".nii") { suffix } else { ".nii.gz" };
    let masks = if split {
        labels
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(i, _)| structures.is_none_or(|s| s.contains(i)))
            .map(|(i, l)| {
                (
                    i as u16,
                    labels_path.with_file_name(format!("{stem}.{}{suffix}", file_label(l))),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    OutputPaths {
        format,
        colour_table: labels_path.with_file_name(format!("{stem}.ctbl")),
        report: labels_path.with_file_name(format!("{stem}.json")),
        labels: labels_path,
        masks,
    }
}

/// Where the result came from.
#[derive(Clone, Debug, Serialize)]
pub struct Provenance {
    pub model: String,
    pub task: String,
    pub weights_sha256: String,
    pub trained_on_synthetic_phantoms: bool,
    pub edge_seg_version: String,
    pub backend: String,
    pub tile: [usize; 3],
    pub tiles: usize,
    pub model_grid: [usize; 3],
    pub seconds: f64,
}

/// The JSON report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub scan: String,
    pub label_map: String,
    pub shape: [usize; 3],
    pub voxel_volume_mm3: f64,
    pub structures: Vec<StructureReport>,
    pub provenance: Provenance,
    /// The DICOM series segmented and the Segmentation written, for DICOM input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dicom: Option<DicomReport>,
    pub warnings: Vec<String>,
}

/// The DICOM side of a report.
#[derive(Clone, Debug, Serialize)]
pub struct DicomReport {
    pub series_instance_uid: String,
    pub modality: String,
    pub series_description: String,
    pub slices: usize,
    /// The Segmentation written (`--output-format dicom-seg`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segmentation: Option<SegmentationReport>,
}

/// A DICOM Segmentation written.
#[derive(Clone, Debug, Serialize)]
pub struct SegmentationReport {
    pub sop_instance_uid: String,
    pub series_instance_uid: String,
    pub frames: usize,
    /// Segment number and structure name of each segment.
    pub segments: Vec<(u16, String)>,
}

/// 3D Slicer colour table: `index name R G B A` per line.
pub fn colour_table(names: &[String]) -> String {
    let mut s = String::from("# edge-seg colour table: index name R G B A\n");
    for (i, n) in names.iter().enumerate() {
        let [r, g, b] = label_colour(n);
        let a = if i == 0 { 0 } else { 255 };
        s.push_str(&format!("{i} {} {r} {g} {b} {a}\n", file_label(n)));
    }
    s
}

/// Check the outputs can be written and none is the scan itself.
pub fn check_outputs(scan: &Path, paths: &OutputPaths) -> Result<(), VolumeError> {
    match paths.format {
        OutputFormat::Nifti => check_output_path(&paths.labels)?,
        OutputFormat::DicomSeg => {
            if !paths.labels.to_string_lossy().ends_with(".dcm") {
                return Err(VolumeError::new(
                    &paths.labels,
                    Problem::Write("a DICOM Segmentation's name must end in .dcm".into()),
                ));
            }
            check_output_location(&paths.labels)?;
        }
    }
    for (_, mask) in &paths.masks {
        check_output_path(mask)?;
    }
    for p in std::iter::once(&paths.labels).chain(paths.masks.iter().map(|(_, p)| p)) {
        check_not_input(scan, p)?;
    }
    for p in [&paths.colour_table, &paths.report] {
        check_not_input(scan, p)?;
    }
    Ok(())
}

/// Write every output for `seg`, all or nothing. With `structures`, the
/// report lists those labels only (the caller has cleared the others).
#[allow(clippy::too_many_arguments)]
pub fn write_outputs(
    scan: &Scan,
    seg: &Segmentation,
    model: &Model,
    backend: &str,
    paths: &OutputPaths,
    warnings: Vec<String>,
    structures: Option<&[usize]>,
) -> Result<Report, VolumeError> {
    let vol = &scan.volume;
    let scan_path = scan.path.as_path();
    check_outputs(scan_path, paths)?;
    let card = &model.card;
    let voxel_mm3 = vol.affine.det3().abs();
    let mut all = structure_statistics(&seg.labels, &vol.data, &vol.affine, &card.labels);
    if let Some(only) = structures {
        all.retain(|s| only.contains(&s.index));
    }
    let structures = all;
    let mut warnings = warnings;
    warnings.extend(border_warnings(&structures));
    let mut dicom = match &scan.source {
        Source::Nifti => None,
        Source::Dicom { series, layout } => Some(DicomReport {
            series_instance_uid: series.uid.clone(),
            modality: series.modality.clone(),
            series_description: series.description.clone(),
            slices: layout.order.len(),
            segmentation: None,
        }),
    };
    // The Segmentation object is built first: it can refuse (no structure found).
    let seg_object = match (paths.format, &scan.source) {
        (OutputFormat::Nifti, _) => None,
        (OutputFormat::DicomSeg, Source::Nifti) => {
            return Err(VolumeError::new(
                scan_path,
                Problem::Other("a DICOM Segmentation needs a DICOM series as input (this scan is NIfTI)".into()),
            ))
        }
        (OutputFormat::DicomSeg, Source::Dicom { series, layout }) => {
            let options = SegOptions {
                model: model.source.to_string(),
                series_description: format!("edge-seg {}", card.task),
                series_number: series.number.map(|n| n + 1000).unwrap_or(1000),
            };
            let (object, summary) = build_seg(&paths.labels, series, layout, seg.labels.view(), card, &options)?;
            if let Some(d) = dicom.as_mut() {
                d.segmentation = Some(SegmentationReport {
                    sop_instance_uid: summary.sop_instance_uid.clone(),
                    series_instance_uid: summary.series_instance_uid.clone(),
                    frames: summary.frames,
                    segments: summary
                        .segments
                        .iter()
                        .map(|&(n, l)| (n, card.labels[l as usize].clone()))
                        .collect(),
                });
            }
            Some(object)
        }
    };
    let report = Report {
        scan: scan_path.display().to_string(),
        label_map: paths.labels.display().to_string(),
        shape: vol.shape_ijk(),
        voxel_volume_mm3: voxel_mm3,
        structures,
        provenance: Provenance {
            model: model.source.to_string(),
            task: card.task.clone(),
            weights_sha256: card.weights_sha256.clone(),
            trained_on_synthetic_phantoms: card.provenance.synthetic_data,
            edge_seg_version: env!("CARGO_PKG_VERSION").to_string(),
            backend: backend.to_string(),
            tile: seg.tile,
            tiles: seg.tiles,
            model_grid: seg.model_grid,
            seconds: seg.seconds,
        },
        dicom,
        warnings,
    };
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    let result = (|| -> Result<(), VolumeError> {
        let werr = |p: &Path, e: std::io::Error| VolumeError::new(p, Problem::Write(e.to_string()));
        let stage_nifti = |dest: &Path| {
            let name = dest.file_name().unwrap_or_default().to_string_lossy().to_string();
            let (_, suffix) = split_output_name(&name);
            temp_path(dest, if suffix.starts_with(".nii") { suffix } else { ".nii.gz" })
        };
        match &seg_object {
            None => {
                let tmp = stage_nifti(&paths.labels);
                write_labels(&tmp, seg.labels.view(), &vol.header)?;
                staged.push((tmp, paths.labels.clone()));
            }
            Some(object) => {
                let tmp = temp_path(&paths.labels, "");
                staged.push((tmp.clone(), paths.labels.clone()));
                object
                    .write_to_file(&tmp)
                    .map_err(|e| VolumeError::new(&paths.labels, Problem::Write(crate::error_text::source_text(&e))))?;
            }
        }
        for (c, mask_path) in &paths.masks {
            let c = *c;
            let mask = seg.labels.mapv(|v| (v == c) as u16);
            let tmp = stage_nifti(mask_path);
            write_labels(&tmp, mask.view(), &vol.header)?;
            staged.push((tmp, mask_path.clone()));
        }
        let tmp = temp_path(&paths.colour_table, "");
        std::fs::write(&tmp, colour_table(&card.labels)).map_err(|e| werr(&paths.colour_table, e))?;
        staged.push((tmp, paths.colour_table.clone()));
        let tmp = temp_path(&paths.report, "");
        let json = serde_json::to_vec_pretty(&report).expect("report serialises");
        std::fs::write(&tmp, json).map_err(|e| werr(&paths.report, e))?;
        staged.push((tmp, paths.report.clone()));
        for (tmp, dest) in &staged {
            std::fs::File::open(tmp)
                .and_then(|f| f.sync_all())
                .map_err(|e| werr(dest, e))?;
        }
        for (tmp, dest) in &staged {
            std::fs::rename(tmp, dest).map_err(|e| werr(dest, e))?;
        }
        sync_dir_of(&paths.labels);
        Ok(())
    })();
    if result.is_err() {
        for (tmp, _) in &staged {
            let _ = std::fs::remove_file(tmp);
        }
    }
    result.map(|()| report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn paths_beside_the_scan() {
        let names: Vec<String> = ["background", "liver", "kidneys"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = output_paths(
            Path::new("/d/scan.nii.gz"),
            None,
            true,
            &names,
            None,
            OutputFormat::Nifti,
        );
        assert_eq!(p.labels, Path::new("/d/scan.seg.nii.gz"));
        assert_eq!(p.colour_table, Path::new("/d/scan.seg.ctbl"));
        assert_eq!(p.report, Path::new("/d/scan.seg.json"));
        assert_eq!(
            p.masks,
            vec![
                (1, PathBuf::from("/d/scan.seg.liver.nii.gz")),
                (2, PathBuf::from("/d/scan.seg.kidneys.nii.gz"))
            ]
        );
        let p = output_paths(
            Path::new("/d/scan.nii.gz"),
            None,
            true,
            &names,
            Some(&[2]),
            OutputFormat::Nifti,
        );
        assert_eq!(p.masks, vec![(2, PathBuf::from("/d/scan.seg.kidneys.nii.gz"))]);
        // A DICOM series' folder: the Segmentation beside it, masks in NIfTI.
        let p = output_paths(
            Path::new("/d/ct_series"),
            None,
            true,
            &names,
            Some(&[1]),
            OutputFormat::DicomSeg,
        );
        assert_eq!(p.labels, Path::new("/d/ct_series.seg.dcm"));
        assert_eq!(p.report, Path::new("/d/ct_series.seg.json"));
        assert_eq!(p.masks, vec![(1, PathBuf::from("/d/ct_series.seg.liver.nii.gz"))]);
        let o = output_paths(
            Path::new("/d/scan.nii"),
            Some(Path::new("/e/out.nii")),
            false,
            &names,
            None,
            OutputFormat::Nifti,
        );
        assert_eq!(o.labels, Path::new("/e/out.nii"));
        assert_eq!(o.report, Path::new("/e/out.json"));
    }

    #[test]
    fn colour_table_format() {
        let names: Vec<String> = ["background", "liver"].iter().map(|s| s.to_string()).collect();
        let t = colour_table(&names);
        assert!(t.contains("0 background 0 0 0 0\n"));
        assert!(t.contains("1 liver 221 130 101 255\n"));
    }

    #[test]
    fn volumes_in_ml() {
        let names: Vec<String> = ["background", "a"].iter().map(|s| s.to_string()).collect();
        let mut l = Array3::<u16>::zeros((10, 10, 10));
        l.slice_mut(ndarray::s![0..5, .., ..]).fill(1);
        let scan = Array3::<f32>::zeros((10, 10, 10));
        let affine = crate::geometry::Affine::from_spacing([2.0; 3], [0.0; 3]);
        let v = structure_statistics(&l, &scan, &affine, &names);
        assert_eq!(v[0].voxels, 500);
        assert!((v[0].volume_ml - 4.0).abs() < 1e-12);
    }
}
