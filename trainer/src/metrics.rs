//! Segmentation metrics per class: Dice, and the 95th-percentile Hausdorff
//! distance in mm on the voxel grid with its spacing.

use ndarray::{Array3, ArrayView3};

/// Dice of class `c`; `None` when the class is absent from both.
pub fn dice(pred: ArrayView3<u16>, truth: ArrayView3<u16>, c: u16) -> Option<f64> {
    let (mut inter, mut p, mut t) = (0u64, 0u64, 0u64);
    for (&a, &b) in pred.iter().zip(truth.iter()) {
        let (ia, ib) = (a == c, b == c);
        p += ia as u64;
        t += ib as u64;
        inter += (ia && ib) as u64;
    }
    if p + t == 0 {
        None
    } else {
        Some(2.0 * inter as f64 / (p + t) as f64)
    }
}

/// Surface voxels of a mask (inside voxels with a 6-neighbour outside).
fn surface(mask: &Array3<bool>) -> Vec<[usize; 3]> {
    let (nz, ny, nx) = mask.dim();
    let mut out = Vec::new();
    for ((z, y, x), &m) in mask.indexed_iter() {
        if !m {
            continue;
        }
        let border = z == 0
            || y == 0
            || x == 0
            || z + 1 == nz
            || y + 1 == ny
            || x + 1 == nx
            || !mask[[z - 1, y, x]]
            || !mask[[z + 1, y, x]]
            || !mask[[z, y - 1, x]]
            || !mask[[z, y + 1, x]]
            || !mask[[z, y, x - 1]]
            || !mask[[z, y, x + 1]];
        if border {
            out.push([z, y, x]);
        }
    }
    out
}

/// One-dimensional squared distance transform of `f` with voxel size² `w2`:
/// `out[q] = min_p w2·(q − p)² + f[p]` (lower envelope of parabolas,
/// Felzenszwalb & Huttenlocher).
fn dt1d(f: &[f64], w2: f64, out: &mut [f64], v: &mut [usize], z: &mut [f64]) {
    let n = f.len();
    let Some(first) = (0..n).find(|&q| f[q].is_finite()) else {
        out.iter_mut().for_each(|o| *o = f64::INFINITY);
        return;
    };
    let mut k = 0usize;
    v[0] = first;
    z[0] = f64::NEG_INFINITY;
    z[1] = f64::INFINITY;
    for q in first + 1..n {
        if !f[q].is_finite() {
            continue;
        }
        let mut s;
        loop {
            let p = v[k];
            s = ((f[q] + w2 * (q * q) as f64) - (f[p] + w2 * (p * p) as f64)) / (2.0 * w2 * (q - p) as f64);
            // z[0] is −∞, so k never goes below 0.
            if s <= z[k] {
                k -= 1;
            } else {
                break;
            }
        }
        k += 1;
        v[k] = q;
        z[k] = s;
        z[k + 1] = f64::INFINITY;
    }
    let mut j = 0;
    for (q, o) in out.iter_mut().enumerate() {
        while z[j + 1] < q as f64 {
            j += 1;
        }
        let p = v[j];
        *o = w2 * (q as f64 - p as f64).powi(2) + f[p];
    }
}

/// Exact Euclidean distance transform (squared, in mm²) to the nearest
/// `true` voxel, by separable 1D passes.
fn squared_distance_to(mask: &Array3<bool>, spacing: [f64; 3]) -> Array3<f64> {
    let mut d = mask.mapv(|m| if m { 0.0 } else { f64::INFINITY });
    for axis in 0..3 {
        let n = d.len_of(ndarray::Axis(axis));
        let w2 = spacing[axis] * spacing[axis];
        let (mut f, mut out, mut v, mut z) = (vec![0.0; n], vec![0.0; n], vec![0usize; n], vec![0.0; n + 1]);
        for mut lane in d.lanes_mut(ndarray::Axis(axis)) {
            for (fi, x) in f.iter_mut().zip(lane.iter()) {
                *fi = *x;
            }
            dt1d(&f, w2, &mut out, &mut v, &mut z);
            for (x, o) in lane.iter_mut().zip(&out) {
                *x = *o;
            }
        }
    }
    d
}

