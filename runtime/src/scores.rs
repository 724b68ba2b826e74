//! A tile's class scores `[C, z, y, x]`: softmax over the class axis, and
//! decoding scores to labels (argmax, or the best foreground score of at
//! least 0.5).
//!
//! For the softmax: the class axis is the outermost one, so a voxel's scores lie one plane
//! apart. Walking the array voxel by voxel strides across planes; here each
//! block of voxels is processed plane by plane instead (contiguous runs the
//! compiler vectorises), and blocks run in parallel.

use edge_seg_models::card::Decode;
use ndarray::{Array3, Array4, ArrayView4};
use rayon::prelude::*;

/// Voxels per block: small enough that a block's planes stay in cache.
const BLOCK: usize = 4096;

/// Softmax over axis 0, in place: `p_c = exp(s_c − max) / Σ exp(s_k − max)`.
pub fn softmax_channels(scores: &mut Array4<f32>) {
    let classes = scores.dim().0;
    if classes == 0 || scores.is_empty() {
        return;
    }
    if !scores.is_standard_layout() {
        *scores = scores.as_standard_layout().to_owned();
    }
    let data = scores.as_slice_mut().expect("standard layout");
    let voxels = data.len() / classes;
    // blocks[b][c]: the slice of plane c holding block b's voxels.
    let mut blocks: Vec<Vec<&mut [f32]>> = (0..voxels.div_ceil(BLOCK))
        .map(|_| Vec::with_capacity(classes))
        .collect();
    for plane in data.chunks_mut(voxels) {
        for (b, run) in plane.chunks_mut(BLOCK).enumerate() {
            blocks[b].push(run);
        }
    }
    blocks.into_par_iter().for_each(|mut planes| softmax_block(&mut planes));
}

/// One block: `planes[c][i]` is class c's score at voxel i of the block.
fn softmax_block(planes: &mut [&mut [f32]]) {
    let n = planes[0].len();
    let mut max = planes[0].to_vec();
    for p in planes[1..].iter() {
        for (m, &v) in max.iter_mut().zip(p.iter()) {
            *m = m.max(v);
        }
    }
    let mut sum = vec![0.0f32; n];
    for p in planes.iter_mut() {
        for ((v, &m), s) in p.iter_mut().zip(&max).zip(sum.iter_mut()) {
            *v = (*v - m).exp();
            *s += *v;
        }
    }
    for p in planes.iter_mut() {
        for (v, &s) in p.iter_mut().zip(&sum) {
            *v /= s;
        }
    }
}

/// Decode one voxel's class scores (in channel order) to its label:
/// `Argmax` takes the highest score; `Threshold` the highest foreground
/// score of at least 0.5, else background.
pub fn decode_voxel(scores: impl IntoIterator<Item = f32>, rule: Decode) -> u16 {
    let (mut best, mut best_s, first) = match rule {
        Decode::Argmax => (0, f32::NEG_INFINITY, 0),
        Decode::Threshold => (0, 0.5f32, 1),
    };
    for (ch, s) in scores.into_iter().enumerate().skip(first) {
        let better = match rule {
            Decode::Argmax => s > best_s,
            Decode::Threshold => s >= best_s,
        };
        if better {
            best_s = s;
            best = ch;
        }
    }
    best as u16
}

/// Decode class scores `[C, z, y, x]` to a label per voxel.
pub fn decode(scores: ArrayView4<f32>, rule: Decode) -> Array3<u16> {
    let (_, z, y, x) = scores.dim();
    let mut out = Array3::<u16>::zeros((z, y, x));
    ndarray::Zip::from(&mut out)
        .and(scores.lanes(ndarray::Axis(0)))
        .for_each(|v, lane| *v = decode_voxel(lane.iter().copied(), rule));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Axis;

    /// Voxel by voxel, in f64.
    fn reference(scores: &Array4<f32>) -> Array4<f32> {
        let mut out = scores.clone();
        for mut lane in out.lanes_mut(Axis(0)) {
            let max = lane.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
            let e: Vec<f64> = lane.iter().map(|&v| (v as f64 - max).exp()).collect();
            let sum: f64 = e.iter().sum();
            for (v, e) in lane.iter_mut().zip(e) {
                *v = (e / sum) as f32;
            }
        }
        out
    }

    /// Largest |a − b| over corresponding elements (logical order).
    fn max_diff(a: &Array4<f32>, b: &Array4<f32>) -> f32 {
        a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    #[test]
    fn matches_a_voxel_by_voxel_reference() {
        // More voxels than one block, and a last block that is not full.
        let s = Array4::from_shape_fn((5, 7, 31, 41), |(c, z, y, x)| {
            ((c * 131 + z * 17 + y * 7 + x) as f32 * 0.37).sin() * (3.0 + c as f32)
        });
        let want = reference(&s);
        let mut got = s.clone();
        softmax_channels(&mut got);
        let diff = max_diff(&got, &want);
        assert!(diff < 1e-6, "max |Δ| = {diff}");
        for lane in got.lanes(Axis(0)) {
            assert!((lane.sum() - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn large_scores_do_not_overflow() {
        let mut s = Array4::from_shape_fn((3, 1, 1, 2), |(c, _, _, x)| 1000.0 * (c + x) as f32);
        softmax_channels(&mut s);
        assert!(s.iter().all(|v| v.is_finite()));
        assert!((s[[2, 0, 0, 0]] - 1.0).abs() < 1e-6 && s[[0, 0, 0, 1]] < 1e-30);
    }

    #[test]
    fn non_standard_layout_is_handled() {
        let base = Array4::from_shape_fn((4, 3, 5, 6), |(c, z, y, x)| (c + 2 * z + y) as f32 - 0.1 * x as f32);
        let want = reference(&base);
        // Same values, transposed memory (class axis innermost).
        let mut t = base
            .clone()
            .reversed_axes()
            .as_standard_layout()
            .to_owned()
            .reversed_axes();
        assert!(!t.is_standard_layout());
        softmax_channels(&mut t);
        let diff = max_diff(&t, &want);
        assert!(diff < 1e-6, "max |Δ| = {diff}");
    }

    #[test]
    fn decode_rules() {
        let scores = Array4::from_shape_vec((3, 1, 1, 3), vec![0.5, 0.2, 0.6, 0.3, 0.5, 0.1, 0.2, 0.3, 0.3]).unwrap();
        let a = decode(scores.view(), Decode::Argmax);
        assert_eq!(a.iter().copied().collect::<Vec<_>>(), vec![0, 1, 0]);
        let t = decode(scores.view(), Decode::Threshold);
        assert_eq!(t.iter().copied().collect::<Vec<_>>(), vec![0, 1, 0]);
        let s2 = Array4::from_shape_vec((3, 1, 1, 1), vec![0.6, 0.1, 0.3]).unwrap();
        assert_eq!(decode(s2.view(), Decode::Threshold)[[0, 0, 0]], 0);
        let s3 = Array4::from_shape_vec((3, 1, 1, 1), vec![0.4, 0.0, 0.55]).unwrap();
        assert_eq!(decode(s3.view(), Decode::Threshold)[[0, 0, 0]], 2);
    }
}
