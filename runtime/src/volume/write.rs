//! Writing volumes as NIfTI-1 (`.nii` or `.nii.gz`), atomically: the data
//! goes to a temporary file in the destination directory, is synced, and is
//! renamed over the destination only when complete.

use std::path::Path;

use edge_seg_models::atomic;

use ndarray::ArrayView3;
use nifti::writer::WriterOptions;
use nifti::{DataElement, NiftiHeader};

use super::error::{Problem, VolumeError};

/// NIFTI_INTENT_LABEL: the voxel values are label indices.
const INTENT_LABEL: i16 = 1002;

/// The two file forms we write.
fn nifti_suffix(path: &Path) -> Option<&'static str> {
    let name = path.file_name()?.to_str()?;
    if name.ends_with(".nii.gz") {
        Some(".nii.gz")
    } else if name.ends_with(".nii") {
        Some(".nii")
    } else {
        None
    }
}

/// Check that `dest` can be written: a NIfTI suffix, an existing writable
/// directory, not a directory itself.
pub fn check_output_path(dest: &Path) -> Result<(), VolumeError> {
    if nifti_suffix(dest).is_none() {
        return Err(VolumeError::new(
            dest,
            Problem::Write("the output name must end in .nii or .nii.gz".into()),
        ));
    }
    check_output_location(dest)
}

/// Check a file can be created at `dest`: not a directory, in an existing,
/// writable directory.
pub fn check_output_location(dest: &Path) -> Result<(), VolumeError> {
    let err = |p| VolumeError::new(dest, p);
    if dest.is_dir() {
        return Err(err(Problem::Write("is a directory".into())));
    }
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(err(Problem::Write(format!(
            "directory {} does not exist",
            dir.display()
        ))));
    }
    let meta = std::fs::metadata(dir).map_err(|e| err(Problem::Write(e.to_string())))?;
    if meta.permissions().readonly() {
        return Err(err(Problem::Write(format!(
            "directory {} is not writable",
            dir.display()
        ))));
    }
    Ok(())
}

/// Refuse to write over the input scan.
pub fn check_not_input(input: &Path, output: &Path) -> Result<(), VolumeError> {
    let same = match (std::fs::canonicalize(input), std::fs::canonicalize(output)) {
        (Ok(a), Ok(b)) => a == b,
        _ => input == output,
    };
    if same {
        Err(VolumeError::new(output, Problem::OutputIsInput))
    } else {
        Ok(())
    }
}

/// Write a `[k][j][i]` array with `header` as reference (affine, codes,
/// units, orientation are kept; dims, datatype and scaling follow the data).
fn write_array<T: DataElement + bytemuck::Pod>(
    dest: &Path,
    data: ArrayView3<T>,
    header: &NiftiHeader,
) -> Result<(), VolumeError> {
    check_output_path(dest)?;
    let suffix = nifti_suffix(dest).unwrap_or(".nii");
    // The writer expects NIfTI axis order [i][j][k].
    let ijk = data.reversed_axes();
    // The nifti writer rewrites extensions, so the temporary name keeps ours.
    atomic::write_with(dest, suffix, |tmp| {
        WriterOptions::new(tmp).reference_header(header).write_nifti(&ijk)
    })
    .map_err(|e| VolumeError::new(dest, Problem::Write(e.to_string())))
}

/// Write a label map, `[k][j][i]`, with the geometry of `reference`
/// (normally the scan's own header). Values up to 255 are stored as uint8,
/// larger ones as uint16.
pub fn write_labels(dest: &Path, labels: ArrayView3<u16>, reference: &NiftiHeader) -> Result<(), VolumeError> {
    let max = labels.iter().copied().max().unwrap_or(0);
    let mut h = reference.clone();
    h.intent_code = INTENT_LABEL;
    h.cal_min = 0.0;
    h.cal_max = max as f32;
    h.dim[0] = 3;
    let _ = h.set_description_str("edge-seg label map");
    if max <= 255 {
        let small = labels.mapv(|v| v as u8);
        write_array(dest, small.view(), &h)
    } else {
        write_array(dest, labels, &h)
    }
}

/// Write an int16 image (e.g. CT in Hounsfield units), `[k][j][i]`, with
/// the geometry of `reference`.
pub fn write_i16(dest: &Path, data: ArrayView3<i16>, reference: &NiftiHeader) -> Result<(), VolumeError> {
    let mut h = reference.clone();
    h.intent_code = 0;
    let (lo, hi) = data
        .iter()
        .fold((i16::MAX, i16::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    h.cal_min = lo as f32;
    h.cal_max = hi as f32;
    h.dim[0] = 3;
    write_array(dest, data, &h)
}

/// Write a float volume, `[k][j][i]`, with the geometry of `reference`.
pub fn write_float(dest: &Path, data: ArrayView3<f32>, reference: &NiftiHeader) -> Result<(), VolumeError> {
    let mut h = reference.clone();
    h.intent_code = 0;
    let (lo, hi) = data
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    h.cal_min = if lo.is_finite() { lo } else { 0.0 };
    h.cal_max = if hi.is_finite() { hi } else { 0.0 };
    h.dim[0] = 3;
    write_array(dest, data, &h)
}
