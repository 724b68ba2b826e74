//! Resampling between a volume's grid and a target spacing: trilinear for
//! images and class scores, nearest for labels, and the exact inverse
//! mapping back.
//!
//! Shapes and spacings are in array order `[d0, d1, d2]` (`[z, y, x]` for a
//! canonical volume). The target grid covers the same extent as the source:
//! `n' = round(n · s / s')`, and output voxel `o` samples the source at
//! `(o + 0.5) · n / n' − 0.5`, so both grids share their outer faces. The
//! inverse maps source voxel `i` to `(i + 0.5) · n' / n − 0.5`.

use ndarray::parallel::prelude::*;
use ndarray::{Array3, ArrayView3, ArrayView4, Axis};

use super::Affine;

/// A mapping between a source grid and a resampled grid.
#[derive(Clone, Debug, PartialEq)]
pub struct ResampleGrid {
    pub source_shape: [usize; 3],
    pub target_shape: [usize; 3],
}

impl ResampleGrid {
    /// The grid with (close to) `target_spacing` covering the same extent.
    pub fn to_spacing(source_shape: [usize; 3], source_spacing: [f64; 3], target_spacing: [f64; 3]) -> ResampleGrid {
        let target_shape = [0, 1, 2]
            .map(|d| ((source_shape[d] as f64 * source_spacing[d] / target_spacing[d]).round() as usize).max(1));
        ResampleGrid {
            source_shape,
            target_shape,
        }
    }

    pub fn identity(shape: [usize; 3]) -> ResampleGrid {
        ResampleGrid {
            source_shape: shape,
            target_shape: shape,
        }
    }

    pub fn is_identity(&self) -> bool {
        self.source_shape == self.target_shape
    }

    /// Source index units per target voxel, per axis.
    pub fn scale(&self) -> [f64; 3] {
        [0, 1, 2].map(|d| self.source_shape[d] as f64 / self.target_shape[d] as f64)
    }

    /// The spacing the target grid really has.
    pub fn target_spacing(&self, source_spacing: [f64; 3]) -> [f64; 3] {
        let s = self.scale();
        [0, 1, 2].map(|d| source_spacing[d] * s[d])
    }

    /// The affine of the target grid, given the source affine (which maps
    /// `(i, j, k)` = array axes `(2, 1, 0)`).
    pub fn target_affine(&self, source: &Affine) -> Affine {
        let s = self.scale();
        // Target voxel index (i', j', k') → source index: (o + 0.5)·s − 0.5.
        let mut m = Affine::IDENTITY;
        for v in 0..3 {
            let d = 2 - v;
            m.0[v][v] = s[d];
            m.0[v][3] = 0.5 * s[d] - 0.5;
        }
        source.mul(&m)
    }

    /// The inverse grid (target → source).
    pub fn inverse(&self) -> ResampleGrid {
        ResampleGrid {
            source_shape: self.target_shape,
            target_shape: self.source_shape,
        }
    }
}

/// Source coordinate sampled by target index `o` along one axis.
#[inline]
fn source_coord(o: usize, scale: f64) -> f64 {
    (o as f64 + 0.5) * scale - 0.5
}

/// Linear interpolation weights along one axis: for each target index, the
/// lower source index and the weight of the upper one (edges clamped).
fn linear_taps(n_src: usize, n_dst: usize) -> Vec<(usize, usize, f32)> {
    let scale = n_src as f64 / n_dst as f64;
    (0..n_dst)
        .map(|o| {
            let x = source_coord(o, scale).clamp(0.0, (n_src - 1) as f64);
            let lo = x.floor() as usize;
            let hi = (lo + 1).min(n_src - 1);
            (lo, hi, (x - lo as f64) as f32)
        })
        .collect()
}

/// [`linear_taps`] along each of a grid's three axes.
fn grid_linear_taps(grid: &ResampleGrid) -> Vec<Vec<(usize, usize, f32)>> {
    (0..3)
        .map(|d| linear_taps(grid.source_shape[d], grid.target_shape[d]))
        .collect()
}

