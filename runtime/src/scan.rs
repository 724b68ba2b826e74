//! A scan as the user names it: a NIfTI file, or a DICOM series (a folder
//! searched recursively, or one file of a series). Opening reads headers
//! only (enough to plan memory); reading decodes the voxels.

use std::path::{Path, PathBuf};

use crate::dicom::layout::{layout, Layout};
use crate::dicom::{find_series, is_dicom_file, read_series, select_series, Series};
use crate::geometry::Affine;
use crate::volume::{self, ReadOptions, Volume, VolumeError};

/// Where a scan's voxels come from.
#[derive(Clone, Debug)]
pub enum Source {
    Nifti,
    /// A DICOM series and the placement of its frames.
    Dicom {
        series: Box<Series>,
        layout: Layout,
    },
}

/// A scan's geometry, before its voxels are read.
#[derive(Clone, Debug)]
pub struct ScanHeader {
    pub path: PathBuf,
    /// Voxels along i, j, k.
    pub shape: [usize; 3],
    pub affine: Affine,
    pub source: Source,
}

/// A scan read.
#[derive(Clone, Debug)]
pub struct Scan {
    pub path: PathBuf,
    pub volume: Volume,
    pub source: Source,
}

/// Whether `path` names DICOM rather than NIfTI: a folder with no NIfTI
/// file directly inside (a folder of NIfTI files is a batch), a file with
/// the DICOM marker, or any file not named `.nii` / `.nii.gz` (read as
/// DICOM, whose reader then says what it is not).
pub fn is_dicom(path: &Path) -> bool {
    if path.is_dir() {
        nifti_files_in(path).map(|v| v.is_empty()).unwrap_or(true)
    } else {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        is_dicom_file(path) || !(name.ends_with(".nii") || name.ends_with(".nii.gz")) && path.exists()
    }
}

/// Whether a file name is a NIfTI scan (not a label map we wrote).
pub fn is_nifti_scan_name(name: &str) -> bool {
    (name.ends_with(".nii") || name.ends_with(".nii.gz")) && !name.contains(".seg.")
}

/// The NIfTI scans directly inside `dir`, sorted by name.
pub fn nifti_files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|f| f.is_file() && is_nifti_scan_name(&f.file_name().unwrap_or_default().to_string_lossy()))
        .collect();
    found.sort();
    Ok(found)
}

impl ScanHeader {
    /// Read the headers of `path`; `series` chooses among several DICOM
    /// series (an index from 1 or a SeriesInstanceUID).
    pub fn open(path: &Path, series: Option<&str>) -> Result<ScanHeader, VolumeError> {
        if !is_dicom(path) {
            let info = volume::read_header(path)?;
            let (affine, _, _) = volume::header_affine(&info.header, info.shape);
            return Ok(ScanHeader {
                path: path.to_path_buf(),
                shape: info.shape,
                affine,
                source: Source::Nifti,
            });
        }
        let all = find_series(&[path.to_path_buf()])?;
        let chosen = select_series(&all, series, path)?.clone();
        let placed = layout(&chosen)?;
        Ok(ScanHeader {
            path: path.to_path_buf(),
            shape: placed.shape,
            affine: placed.affine,
            source: Source::Dicom {
                series: Box::new(chosen),
                layout: placed,
            },
        })
    }

    /// The DICOM series' modality (`CT`, `MR`, ...), `None` for NIfTI.
    pub fn modality(&self) -> Option<&str> {
        match &self.source {
            Source::Nifti => None,
            Source::Dicom { series, .. } => Some(series.modality.as_str()),
        }
    }

    /// Decode the voxels.
    pub fn read(self, options: ReadOptions) -> Result<Scan, VolumeError> {
        let volume = match &self.source {
            Source::Nifti => volume::read_volume_with(&self.path, options)?,
            Source::Dicom { series, layout } => read_series(series, layout, options)?,
        };
        Ok(Scan {
            path: self.path,
            volume,
            source: self.source,
        })
    }
}
