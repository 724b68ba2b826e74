//! Intensity transforms, driven by the model card: CT windowing (clip,
//! optional rescale to [-1, 1]) and MR z-scoring over non-zero voxels.

use edge_seg_models::card::Intensity;
use ndarray::Array3;

/// What the transform met on the way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IntensityReport {
    /// NaN or infinite voxels. Infinities are clipped like any value; NaNs
    /// take the transform's background value.
    pub non_finite: u64,
}

/// Apply `transform` in place.
pub fn apply(transform: &Intensity, data: &mut Array3<f32>) -> IntensityReport {
    let non_finite = data.iter().filter(|v| !v.is_finite()).count() as u64;
    let background = transform.background_value();
    match *transform {
        Intensity::Window { min, max, rescale } => {
            let span = max - min;
            data.mapv_inplace(|v| {
                if v.is_nan() {
                    return background;
                }
                let c = v.clamp(min, max);
                if rescale {
                    2.0 * (c - min) / span - 1.0
                } else {
                    c
                }
            });
        }
        Intensity::ZScore => {
            let (mut n, mut sum, mut sum2) = (0u64, 0f64, 0f64);
            for &v in data.iter() {
                if v.is_finite() && v != 0.0 {
                    n += 1;
                    sum += v as f64;
                    sum2 += (v as f64) * (v as f64);
                }
            }
            let mean = if n > 0 { sum / n as f64 } else { 0.0 };
            let var = if n > 0 {
                (sum2 / n as f64 - mean * mean).max(0.0)
            } else {
                0.0
            };
            let std = var.sqrt();
            // An all-zero (or constant) volume is left centred, not divided by zero.
            let (mean, inv) = if std > 1e-12 {
                (mean as f32, (1.0 / std) as f32)
            } else {
                (mean as f32, 1.0)
            };
            data.mapv_inplace(|v| if v.is_finite() { (v - mean) * inv } else { background });
        }
    }
    IntensityReport { non_finite }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_window_clips_and_rescales() {
        let mut a = Array3::from_shape_vec((1, 1, 6), vec![-1000.0, -500.0, -50.0, 400.0, 3000.0, f32::NAN]).unwrap();
        let r = apply(&Intensity::ct_default(), &mut a);
        assert_eq!(r.non_finite, 1);
        let v: Vec<f32> = a.iter().copied().collect();
        assert_eq!(v, vec![-1.0, -1.0, 0.0, 1.0, 1.0, -1.0]);
        let mut b = Array3::from_shape_vec((1, 1, 3), vec![-900.0, 0.0, f32::INFINITY]).unwrap();
        apply(
            &Intensity::Window {
                min: -500.0,
                max: 400.0,
                rescale: false,
            },
            &mut b,
        );
        assert_eq!(b.iter().copied().collect::<Vec<_>>(), vec![-500.0, 0.0, 400.0]);
    }

    #[test]
    fn zscore_uses_nonzero_voxels() {
        let mut a = Array3::from_shape_vec((1, 1, 5), vec![0.0, 2.0, 4.0, 0.0, 6.0]).unwrap();
        apply(&Intensity::ZScore, &mut a);
        // mean 4, std sqrt(8/3) over {2, 4, 6}
        let std = (8.0f32 / 3.0).sqrt();
        assert!((a[[0, 0, 1]] + 2.0 / std).abs() < 1e-6);
        assert!(a[[0, 0, 2]].abs() < 1e-6);
        assert!((a[[0, 0, 0]] + 4.0 / std).abs() < 1e-6);
    }

    #[test]
    fn zscore_survives_all_zero_and_nan() {
        let mut a = Array3::<f32>::zeros((2, 2, 2));
        apply(&Intensity::ZScore, &mut a);
        assert!(a.iter().all(|v| *v == 0.0));
        let mut b = Array3::from_shape_vec((1, 1, 3), vec![f32::NAN, 5.0, 5.0]).unwrap();
        let r = apply(&Intensity::ZScore, &mut b);
        assert_eq!(r.non_finite, 1);
        assert!(b.iter().all(|v| v.is_finite()));
    }
}