/// Nearest source index for each target index along one axis.
fn nearest_taps(n_src: usize, n_dst: usize) -> Vec<usize> {
    let scale = n_src as f64 / n_dst as f64;
    (0..n_dst)
        .map(|o| {
            let x = source_coord(o, scale);
            // Round half up, then clamp to the grid.
            ((x + 0.5).floor().max(0.0) as usize).min(n_src - 1)
        })
        .collect()
}

/// Trilinear resampling of an image onto `grid.target_shape`.
pub fn resample_linear(src: ArrayView3<f32>, grid: &ResampleGrid) -> Array3<f32> {
    assert_eq!(src.shape(), &grid.source_shape, "source shape");
    if grid.is_identity() {
        return src.to_owned();
    }
    let [t0, t1, t2] = grid.target_shape;
    let taps = grid_linear_taps(grid);
    let mut out = Array3::<f32>::zeros((t0, t1, t2));
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(z, mut plane)| {
            let (z0, z1, wz) = taps[0][z];
            for (y, &(y0, y1, wy)) in taps[1].iter().enumerate() {
                for (x, &(x0, x1, wx)) in taps[2].iter().enumerate() {
                    let c = |a, b, c| src[[a, b, c]];
                    let l00 = c(z0, y0, x0) * (1.0 - wx) + c(z0, y0, x1) * wx;
                    let l01 = c(z0, y1, x0) * (1.0 - wx) + c(z0, y1, x1) * wx;
                    let l10 = c(z1, y0, x0) * (1.0 - wx) + c(z1, y0, x1) * wx;
                    let l11 = c(z1, y1, x0) * (1.0 - wx) + c(z1, y1, x1) * wx;
                    let l0 = l00 * (1.0 - wy) + l01 * wy;
                    let l1 = l10 * (1.0 - wy) + l11 * wy;
                    plane[[y, x]] = l0 * (1.0 - wz) + l1 * wz;
                }
            }
        });
    out
}

/// Nearest-neighbour resampling (labels) onto `grid.target_shape`.
pub fn resample_nearest<T: Copy + Send + Sync + Default>(src: ArrayView3<T>, grid: &ResampleGrid) -> Array3<T> {
    assert_eq!(src.shape(), &grid.source_shape, "source shape");
    if grid.is_identity() {
        return src.to_owned();
    }
    let [t0, t1, t2] = grid.target_shape;
    let taps: Vec<Vec<usize>> = (0..3)
        .map(|d| nearest_taps(grid.source_shape[d], grid.target_shape[d]))
        .collect();
    let mut out = Array3::<T>::default((t0, t1, t2));
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(z, mut plane)| {
            let sz = taps[0][z];
            for (y, &sy) in taps[1].iter().enumerate() {
                for (x, &sx) in taps[2].iter().enumerate() {
                    plane[[y, x]] = src[[sz, sy, sx]];
                }
            }
        });
    out
}

