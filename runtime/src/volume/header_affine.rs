//! The voxel-to-world affine of a NIfTI-1 header, and the header fields that
//! encode an affine.
//!
//! Choice of affine, as nibabel makes it: the sform when `sform_code > 0`,
//! else the qform when `qform_code > 0`, else a diagonal affine from pixdim
//! (x flipped, centred on the volume). Odd qforms are repaired the way
//! nibabel repairs them on load: a qfac (`pixdim[0]`) other than ±1 is taken
//! as 1, negative pixdims by their absolute value. Nothing here panics.

use nifti::NiftiHeader;

use crate::geometry::Affine;

/// Which header fields the affine came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AffineSource {
    Sform,
    Qform,
    Pixdim,
    /// Built from a DICOM series (positions, orientation, pixel spacing).
    Dicom,
}

impl AffineSource {
    pub fn name(self) -> &'static str {
        match self {
            AffineSource::Sform => "sform",
            AffineSource::Qform => "qform",
            AffineSource::Pixdim => "pixdim (no sform or qform)",
            AffineSource::Dicom => "DICOM ImagePositionPatient, ImageOrientationPatient and PixelSpacing",
        }
    }
}

/// The header's affine, where it came from, and any repairs made.
pub fn header_affine(h: &NiftiHeader, shape: [usize; 3]) -> (Affine, AffineSource, Vec<String>) {
    let mut warnings = Vec::new();
    if h.sform_code > 0 {
        let r = [h.srow_x, h.srow_y, h.srow_z];
        let mut a = Affine::IDENTITY;
        for (row, src) in a.0.iter_mut().zip(r) {
            for c in 0..4 {
                row[c] = src[c] as f64;
            }
        }
        return (a, AffineSource::Sform, warnings);
    }
    let mut zooms = [h.pixdim[1] as f64, h.pixdim[2] as f64, h.pixdim[3] as f64];
    if zooms.iter().any(|z| *z < 0.0) {
        warnings.push(format!(
            "negative pixdim {:?}: using absolute values (as nibabel does)",
            &h.pixdim[1..4]
        ));
        zooms = zooms.map(f64::abs);
    }
    if h.qform_code > 0 {
        let mut qfac = h.pixdim[0] as f64;
        if qfac != 1.0 && qfac != -1.0 {
            if qfac != 0.0 {
                warnings.push(format!(
                    "qfac (pixdim[0]) is {qfac}, not ±1: taken as 1 (as nibabel does)"
                ));
            }
            qfac = 1.0;
        }
        let (b, c, d) = (h.quatern_b as f64, h.quatern_c as f64, h.quatern_d as f64);
        let r = quaternion_to_rotation(b, c, d);
        let scale = [zooms[0], zooms[1], zooms[2] * qfac];
        let mut a = Affine::IDENTITY;
        for (row, r_row) in a.0.iter_mut().zip(r) {
            for col in 0..3 {
                row[col] = r_row[col] * scale[col];
            }
        }
        a.0[0][3] = h.quatern_x as f64;
        a.0[1][3] = h.quatern_y as f64;
        a.0[2][3] = h.quatern_z as f64;
        return (a, AffineSource::Qform, warnings);
    }
    // nibabel's base affine: x flipped, origin at the volume centre.
    let z = [-zooms[0], zooms[1], zooms[2]];
    let mut a = Affine::IDENTITY;
    for r in 0..3 {
        a.0[r][r] = z[r];
        a.0[r][3] = -(shape[r] as f64 - 1.0) / 2.0 * z[r];
    }
    (a, AffineSource::Pixdim, warnings)
}

/// Rotation matrix of the unit quaternion (a, b, c, d) with a ≥ 0 filled in
/// from b, c, d (NIfTI-1's qform convention).
pub fn quaternion_to_rotation(b: f64, c: f64, d: f64) -> [[f64; 3]; 3] {
    let n2 = b * b + c * c + d * d;
    let (a, b, c, d) = if n2 > 1.0 {
        // Not a unit quaternion: normalise (b, c, d), a 180° rotation.
        let n = n2.sqrt();
        (0.0, b / n, c / n, d / n)
    } else {
        ((1.0 - n2).sqrt(), b, c, d)
    };
    [
        [
            a * a + b * b - c * c - d * d,
            2.0 * (b * c - a * d),
            2.0 * (b * d + a * c),
        ],
        [
            2.0 * (b * c + a * d),
            a * a + c * c - b * b - d * d,
            2.0 * (c * d - a * b),
        ],
        [
            2.0 * (b * d - a * c),
            2.0 * (c * d + a * b),
            a * a + d * d - c * c - b * b,
        ],
    ]
}

