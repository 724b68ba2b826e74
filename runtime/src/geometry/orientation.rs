//! Orientation codes and reorientation to canonical RAS+ by axis permutation
//! and flips only (no interpolation), with its exact inverse.

use ndarray::{Array3, ArrayView3, Axis};

use super::Affine;

/// Letters for the positive and negative direction of world x, y, z.
const LETTERS: [[char; 2]; 3] = [['R', 'L'], ['A', 'P'], ['S', 'I']];

/// How each voxel axis (i, j, k) lies in the world: which world axis it
/// follows most closely and whether it points the negative way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AxisMap {
    /// `world_of_voxel[v]` = world axis (0 = x/R, 1 = y/A, 2 = z/S) of voxel axis v.
    pub world_of_voxel: [usize; 3],
    /// `flip[v]`: voxel axis v points to L, P or I.
    pub flip: [bool; 3],
}

impl AxisMap {
    /// The closest axis assignment for an affine: voxel/world pairs are taken
    /// greedily by largest cosine, so oblique affines get the nearest
    /// orthogonal orientation (nnU-Net and TotalSegmentator also process
    /// oblique scans in voxel space).
    pub fn from_affine(affine: &Affine) -> AxisMap {
        let spacing = affine.spacing();
        let mut cos = [[0.0f64; 3]; 3]; // cos[v][w]
        for (v, row) in cos.iter_mut().enumerate() {
            let col = affine.column(v);
            for w in 0..3 {
                row[w] = if spacing[v] > 0.0 { col[w] / spacing[v] } else { 0.0 };
            }
        }
        let mut world_of_voxel = [usize::MAX; 3];
        let mut flip = [false; 3];
        let mut used_world = [false; 3];
        for _ in 0..3 {
            let mut best = (f64::NEG_INFINITY, 0, 0);
            for v in 0..3 {
                if world_of_voxel[v] != usize::MAX {
                    continue;
                }
                for w in 0..3 {
                    if !used_world[w] && cos[v][w].abs() > best.0 {
                        best = (cos[v][w].abs(), v, w);
                    }
                }
            }
            let (_, v, w) = best;
            world_of_voxel[v] = w;
            flip[v] = cos[v][w] < 0.0;
            used_world[w] = true;
        }
        AxisMap { world_of_voxel, flip }
    }

    /// Orientation code, e.g. `RAS`, `LPS`, `PLS`: the direction each voxel
    /// axis i, j, k points towards.
    pub fn code(&self) -> String {
        (0..3)
            .map(|v| LETTERS[self.world_of_voxel[v]][self.flip[v] as usize])
            .collect()
    }

    pub fn is_canonical(&self) -> bool {
        self.world_of_voxel == [0, 1, 2] && self.flip == [false; 3]
    }

    /// Voxel axis that follows world axis `w`.
    fn voxel_of_world(&self, w: usize) -> usize {
        (0..3).find(|&v| self.world_of_voxel[v] == w).expect("a permutation")
    }
}

/// Orientation code of an affine (e.g. `LAS`).
pub fn orientation_code(affine: &Affine) -> String {
    AxisMap::from_affine(affine).code()
}

/// A reorientation of one volume to RAS+, remembering how to undo it.
#[derive(Clone, Debug, PartialEq)]
pub struct Reorientation {
    pub map: AxisMap,
    /// The original array shape `[k, j, i]`.
    pub original_shape: [usize; 3],
}

impl Reorientation {
    pub fn new(affine: &Affine, original_shape: [usize; 3]) -> Reorientation {
        Reorientation {
            map: AxisMap::from_affine(affine),
            original_shape,
        }
    }

    /// The canonical array shape `[z, y, x]`.
    pub fn canonical_shape(&self) -> [usize; 3] {
        // Array axis a holds voxel axis 2 - a.
        [2, 1, 0].map(|w| self.original_shape[2 - self.map.voxel_of_world(w)])
    }

    /// Reorient a `[k][j][i]` array to `[z][y][x]` in RAS+.
    pub fn apply<T: Clone>(&self, a: ArrayView3<T>) -> Array3<T> {
        let axes = [2, 1, 0].map(|w| 2 - self.map.voxel_of_world(w));
        let mut view = a.permuted_axes(axes);
        for (c, w) in [2, 1, 0].into_iter().enumerate() {
            if self.map.flip[self.map.voxel_of_world(w)] {
                view.invert_axis(Axis(c));
            }
        }
        view.as_standard_layout().into_owned()
    }