/// 95th-percentile symmetric Hausdorff distance (mm) between the surfaces of
/// class `c` in `pred` and `truth`; `None` when either is empty.
pub fn hd95(pred: ArrayView3<u16>, truth: ArrayView3<u16>, c: u16, spacing: [f64; 3]) -> Option<f64> {
    let pm = pred.mapv(|v| v == c);
    let tm = truth.mapv(|v| v == c);
    let ps = surface(&pm);
    let ts = surface(&tm);
    if ps.is_empty() || ts.is_empty() {
        return None;
    }
    let mut ps_mask = Array3::from_elem(pm.dim(), false);
    for p in &ps {
        ps_mask[*p] = true;
    }
    let mut ts_mask = Array3::from_elem(tm.dim(), false);
    for p in &ts {
        ts_mask[*p] = true;
    }
    let to_truth = squared_distance_to(&ts_mask, spacing);
    let to_pred = squared_distance_to(&ps_mask, spacing);
    let mut d: Vec<f64> = ps
        .iter()
        .map(|p| to_truth[*p].sqrt())
        .chain(ts.iter().map(|p| to_pred[*p].sqrt()))
        .collect();
    d.sort_by(|a, b| a.total_cmp(b));
    let k = ((d.len() as f64 * 0.95).ceil() as usize).clamp(1, d.len()) - 1;
    Some(d[k])
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::s;

    #[test]
    fn dice_values() {
        let mut a = Array3::<u16>::zeros((4, 4, 4));
        let mut b = Array3::<u16>::zeros((4, 4, 4));
        a.slice_mut(s![0..2, .., ..]).fill(1);
        b.slice_mut(s![1..3, .., ..]).fill(1);
        assert!((dice(a.view(), b.view(), 1).unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(dice(a.view(), b.view(), 2), None);
        assert_eq!(dice(a.view(), a.view(), 1), Some(1.0));
    }

    #[test]
    fn distance_transform_matches_brute_force() {
        let mut m = Array3::from_elem((7, 9, 6), false);
        m[[1, 2, 3]] = true;
        m[[5, 8, 0]] = true;
        let sp = [2.0, 0.7, 1.3];
        let d = squared_distance_to(&m, sp);
        for ((z, y, x), v) in d.indexed_iter() {
            let brute = [[1usize, 2, 3], [5, 8, 0]]
                .iter()
                .map(|p| {
                    ((z as f64 - p[0] as f64) * sp[0]).powi(2)
                        + ((y as f64 - p[1] as f64) * sp[1]).powi(2)
                        + ((x as f64 - p[2] as f64) * sp[2]).powi(2)
                })
                .fold(f64::INFINITY, f64::min);
            assert!((v - brute).abs() < 1e-9, "{z} {y} {x}: {v} vs {brute}");
        }
    }

    #[test]
    fn hd95_of_shifted_cubes() {
        let mut a = Array3::<u16>::zeros((20, 20, 20));
        let mut b = Array3::<u16>::zeros((20, 20, 20));
        a.slice_mut(s![5..15, 5..15, 5..15]).fill(1);
        b.slice_mut(s![5..15, 5..15, 7..17]).fill(1);
        let h = hd95(a.view(), b.view(), 1, [1.0, 1.0, 2.0]).unwrap();
        // A shift of 2 voxels along x at 2 mm: 4 mm at most.
        assert!(h > 0.0 && h <= 4.0 + 1e-9, "{h}");
        assert_eq!(hd95(a.view(), a.view(), 1, [1.0; 3]), Some(0.0));
        assert_eq!(hd95(a.view(), b.view(), 3, [1.0; 3]), None);
    }
}