/// Quaternion (b, c, d) and qfac of the rotation part of an affine whose
/// columns are orthogonal (the closest rotation is used otherwise).
pub fn rotation_to_quaternion(affine: &Affine) -> ([f64; 3], f64) {
    let s = affine.spacing();
    let mut r = [[0.0; 3]; 3];
    for (row, arow) in r.iter_mut().zip(affine.0.iter()) {
        for c in 0..3 {
            row[c] = if s[c] > 0.0 { arow[c] / s[c] } else { 0.0 };
        }
    }
    let det = r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1]) - r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0])
        + r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
    let qfac = if det < 0.0 {
        for row in r.iter_mut() {
            row[2] = -row[2];
        }
        -1.0
    } else {
        1.0
    };
    // Shepperd's method on the (assumed orthonormal) matrix.
    let trace = r[0][0] + r[1][1] + r[2][2];
    let (a, b, c, d);
    if trace > 0.0 {
        let s = (trace + 1.0).sqrt() * 2.0;
        a = 0.25 * s;
        b = (r[2][1] - r[1][2]) / s;
        c = (r[0][2] - r[2][0]) / s;
        d = (r[1][0] - r[0][1]) / s;
    } else if r[0][0] > r[1][1] && r[0][0] > r[2][2] {
        let s = (1.0 + r[0][0] - r[1][1] - r[2][2]).sqrt() * 2.0;
        a = (r[2][1] - r[1][2]) / s;
        b = 0.25 * s;
        c = (r[0][1] + r[1][0]) / s;
        d = (r[0][2] + r[2][0]) / s;
    } else if r[1][1] > r[2][2] {
        let s = (1.0 + r[1][1] - r[0][0] - r[2][2]).sqrt() * 2.0;
        a = (r[0][2] - r[2][0]) / s;
        b = (r[0][1] + r[1][0]) / s;
        c = 0.25 * s;
        d = (r[1][2] + r[2][1]) / s;
    } else {
        let s = (1.0 + r[2][2] - r[0][0] - r[1][1]).sqrt() * 2.0;
        a = (r[1][0] - r[0][1]) / s;
        b = (r[0][2] + r[2][0]) / s;
        c = (r[1][2] + r[2][1]) / s;
        d = 0.25 * s;
    }
    // NIfTI stores a ≥ 0.
    let sign = if a < 0.0 { -1.0 } else { 1.0 };
    ([b * sign, c * sign, d * sign], qfac)
}

/// Store `affine` in both the sform and the qform of `h` (codes as given),
/// with pixdim set to the spacing.
pub fn set_header_affine(h: &mut NiftiHeader, affine: &Affine, sform_code: i16, qform_code: i16) {
    let m = affine.0;
    h.srow_x = [m[0][0] as f32, m[0][1] as f32, m[0][2] as f32, m[0][3] as f32];
    h.srow_y = [m[1][0] as f32, m[1][1] as f32, m[1][2] as f32, m[1][3] as f32];
    h.srow_z = [m[2][0] as f32, m[2][1] as f32, m[2][2] as f32, m[2][3] as f32];
    h.sform_code = sform_code;
    let ([b, c, d], qfac) = rotation_to_quaternion(affine);
    let s = affine.spacing();
    h.quatern_b = b as f32;
    h.quatern_c = c as f32;
    h.quatern_d = d as f32;
    h.quatern_x = m[0][3] as f32;
    h.quatern_y = m[1][3] as f32;
    h.quatern_z = m[2][3] as f32;
    h.qform_code = qform_code;
    h.pixdim[0] = qfac as f32;
    h.pixdim[1] = s[0] as f32;
    h.pixdim[2] = s[1] as f32;
    h.pixdim[3] = s[2] as f32;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rotated_affine() -> Affine {
        // 30° about z, then axis flip on k (LPS-like determinant sign).
        let (s, c) = (30f64.to_radians().sin(), 30f64.to_radians().cos());
        Affine([
            [c * 0.8, -s * 0.9, 0.0, 10.0],
            [s * 0.8, c * 0.9, 0.0, -20.0],
            [0.0, 0.0, -2.5, 30.0],
            [0.0, 0.0, 0.0, 1.0],
        ])
    }

    #[test]
    fn qform_round_trip_through_quaternion() {
        let a = rotated_affine();
        let mut h = NiftiHeader::default();
        set_header_affine(&mut h, &a, 0, 1);
        let (back, src, warnings) = header_affine(&h, [4, 4, 4]);
        assert_eq!(src, AffineSource::Qform);
        assert!(warnings.is_empty());
        assert!(back.max_abs_diff(&a) < 1e-5, "{back:?} vs {a:?}");
    }

    #[test]
    fn sform_wins_over_qform() {
        let a = rotated_affine();
        let mut h = NiftiHeader::default();
        set_header_affine(&mut h, &a, 1, 1);
        h.quatern_x = 999.0;
        let (back, src, _) = header_affine(&h, [4, 4, 4]);
        assert_eq!(src, AffineSource::Sform);
        assert!(back.max_abs_diff(&a) < 1e-5);
    }

    #[test]
    fn odd_qform_is_repaired_not_panicking() {
        let mut h = NiftiHeader::default();
        h.sform_code = 0;
        h.qform_code = 1;
        h.pixdim = [0.0, -2.0, 3.0, 4.0, 1.0, 1.0, 1.0, 1.0];
        h.quatern_b = 5.0; // not a unit quaternion
        let (a, src, warnings) = header_affine(&h, [4, 4, 4]);
        assert_eq!(src, AffineSource::Qform);
        assert!(a.is_finite());
        assert!(warnings.iter().any(|w| w.contains("negative pixdim")));
        let s = a.spacing();
        assert!((s[0] - 2.0).abs() < 1e-9 && (s[2] - 4.0).abs() < 1e-9);
    }

    #[test]
    fn pixdim_affine_matches_nibabel_base_affine() {
        let mut h = NiftiHeader::default();
        h.sform_code = 0;
        h.qform_code = 0;
        h.pixdim = [1.0, 2.0, 3.0, 4.0, 1.0, 1.0, 1.0, 1.0];
        let (a, src, _) = header_affine(&h, [10, 20, 30]);
        assert_eq!(src, AffineSource::Pixdim);
        assert_eq!(a.0[0], [-2.0, 0.0, 0.0, 9.0]);
        assert_eq!(a.0[1], [0.0, 3.0, 0.0, -28.5]);
        assert_eq!(a.0[2], [0.0, 0.0, 4.0, -58.0]);
    }
}