    /// Map a `[z][y][x]` RAS+ array back to the original `[k][j][i]` layout.
    pub fn invert<T: Clone>(&self, a: ArrayView3<T>) -> Array3<T> {
        let mut view = a;
        for (c, w) in [2, 1, 0].into_iter().enumerate() {
            if self.map.flip[self.map.voxel_of_world(w)] {
                view.invert_axis(Axis(c));
            }
        }
        // Original array axis o holds voxel axis 2 - o, which lies along world
        // axis world_of_voxel[2 - o], found at canonical array axis 2 - that.
        let axes = [0, 1, 2].map(|o| 2 - self.map.world_of_voxel[2 - o]);
        view.permuted_axes(axes).as_standard_layout().into_owned()
    }

    /// The affine of the reoriented array, from the original affine.
    pub fn canonical_affine(&self, original: &Affine) -> Affine {
        // Canonical index along world axis w → original index along voxel
        // axis v = voxel_of_world(w): idx or (n_v - 1 - idx) when flipped.
        let mut p = Affine([[0.0; 4]; 4]);
        p.0[3][3] = 1.0;
        let n_of_voxel = [self.original_shape[2], self.original_shape[1], self.original_shape[0]];
        for w in 0..3 {
            let v = self.map.voxel_of_world(w);
            if self.map.flip[v] {
                p.0[v][w] = -1.0;
                p.0[v][3] = n_of_voxel[v] as f64 - 1.0;
            } else {
                p.0[v][w] = 1.0;
            }
        }
        original.mul(&p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    fn affine_from_columns(cols: [[f64; 3]; 3]) -> Affine {
        let mut a = Affine::IDENTITY;
        for c in 0..3 {
            for r in 0..3 {
                a.0[r][c] = cols[c][r];
            }
        }
        a.0[0][3] = 5.0;
        a.0[1][3] = -7.0;
        a.0[2][3] = 11.0;
        a
    }

    #[test]
    fn codes_of_common_orientations() {
        let ras = affine_from_columns([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
        let lps = affine_from_columns([[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]]);
        let pls = affine_from_columns([[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]);
        let asl = affine_from_columns([[0.0, 2.0, 0.0], [0.0, 0.0, 3.0], [-0.5, 0.0, 0.0]]);
        assert_eq!(orientation_code(&ras), "RAS");
        assert_eq!(orientation_code(&lps), "LPS");
        assert_eq!(orientation_code(&pls), "PLS");
        assert_eq!(orientation_code(&asl), "ASL");
    }

    #[test]
    fn oblique_takes_closest_axes() {
        let t = 20f64.to_radians();
        let a = affine_from_columns([[t.cos(), t.sin(), 0.0], [-t.sin(), t.cos(), 0.0], [0.0, 0.0, -1.0]]);
        assert_eq!(orientation_code(&a), "RAI");
    }

    fn numbered(shape: [usize; 3]) -> Array3<f32> {
        Array3::from_shape_fn(shape, |(a, b, c)| (a * 10000 + b * 100 + c) as f32)
    }

    #[test]
    fn reorientation_round_trips_and_keeps_world_positions() {
        let cases = [
            [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]],
            [[0.0, -1.2, 0.0], [-0.8, 0.0, 0.0], [0.0, 0.0, 2.5]],
            [[0.0, 0.0, -3.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]],
        ];
        for cols in cases {
            let affine = affine_from_columns(cols);
            let data = numbered([4, 5, 6]); // [k][j][i]
            let r = Reorientation::new(&affine, [4, 5, 6]);
            let canon = r.apply(data.view());
            assert_eq!(canon.shape(), &r.canonical_shape());
            let back = r.invert(canon.view());
            assert_eq!(back, data);
            // The same world point holds the same value.
            let ca = r.canonical_affine(&affine);
            assert_eq!(AxisMap::from_affine(&ca).code(), "RAS");
            for (idx, &v) in canon.indexed_iter() {
                let (z, y, x) = idx;
                let world = ca.apply([x as f64, y as f64, z as f64]);
                let k = (v as usize) / 10000;
                let j = (v as usize / 100) % 100;
                let i = v as usize % 100;
                let orig_world = affine.apply([i as f64, j as f64, k as f64]);
                for d in 0..3 {
                    assert!((world[d] - orig_world[d]).abs() < 1e-9);
                }
            }
        }
    }
}
