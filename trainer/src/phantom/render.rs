//! Rendering an anatomy onto a voxel grid: any orientation, anisotropic
//! spacing, a field of view; with image noise and a smooth intensity bias.

use edge_seg_models::labels::Task;
use edge_seg_runtime::geometry::Affine;
use ndarray::parallel::prelude::*;
use ndarray::{Array3, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::anatomy::Anatomy;
use super::shapes::P3;

/// A world-space box (RAS+ mm).
#[derive(Clone, Copy, Debug)]
pub struct Fov {
    pub lo: P3,
    pub hi: P3,
}

/// A voxel grid: affine and array shape `[k, j, i]`.
#[derive(Clone, Debug)]
pub struct Grid {
    pub affine: Affine,
    pub shape: [usize; 3],
}

/// World axis and direction of each voxel axis for an orientation code
/// such as `LPS`.
pub fn parse_orientation(code: &str) -> Option<[(usize, f64); 3]> {
    let mut out = [(0, 0.0); 3];
    let mut seen = [false; 3];
    let chars: Vec<char> = code.chars().collect();
    if chars.len() != 3 {
        return None;
    }
    for (v, c) in chars.into_iter().enumerate() {
        let (w, s) = match c.to_ascii_uppercase() {
            'R' => (0, 1.0),
            'L' => (0, -1.0),
            'A' => (1, 1.0),
            'P' => (1, -1.0),
            'S' => (2, 1.0),
            'I' => (2, -1.0),
            _ => return None,
        };
        if seen[w] {
            return None;
        }
        seen[w] = true;
        out[v] = (w, s);
    }
    Some(out)
}

impl Grid {
    /// A grid covering `fov` in orientation `code`, with `inplane` spacing
    /// across x and y and `slice` spacing along z.
    pub fn new(fov: Fov, code: &str, inplane: f64, slice: f64) -> Grid {
        let axes = parse_orientation(code).expect("valid orientation code");
        let mut affine = Affine::IDENTITY;
        let mut n = [0usize; 3]; // along i, j, k
        for (v, &(w, sign)) in axes.iter().enumerate() {
            let sp = if w == 2 { slice } else { inplane };
            let extent = fov.hi[w] - fov.lo[w];
            n[v] = ((extent / sp).ceil() as usize).max(2);
            for r in 0..3 {
                affine.0[r][v] = 0.0;
            }
            affine.0[w][v] = sign * sp;
            affine.0[w][3] = if sign > 0.0 {
                fov.lo[w] + sp / 2.0
            } else {
                fov.lo[w] + (n[v] as f64 - 0.5) * sp
            };
        }
        Grid {
            affine,
            shape: edge_seg_runtime::geometry::reversed(n),
        }
    }

    pub fn voxels(&self) -> usize {
        self.shape.iter().product()
    }
}

/// How noisy the image is.
#[derive(Clone, Copy, Debug)]
pub struct NoiseModel {
    pub mr: bool,
    pub sigma: f32,
    /// Bias amplitude: HU (CT, additive) or a fraction (MR, multiplicative).
    pub bias: f32,
    pub bias_wave: [f64; 3],
    pub bias_phase: f64,
}

impl NoiseModel {
    pub fn random(rng: &mut impl Rng, mr: bool) -> NoiseModel {
        let wave = super::shapes::scale(
            super::shapes::random_unit(rng),
            std::f64::consts::TAU / rng.random_range(300.0..700.0),
        );
        NoiseModel {
            mr,
            sigma: if mr {
                rng.random_range(12.0..30.0)
            } else {
                rng.random_range(8.0..22.0)
            },
            bias: if mr {
                rng.random_range(0.1..0.3)
            } else {
                rng.random_range(5.0..20.0)
            },
            bias_wave: wave,
            bias_phase: rng.random_range(0.0..std::f64::consts::TAU),
        }
    }

    fn bias_at(&self, p: P3) -> f32 {
        (super::shapes::dot(self.bias_wave, p) + self.bias_phase).sin() as f32 * self.bias
    }

    /// Final stored value for a clean intensity at point `p`.
    fn apply(&self, clean: f32, p: P3, n1: f32, n2: f32) -> f32 {
        if self.mr {
            let biased = clean * (1.0 + self.bias_at(p));
            // Rician magnitude noise.
            let re = biased + n1 * self.sigma;
            let im = n2 * self.sigma;
            (re * re + im * im).sqrt().clamp(0.0, 4095.0)
        } else {
            (clean + self.bias_at(p) + n1 * self.sigma).clamp(-1024.0, 3071.0)
        }
    }
}

/// A rendered case: image (already rounded to integers), base labels and
/// task labels, all `[k][j][i]` on `grid`.
pub struct Rendered {
    pub image: Array3<f32>,
    pub base: Array3<u8>,
    pub task: Array3<u8>,
}

/// Render `anatomy` onto `grid`. Deterministic for `seed` whatever the
/// thread count (each slice has its own noise stream).
pub fn render(anatomy: &Anatomy, grid: &Grid, noise: &NoiseModel, task: Option<Task>, seed: u64) -> Rendered {
    let [nk, nj, ni] = grid.shape;
    let spacing = grid.affine.spacing();
    let width = (spacing[0] * spacing[1] * spacing[2]).cbrt();
    let mut image = Array3::<f32>::zeros((nk, nj, ni));
    let mut base = Array3::<u8>::zeros((nk, nj, ni));
    let mut task_labels = Array3::<u8>::zeros((nk, nj, ni));
    let normal = Normal::new(0.0f32, 1.0).unwrap();
    image
        .axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(base.axis_iter_mut(Axis(0)).into_par_iter())
        .zip(task_labels.axis_iter_mut(Axis(0)).into_par_iter())
        .enumerate()
        .for_each(|(k, ((mut img, mut lab), mut tl))| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            for j in 0..nj {
                for i in 0..ni {
                    let p = grid.affine.apply([i as f64, j as f64, k as f64]);
                    let s = anatomy.eval(p, width, task);
                    let n1 = normal.sample(&mut rng);
                    let n2 = normal.sample(&mut rng);
                    img[[j, i]] = noise.apply(s.value, p, n1, n2).round();
                    lab[[j, i]] = s.base;
                    tl[[j, i]] = s.task;
                }
            }
        });
    Rendered {
        image,
        base,
        task: task_labels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orientation_codes_parse() {
        assert_eq!(parse_orientation("RAS"), Some([(0, 1.0), (1, 1.0), (2, 1.0)]));
        assert_eq!(parse_orientation("PLS"), Some([(1, -1.0), (0, -1.0), (2, 1.0)]));
        assert_eq!(parse_orientation("RRS"), None);
        assert_eq!(parse_orientation("RA"), None);
    }

    #[test]
    fn grids_cover_the_fov_in_any_orientation() {
        let fov = Fov {
            lo: [-100.0, -80.0, 0.0],
            hi: [100.0, 80.0, 50.0],
        };
        for code in ["RAS", "LPS", "LAS", "PLS", "LPI"] {
            let g = Grid::new(fov, code, 2.0, 5.0);
            assert_eq!(edge_seg_runtime::geometry::orientation_code(&g.affine), code);
            let [nk, nj, ni] = g.shape;
            let corners = [
                g.affine.apply([-0.5, -0.5, -0.5]),
                g.affine.apply([ni as f64 - 0.5, nj as f64 - 0.5, nk as f64 - 0.5]),
            ];
            for w in 0..3 {
                let lo = corners[0][w].min(corners[1][w]);
                let hi = corners[0][w].max(corners[1][w]);
                assert!((lo - fov.lo[w]).abs() < 1e-9, "{code}: {lo}");
                assert!(hi >= fov.hi[w] - 1e-9, "{code}: {hi}");
            }
            let s = g.affine.spacing();
            let slice_axis = (0..3).find(|&v| g.affine.column(v)[2] != 0.0).unwrap();
            assert_eq!(s[slice_axis], 5.0);
        }
    }
}
