//! Medical volumes: f32 voxels, the voxel-to-world affine, and the source
//! header kept for writing results back onto the same grid.
//!
//! Array convention: `data` is indexed `[k][j][i]` (i fastest, the memory
//! order of the NIfTI file), so after reorientation to RAS+ it is indexed
//! `[z][y][x]` as the network expects.

mod error;
mod header_affine;
mod read;
mod write;

use std::path::Path;

use ndarray::Array3;
use nifti::{NiftiHeader, NiftiType};

pub use error::{Problem, VolumeError};
pub use header_affine::{
    header_affine, quaternion_to_rotation, rotation_to_quaternion, set_header_affine, AffineSource,
};
pub use read::{
    read_header, read_volume, read_volume_bytes, read_volume_with, HeaderInfo, ReadOptions, NIFTI1_HEADER_BYTES,
};
pub use write::{check_not_input, check_output_location, check_output_path, write_float, write_i16, write_labels};

use crate::geometry::Affine;

/// NIfTI code for millimetre spatial units.
const UNITS_MM: u8 = 2;

/// A 3D volume.
#[derive(Clone, Debug)]
pub struct Volume {
    /// Voxels indexed `[k][j][i]`.
    pub data: Array3<f32>,
    /// Voxel `(i, j, k)` → world RAS+ mm.
    pub affine: Affine,
    /// The source header (or one made for this volume), used when writing.
    pub header: NiftiHeader,
    /// The datatype the voxels were stored as.
    pub datatype: NiftiType,
    pub affine_source: AffineSource,
    /// Repairs and notes made while reading.
    pub warnings: Vec<String>,
}

/// Summary statistics of the voxel values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub min: f32,
    pub max: f32,
    pub mean: f64,
    /// Count of NaN and infinite voxels (excluded from min/max/mean).
    pub non_finite: u64,
}

impl Volume {
    /// A float volume on `affine` with a header made for it (sform and qform
    /// both set, scanner coordinates, millimetres).
    pub fn from_array(data: Array3<f32>, affine: Affine) -> Volume {
        let header = header_for(&affine, data.dim());
        Volume {
            data,
            affine,
            header,
            datatype: NiftiType::Float32,
            affine_source: AffineSource::Sform,
            warnings: Vec::new(),
        }
    }

    /// Voxels along i, j, k.
    pub fn shape_ijk(&self) -> [usize; 3] {
        crate::geometry::ijk_of_dim(self.data.dim())
    }

    /// Spacing along i, j, k (mm): the affine's column norms.
    pub fn spacing(&self) -> [f64; 3] {
        self.affine.spacing()
    }

    /// Refuse geometry that cannot be resampled or mapped back: non-finite
    /// affine, zero or NaN spacing, a singular affine.
    pub fn check_geometry(&self, path: &Path) -> Result<(), VolumeError> {
        check_affine(&self.affine).map_err(|m| VolumeError::new(path, Problem::Geometry(m)))
    }

    pub fn stats(&self) -> Stats {
        use rayon::prelude::*;
        // (min, max, sum, finite count, non-finite count) of a run of voxels.
        type Part = (f32, f32, f64, u64, u64);
        let part = |values: &[f32]| -> Part {
            let mut p: Part = (f32::INFINITY, f32::NEG_INFINITY, 0.0, 0, 0);
            for &v in values {
                if v.is_finite() {
                    p.0 = p.0.min(v);
                    p.1 = p.1.max(v);
                    p.2 += v as f64;
                    p.3 += 1;
                } else {
                    p.4 += 1;
                }
            }
            p
        };
        let merge = |a: Part, b: Part| -> Part { (a.0.min(b.0), a.1.max(b.1), a.2 + b.2, a.3 + b.3, a.4 + b.4) };
        let empty: Part = (f32::INFINITY, f32::NEG_INFINITY, 0.0, 0, 0);
        let (min, max, sum, n, non_finite) = match self.data.as_slice() {
            Some(all) => all.par_chunks(1 << 16).map(part).reduce(|| empty, merge),
            None => part(&self.data.iter().copied().collect::<Vec<f32>>()),
        };
        Stats {
            min,
            max,
            mean: if n > 0 { sum / n as f64 } else { f64::NAN },
            non_finite,
        }
    }

    /// Write as float32 NIfTI with this volume's header and affine.
    pub fn write_float(&self, dest: &Path) -> Result<(), VolumeError> {
        write_float(dest, self.data.view(), &self.header_with_own_affine())
    }

    /// This volume's header with its current affine stored in it (sform and
    /// qform, keeping the header's codes when they are set).
    pub fn header_with_own_affine(&self) -> NiftiHeader {
        let mut h = self.header.clone();
        let sform = if h.sform_code > 0 { h.sform_code } else { 1 };
        let qform = if h.qform_code > 0 { h.qform_code } else { 1 };
        set_header_affine(&mut h, &self.affine, sform, qform);
        h
    }
}

/// Why an affine cannot serve for resampling, or `Ok`.
pub fn check_affine(a: &Affine) -> Result<(), String> {
    let s = a.spacing();
    if s.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
        return Err(format!(
            "voxel spacing {:.4} x {:.4} x {:.4} mm: every spacing must be finite and > 0",
            s[0], s[1], s[2]
        ));
    }
    if !a.is_finite() {
        return Err("the affine contains NaN or infinite values".into());
    }
    if a.det3().abs() < 1e-12 * s[0] * s[1] * s[2] {
        return Err("the affine is singular (voxel axes are not independent)".into());
    }
    Ok(())
}

/// A NIfTI-1 header for a float volume of shape `(k, j, i)` on `affine`.
pub fn header_for(affine: &Affine, dim: (usize, usize, usize)) -> NiftiHeader {
    let mut h = NiftiHeader {
        datatype: NiftiType::Float32 as i16,
        bitpix: 32,
        xyzt_units: UNITS_MM,
        scl_slope: 1.0,
        scl_inter: 0.0,
        magic: *b"n+1\0",
        ..NiftiHeader::default()
    };
    h.dim = [3, dim.2 as u16, dim.1 as u16, dim.0 as u16, 1, 1, 1, 1];
    set_header_affine(&mut h, affine, 1, 1);
    h
}

#[cfg(test)]
mod tests;