/// Trilinear resampling of class scores `[C, d0, d1, d2]` (on
/// `grid.source_shape`) onto `grid.target_shape`, each target voxel's `C`
/// interpolated scores decoded to a label by `decode` at once, so the
/// resampled scores are never held whole. Separable: per target plane the
/// scores are blended along `d0`, then per target row along `d1`, then per
/// voxel along `d2`.
pub fn resample_decode<F>(scores: ArrayView4<f32>, grid: &ResampleGrid, decode: F) -> Array3<u16>
where
    F: Fn(&[f32]) -> u16 + Sync,
{
    let (c, s0, s1, s2) = scores.dim();
    assert_eq!([s0, s1, s2], grid.source_shape, "source shape");
    let [t0, t1, t2] = grid.target_shape;
    let taps = grid_linear_taps(grid);
    // Channel-last rows, so each voxel's scores are contiguous.
    let lerp = |a: f32, b: f32, w: f32| a * (1.0 - w) + b * w;
    let mut out = Array3::<u16>::zeros((t0, t1, t2));
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(z, mut plane)| {
            let (z0, z1, wz) = taps[0][z];
            let mut pz = vec![0f32; s1 * s2 * c];
            for y in 0..s1 {
                for x in 0..s2 {
                    let v = &mut pz[(y * s2 + x) * c..][..c];
                    for (ch, v) in v.iter_mut().enumerate() {
                        *v = lerp(scores[[ch, z0, y, x]], scores[[ch, z1, y, x]], wz);
                    }
                }
            }
            let row = s2 * c;
            let mut py = vec![0f32; row];
            let mut v = vec![0f32; c];
            for (y, &(y0, y1, wy)) in taps[1].iter().enumerate() {
                let (a, b) = (&pz[y0 * row..][..row], &pz[y1 * row..][..row]);
                for ((p, &a), &b) in py.iter_mut().zip(a).zip(b) {
                    *p = lerp(a, b, wy);
                }
                for (x, &(x0, x1, wx)) in taps[2].iter().enumerate() {
                    let (a, b) = (&py[x0 * c..][..c], &py[x1 * c..][..c]);
                    for ((v, &a), &b) in v.iter_mut().zip(a).zip(b) {
                        *v = lerp(a, b, wx);
                    }
                    plane[[y, x]] = decode(&v);
                }
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn same_spacing_is_identity() {
        let a = Array3::from_shape_fn((5, 6, 7), |(z, y, x)| (z * 100 + y * 10 + x) as f32);
        let g = ResampleGrid::to_spacing([5, 6, 7], [1.5, 0.8, 0.8], [1.5, 0.8, 0.8]);
        assert!(g.is_identity());
        assert_eq!(resample_linear(a.view(), &g), a);
        assert_eq!(resample_nearest(a.view(), &g), a);
        let aff = Affine::from_spacing([0.8, 0.8, 1.5], [1.0, 2.0, 3.0]);
        assert!(g.target_affine(&aff).max_abs_diff(&aff) < 1e-12);
    }

    #[test]
    fn linear_reproduces_linear_ramps_inside() {
        // Upsampling a ramp along x by 2: interior samples lie on the ramp.
        let a = Array3::from_shape_fn((2, 2, 8), |(_, _, x)| x as f32);
        let g = ResampleGrid::to_spacing([2, 2, 8], [1.0, 1.0, 2.0], [1.0, 1.0, 1.0]);
        assert_eq!(g.target_shape, [2, 2, 16]);
        let b = resample_linear(a.view(), &g);
        for o in 1..15 {
            let expect = ((o as f64 + 0.5) * 0.5 - 0.5) as f32;
            assert!((b[[0, 0, o]] - expect).abs() < 1e-6, "{o}");
        }
        assert_eq!(b[[0, 0, 0]], 0.0); // clamped at the edge
    }

    #[test]
    fn labels_survive_resample_and_back() {
        // Blocks of 3 voxels (larger than one target voxel) survive 3 mm → 1.3 mm → back.
        let a = Array3::from_shape_fn((12, 9, 15), |(z, y, x)| ((z / 3 + y / 3 + x / 3) % 4) as u16);
        let g = ResampleGrid::to_spacing([12, 9, 15], [1.0, 1.0, 1.0], [1.3, 1.3, 1.3]);
        let down = resample_nearest(a.view(), &g);
        let back = resample_nearest(down.view(), &g.inverse());
        assert_eq!(back.shape(), a.shape());
        let agree = back.iter().zip(a.iter()).filter(|(x, y)| x == y).count();
        assert!(agree as f64 / a.len() as f64 > 0.75, "{agree}/{}", a.len());
        // Upsampling then inverse is exact for labels.
        let up = ResampleGrid::to_spacing([12, 9, 15], [2.0, 2.0, 2.0], [1.0, 1.0, 1.0]);
        let u = resample_nearest(a.view(), &up);
        assert_eq!(resample_nearest(u.view(), &up.inverse()), a);
    }

    fn argmax(v: &[f32]) -> u16 {
        crate::scores::decode_voxel(v.iter().copied(), edge_seg_models::card::Decode::Argmax)
    }

    #[test]
    fn decoded_scores_match_per_channel_linear_resampling() {
        // Scores with well-separated values, so rounding cannot flip a label.
        let scores = ndarray::Array4::from_shape_fn((3, 5, 6, 7), |(c, z, y, x)| {
            (((c * 7 + z * 5 + y * 3 + x * 11) * 37) % 17) as f32 / 16.0
        });
        let g = ResampleGrid::to_spacing([5, 6, 7], [2.0, 2.0, 2.0], [0.9, 1.3, 1.7]);
        let labels = resample_decode(scores.view(), &g, argmax);
        let channels: Vec<Array3<f32>> = scores.outer_iter().map(|s| resample_linear(s, &g)).collect();
        let mut mismatches = 0;
        for ((z, y, x), &l) in labels.indexed_iter() {
            let v: Vec<f32> = channels.iter().map(|c| c[[z, y, x]]).collect();
            let want = argmax(&v);
            let mut sorted = v.clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            // Near-ties (within rounding) may go either way.
            if l != want && sorted[0] - sorted[1] > 1e-5 {
                mismatches += 1;
            }
        }
        assert_eq!(mismatches, 0);
        assert_eq!(labels.shape(), &g.target_shape);
    }

    fn dice(a: &Array3<u16>, b: &Array3<u16>, k: u16) -> f64 {
        let (mut both, mut na, mut nb) = (0, 0, 0);
        for (&x, &y) in a.iter().zip(b.iter()) {
            na += (x == k) as usize;
            nb += (y == k) as usize;
            both += (x == k && y == k) as usize;
        }
        2.0 * both as f64 / (na + nb) as f64
    }

    #[test]
    fn interpolated_scores_follow_a_ball_closer_than_nearest_labels() {
        // A ball of radius 9 on a 1 mm grid, taken to 4 mm (nearest) and
        // back: by its labels (nearest) and by its one-hot scores (linear).
        let n = 32;
        let fine = Array3::from_shape_fn((n, n, n), |(z, y, x)| {
            let r2 = [z, y, x].iter().map(|&v| (v as f64 - 15.3).powi(2)).sum::<f64>();
            (r2 <= 81.0) as u16
        });
        let down = ResampleGrid::to_spacing([n; 3], [1.0; 3], [4.0; 3]);
        let coarse = resample_nearest(fine.view(), &down);
        let up = down.inverse();
        let nearest = resample_nearest(coarse.view(), &up);
        let one_hot = ndarray::Array4::from_shape_fn((2, 8, 8, 8), |(c, z, y, x)| {
            (coarse[[z, y, x]] == c as u16) as u8 as f32
        });
        let linear = resample_decode(one_hot.view(), &up, argmax);
        let (dn, dl) = (dice(&fine, &nearest, 1), dice(&fine, &linear, 1));
        assert!(dn > 0.7, "nearest {dn}");
        assert!(dl > dn + 0.02, "linear {dl} vs nearest {dn}");
    }

    #[test]
    fn target_affine_keeps_world_extent() {
        let aff = Affine::from_spacing([0.7, 0.7, 3.0], [-100.0, -50.0, 20.0]);
        // array order [z, y, x]: spacing [3.0, 0.7, 0.7]
        let g = ResampleGrid::to_spacing([10, 40, 40], [3.0, 0.7, 0.7], [2.0, 2.0, 2.0]);
        assert_eq!(g.target_shape, [15, 14, 14]);
        let t = g.target_affine(&aff);
        // The outer face of voxel -0.5 is the same world point in both grids.
        let a = aff.apply([-0.5, -0.5, -0.5]);
        let b = t.apply([-0.5, -0.5, -0.5]);
        for d in 0..3 {
            assert!((a[d] - b[d]).abs() < 1e-9);
        }
        let ts = g.target_spacing([3.0, 0.7, 0.7]);
        assert!((ts[0] - 2.0).abs() < 1e-9);
        assert!((ts[2] - 2.0).abs() < 0.01);
    }
}
