//! A 4x4 voxel-to-world affine (world = RAS+ millimetres, as in NIfTI).

use std::fmt;

/// Row-major 4x4 affine mapping voxel indices `(i, j, k, 1)` to world
/// coordinates `(x, y, z, 1)` in RAS+ millimetres.
#[derive(Clone, Copy, PartialEq)]
pub struct Affine(pub [[f64; 4]; 4]);

impl fmt::Debug for Affine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for row in &self.0 {
            writeln!(f, "[{:10.4} {:10.4} {:10.4} {:10.4}]", row[0], row[1], row[2], row[3])?;
        }
        Ok(())
    }
}

impl Affine {
    pub const IDENTITY: Affine = Affine([
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ]);

    /// A diagonal affine with the given spacing and origin.
    pub fn from_spacing(spacing: [f64; 3], origin: [f64; 3]) -> Affine {
        let mut a = Affine::IDENTITY;
        for r in 0..3 {
            a.0[r][r] = spacing[r];
            a.0[r][3] = origin[r];
        }
        a
    }

    /// Column `c` of the 3x3 part: the world step of one voxel along axis `c`.
    pub fn column(&self, c: usize) -> [f64; 3] {
        [self.0[0][c], self.0[1][c], self.0[2][c]]
    }

    pub fn translation(&self) -> [f64; 3] {
        [self.0[0][3], self.0[1][3], self.0[2][3]]
    }

    /// Voxel spacing along i, j, k: the column norms of the 3x3 part.
    pub fn spacing(&self) -> [f64; 3] {
        [0, 1, 2].map(|c| {
            let v = self.column(c);
            (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt()
        })
    }

    pub fn is_finite(&self) -> bool {
        self.0.iter().flatten().all(|v| v.is_finite())
    }

    pub fn mul(&self, other: &Affine) -> Affine {
        let mut out = [[0.0; 4]; 4];
        for (r, row) in out.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = (0..4).map(|k| self.0[r][k] * other.0[k][c]).sum();
            }
        }
        Affine(out)
    }

    /// Apply to a point given in voxel coordinates.
    pub fn apply(&self, p: [f64; 3]) -> [f64; 3] {
        let m = &self.0;
        [0, 1, 2].map(|r| m[r][0] * p[0] + m[r][1] * p[1] + m[r][2] * p[2] + m[r][3])
    }

    /// Determinant of the 3x3 part.
    pub fn det3(&self) -> f64 {
        let m = &self.0;
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    }

    /// Largest absolute difference between entries.
    pub fn max_abs_diff(&self, other: &Affine) -> f64 {
        self.0
            .iter()
            .flatten()
            .zip(other.0.iter().flatten())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    }

    /// True when the 3x3 part has off-diagonal terms after axis permutation,
    /// i.e. the voxel axes are not aligned with the world axes.
    pub fn is_oblique(&self, tolerance: f64) -> bool {
        (0..3).any(|c| {
            let v = self.column(c);
            let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
            if n == 0.0 {
                return false;
            }
            let max = v.iter().map(|x| x.abs()).fold(0.0, f64::max);
            1.0 - max / n > tolerance
        })
    }

    pub fn rows(&self) -> [[f64; 4]; 4] {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spacing_is_column_norms() {
        let a = Affine([
            [0.0, 0.0, 3.0, 1.0],
            [-2.0, 0.0, 0.0, 2.0],
            [0.0, 0.6, 0.8, 3.0],
            [0.0, 0.0, 0.0, 1.0],
        ]);
        let s = a.spacing();
        assert!((s[0] - 2.0).abs() < 1e-12);
        assert!((s[1] - 0.6).abs() < 1e-12);
        assert!((s[2] - (9.0f64 + 0.64).sqrt()).abs() < 1e-12);
        assert!(a.is_oblique(1e-3));
        assert!(!Affine::from_spacing([1.0, 2.0, 3.0], [0.0; 3]).is_oblique(1e-6));
    }

    #[test]
    fn mul_and_apply_agree() {
        let a = Affine::from_spacing([2.0, 3.0, 4.0], [10.0, 20.0, 30.0]);
        let b = Affine::from_spacing([0.5, 1.0, 1.0], [1.0, 0.0, 0.0]);
        let ab = a.mul(&b);
        let p = [1.0, 2.0, 3.0];
        assert_eq!(ab.apply(p), a.apply(b.apply(p)));
        assert_eq!(a.det3(), 24.0);
    }
}
