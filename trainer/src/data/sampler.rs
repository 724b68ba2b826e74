//! Random training patches: the network's input patch with the matching
//! (smaller, for valid convolutions) label patch, a chosen fraction centred
//! on a foreground voxel of a random annotated class, augmented by one
//! geometric transform applied identically to image and labels (flips,
//! in-plane 90° rotations, scaling) and by intensity changes. Deterministic
//! for a seed; the generator's position can be saved for exact resume.

use ndarray::Array3;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::cache::PreparedCase;

/// Augmentations, each off when zero / `None` / `false`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Augmentation {
    /// Random reflections along each axis (a mirrored body also swaps its
    /// left and right structures, so paired labels are swapped too).
    pub flips: bool,
    /// Random 90° rotations in the axial (y, x) plane.
    pub rot90: bool,
    /// Isotropic scaling range, e.g. (0.9, 1.1).
    pub scale: Option<(f64, f64)>,
    /// Multiplicative intensity change, ± this fraction.
    pub intensity_scale: f32,
    /// Additive intensity change, ± this (normalised units).
    pub intensity_shift: f32,
    /// Gaussian noise with σ drawn from [0, this].
    pub noise_sigma: f32,
}

impl Augmentation {
    pub fn none() -> Augmentation {
        Augmentation {
            flips: false,
            rot90: false,
            scale: None,
            intensity_scale: 0.0,
            intensity_shift: 0.0,
            noise_sigma: 0.0,
        }
    }

    /// Scaling and mild intensity changes; no flips or rotations (positions
    /// of organs are strong cues in canonical scans). Intensity changes stay
    /// small because absolute CT values carry meaning: ±0.02 of the [-1, 1]
    /// window is ±9 HU.
    pub fn standard() -> Augmentation {
        Augmentation {
            flips: false,
            rot90: false,
            scale: Some((0.9, 1.1)),
            intensity_scale: 0.05,
            intensity_shift: 0.02,
            noise_sigma: 0.02,
        }
    }
}

/// Patch geometry and sampling policy.
#[derive(Clone, Debug)]
pub struct SamplerConfig {
    pub input: [usize; 3],
    pub output: [usize; 3],
    pub foreground_fraction: f64,
    /// Fraction of patches drawn from completely annotated cases (the only
    /// ones whose background the masked loss may teach); 0 draws every case
    /// equally often. Ignored when no case, or every case, is complete.
    pub complete_patches: f64,
    /// Image value outside the volume (the intensity transform's background).
    pub pad_value: f32,
    pub augmentation: Augmentation,
    /// Label permutation for mirrored patches; `None` disables reflections
    /// (a vocabulary with unpaired lateral labels, such as lung lobes).
    pub mirror_permutation: Option<Vec<usize>>,
}

/// One training patch.
#[derive(Clone, Debug)]
pub struct Patch {
    pub case: usize,
    pub image: Array3<f32>,
    pub labels: Array3<u8>,
    pub centred_on_foreground: bool,
}

/// A stack of patches in the layout the network takes.
#[derive(Clone, Debug)]
pub struct Batch {
    /// `[B, 1, D, H, W]`, flattened.
    pub images: Vec<f32>,
    /// `[B, d, h, w]`, flattened.
    pub labels: Vec<u8>,
    pub cases: Vec<usize>,
    pub size: usize,
}

/// Maximum stored foreground positions per class and case.
const MAX_POSITIONS: usize = 200_000;

/// Draws patches from prepared cases.
pub struct Sampler<'a> {
    cases: &'a [PreparedCase],
    config: SamplerConfig,
    /// Per case, per annotated class present: linear voxel indices.
    foreground: Vec<Vec<Vec<u32>>>,
    /// Indices of the completely annotated cases.
    complete: Vec<usize>,
    rng: ChaCha8Rng,
    seed: u64,
}

/// The generator's position, for exact resume.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SamplerState {
    pub seed: u64,
    pub word_pos: u128,
}

impl<'a> Sampler<'a> {
    pub fn new(cases: &'a [PreparedCase], config: SamplerConfig, seed: u64) -> Sampler<'a> {
        assert!(!cases.is_empty(), "no cases to sample from");
        let foreground = cases
            .iter()
            .map(|c| {
                let mut per_class: Vec<Vec<u32>> = vec![Vec::new(); 256];
                for (n, &l) in c.labels.iter().enumerate() {
                    if l > 0 {
                        per_class[l as usize].push(n as u32);
                    }
                }
                c.annotated
                    .iter()
                    .filter_map(|&cls| {
                        let mut v = std::mem::take(&mut per_class[cls]);
                        if v.is_empty() {
                            return None;
                        }
                        if v.len() > MAX_POSITIONS {
                            let step = v.len().div_ceil(MAX_POSITIONS);
                            v = v.into_iter().step_by(step).collect();
                        }
                        Some(v)
                    })
                    .collect()
            })
            .collect();
        let complete = (0..cases.len()).filter(|&i| cases[i].complete).collect();
        Sampler {
            cases,
            config,
            foreground,
            complete,
            rng: ChaCha8Rng::seed_from_u64(seed),
            seed,
        }
    }

    pub fn state(&self) -> SamplerState {
        SamplerState {
            seed: self.seed,
            word_pos: self.rng.get_word_pos(),
        }
    }

    pub fn restore(&mut self, state: SamplerState) {
        self.seed = state.seed;
        self.rng = ChaCha8Rng::seed_from_u64(state.seed);
        self.rng.set_word_pos(state.word_pos);
    }

    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// Draw one patch.
    pub fn sample(&mut self) -> Patch {
        let case_index = self.pick_case();
        let case = &self.cases[case_index];
        let (nz, ny, nx) = case.image.dim();
        let fg = &self.foreground[case_index];
        let on_fg = !fg.is_empty() && self.rng.random_bool(self.config.foreground_fraction);
        let centre: [i64; 3] = if on_fg {
            let class = &fg[self.rng.random_range(0..fg.len())];
            let idx = class[self.rng.random_range(0..class.len())] as usize;
            [(idx / (ny * nx)) as i64, ((idx / nx) % ny) as i64, (idx % nx) as i64]
        } else {
            [
                self.rng.random_range(0..nz) as i64,
                self.rng.random_range(0..ny) as i64,
                self.rng.random_range(0..nx) as i64,
            ]
        };
        let aug = self.config.augmentation.clone();
        // The geometric transform: patch offset → volume offset.
        let mut m = [[1.0f64, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        if aug.rot90 {
            for _ in 0..self.rng.random_range(0..4) {
                // (y, x) → (x, -y)
                m = [m[0], [m[2][0], m[2][1], m[2][2]], [-m[1][0], -m[1][1], -m[1][2]]];
            }
        }
        let mut mirrored = false;
        if aug.flips && self.config.mirror_permutation.is_some() {
            for row in &mut m {
                if self.rng.random_bool(0.5) {
                    *row = row.map(|v| -v);
                    mirrored = !mirrored;
                }
            }
        }
        let s = match aug.scale {
            Some((lo, hi)) if hi > lo => self.rng.random_range(lo..hi),
            _ => 1.0,
        };
        let exact = s == 1.0;
        let int_scale = if aug.intensity_scale > 0.0 {
            1.0 + self.rng.random_range(-aug.intensity_scale..aug.intensity_scale)
        } else {
            1.0
        };
        let shift = if aug.intensity_shift > 0.0 {
            self.rng.random_range(-aug.intensity_shift..aug.intensity_shift)
        } else {
            0.0
        };
        let sigma = if aug.noise_sigma > 0.0 {
            self.rng.random_range(0.0..aug.noise_sigma)
        } else {
            0.0
        };
        let map = |d: [f64; 3]| -> [f64; 3] {
            [0, 1, 2].map(|r| centre[r] as f64 + s * (m[r][0] * d[0] + m[r][1] * d[1] + m[r][2] * d[2]))
        };
        let [iz, iy, ix] = self.config.input;
        let half_in = [iz / 2, iy / 2, ix / 2].map(|v| v as f64);
        let pad = self.config.pad_value;
        let mut image = Array3::<f32>::zeros((iz, iy, ix));
        for ((pz, py, px), v) in image.indexed_iter_mut() {
            let src = map([pz as f64 - half_in[0], py as f64 - half_in[1], px as f64 - half_in[2]]);
            *v = if exact {
                sample_nearest(&case.image, src).unwrap_or(pad)
            } else {
                sample_linear(&case.image, src, pad)
            };
        }
        if int_scale != 1.0 || shift != 0.0 || sigma > 0.0 {
            let normal = Normal::new(0.0f32, 1.0).unwrap();
            for v in image.iter_mut() {
                *v = *v * int_scale
                    + shift
                    + if sigma > 0.0 {
                        sigma * normal.sample(&mut self.rng)
                    } else {
                        0.0
                    };
            }
        }
        let [oz, oy, ox] = self.config.output;
        let half_out = [oz / 2, oy / 2, ox / 2].map(|v| v as f64);
        let perm = if mirrored {
            self.config.mirror_permutation.clone()
        } else {
            None
        };
        let mut labels = Array3::<u8>::zeros((oz, oy, ox));
        for ((qz, qy, qx), v) in labels.indexed_iter_mut() {
            let src = map([
                qz as f64 - half_out[0],
                qy as f64 - half_out[1],
                qx as f64 - half_out[2],
            ]);
            let l = sample_nearest(&case.labels, src).unwrap_or(0);
            *v = match &perm {
                Some(p) => p[l as usize] as u8,
                None => l,
            };
        }
        Patch {
            case: case_index,
            image,
            labels,
            centred_on_foreground: on_fg,
        }
    }

    /// A random case: from the complete ones with probability
    /// `complete_patches` (when some but not all cases are complete), else
    /// uniformly from all.
    fn pick_case(&mut self) -> usize {
        let f = self.config.complete_patches;
        let complete = &self.complete;
        if f > 0.0 && !complete.is_empty() && complete.len() < self.cases.len() && self.rng.random_bool(f.min(1.0)) {
            return complete[self.rng.random_range(0..complete.len())];
        }
        self.rng.random_range(0..self.cases.len())
    }

    /// Draw `size` patches as one batch.
    pub fn batch(&mut self, size: usize) -> Batch {
        let mut images = Vec::new();
        let mut labels = Vec::new();
        let mut cases = Vec::new();
        for _ in 0..size {
            let p = self.sample();
            images.extend(p.image.iter());
            labels.extend(p.labels.iter());
            cases.push(p.case);
        }
        Batch {
            images,
            labels,
            cases,
            size,
        }
    }
}

/// The voxel nearest to `p`, if inside the volume.
fn sample_nearest<T: Copy>(a: &Array3<T>, p: [f64; 3]) -> Option<T> {
    let (nz, ny, nx) = a.dim();
    let r = p.map(|v| v.round());
    if r[0] < 0.0 || r[1] < 0.0 || r[2] < 0.0 {
        return None;
    }
    let (z, y, x) = (r[0] as usize, r[1] as usize, r[2] as usize);
    if z >= nz || y >= ny || x >= nx {
        return None;
    }
    Some(a[[z, y, x]])
}

/// Trilinear interpolation with `pad` outside the volume.
fn sample_linear(a: &Array3<f32>, p: [f64; 3], pad: f32) -> f32 {
    let (nz, ny, nx) = a.dim();
    let f = p.map(|v| v.floor());
    let w = [0, 1, 2].map(|d| (p[d] - f[d]) as f32);
    let get = |z: f64, y: f64, x: f64| -> f32 {
        if z < 0.0 || y < 0.0 || x < 0.0 || z >= nz as f64 || y >= ny as f64 || x >= nx as f64 {
            pad
        } else {
            a[[z as usize, y as usize, x as usize]]
        }
    };
    let mut acc = 0.0;
    for dz in 0..2 {
        for dy in 0..2 {
            for dx in 0..2 {
                let wz = if dz == 1 { w[0] } else { 1.0 - w[0] };
                let wy = if dy == 1 { w[1] } else { 1.0 - w[1] };
                let wx = if dx == 1 { w[2] } else { 1.0 - w[2] };
                let wt = wz * wy * wx;
                if wt > 0.0 {
                    acc += wt * get(f[0] + dz as f64, f[1] + dy as f64, f[2] + dx as f64);
                }
            }
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge_seg_models::manifest::Split;
    use ndarray::s;

    /// A volume with a planted cube: image value 100 + distinct texture inside.
    fn planted() -> PreparedCase {
        let image = Array3::from_shape_fn((40, 50, 60), |(z, y, x)| (z * 10000 + y * 100 + x) as f32);
        let mut labels = Array3::<u8>::zeros((40, 50, 60));
        labels.slice_mut(s![10..20, 15..30, 20..45]).fill(3);
        labels.slice_mut(s![25..30, 5..10, 5..10]).fill(1);
        PreparedCase {
            id: "planted".into(),
            split: Split::Train,
            image,
            labels,
            annotated: vec![1, 3],
            complete: false,
            spacing_zyx: [1.0; 3],
        }
    }

    fn config(fg: f64, aug: Augmentation) -> SamplerConfig {
        SamplerConfig {
            input: [20, 24, 28],
            output: [8, 12, 16],
            foreground_fraction: fg,
            complete_patches: 0.0,
            pad_value: -1.0,
            augmentation: aug,
            mirror_permutation: Some(vec![0, 1, 2, 3]),
        }
    }

    #[test]
    fn complete_cases_are_drawn_at_the_asked_fraction() {
        let mut cases: Vec<PreparedCase> = (0..10).map(|_| planted()).collect();
        cases[7].complete = true;
        let draws = 2000;
        let count = |fraction: f64| {
            let mut cfg = config(0.5, Augmentation::none());
            cfg.complete_patches = fraction;
            let mut sampler = Sampler::new(&cases, cfg, 3);
            (0..draws).filter(|_| sampler.sample().case == 7).count() as f64 / draws as f64
        };
        // Uniform: 1 in 10. Asked 0.5: 0.5 + 0.5 × 1/10 = 0.55.
        let uniform = count(0.0);
        let boosted = count(0.5);
        assert!(
            (uniform - 0.1).abs() < 0.03,
            "uniform draws hit the complete case {uniform}"
        );
        assert!(
            (boosted - 0.55).abs() < 0.04,
            "boosted draws hit the complete case {boosted}"
        );
        // Every case complete: the option changes nothing.
        for c in &mut cases {
            c.complete = true;
        }
        let mut cfg = config(0.5, Augmentation::none());
        cfg.complete_patches = 0.9;
        let mut a = Sampler::new(&cases, cfg, 3);
        let mut b = Sampler::new(&cases, config(0.5, Augmentation::none()), 3);
        for _ in 0..20 {
            assert_eq!(a.sample().case, b.sample().case);
        }
    }

    #[test]
    fn image_and_labels_stay_aligned() {
        let cases = vec![planted()];
        let mut sampler = Sampler::new(&cases, config(0.5, Augmentation::none()), 1);
        for _ in 0..50 {
            let p = sampler.sample();
            // Without augmentation the image is an exact copy: decode each
            // voxel's source position from its value and compare labels.
            for ((qz, qy, qx), &l) in p.labels.indexed_iter() {
                let v = p.image[[qz + 6, qy + 6, qx + 6]];
                if v < 0.0 {
                    assert_eq!(l, 0, "outside the volume is unlabelled");
                    continue;
                }
                let v = v as usize;
                let (z, y, x) = (v / 10000, (v / 100) % 100, v % 100);
                assert_eq!(l, cases[0].labels[[z, y, x]], "at {z},{y},{x}");
            }
        }
    }

    #[test]
    fn augmented_patches_stay_aligned() {
        let mut case = planted();
        // A smooth image whose value encodes the label region: image > 0.5 ⇔ label 3.
        case.image = case.labels.mapv(|l| if l == 3 { 1.0 } else { 0.0 });
        let cases = vec![case];
        let aug = Augmentation {
            flips: true,
            rot90: true,
            scale: Some((0.8, 1.2)),
            ..Augmentation::none()
        };
        let mut sampler = Sampler::new(&cases, config(1.0, aug), 7);
        let mut agree = 0usize;
        let mut total = 0usize;
        for _ in 0..30 {
            let p = sampler.sample();
            for ((qz, qy, qx), &l) in p.labels.indexed_iter() {
                let v = p.image[[qz + 6, qy + 6, qx + 6]];
                if (v - 0.5).abs() < 0.3 {
                    continue; // interpolated edge
                }
                total += 1;
                if (v > 0.5) == (l == 3) {
                    agree += 1;
                }
            }
        }
        assert!(agree as f64 / total as f64 > 0.99, "{agree}/{total}");
    }

    #[test]
    fn foreground_fraction_is_respected() {
        let cases = vec![planted()];
        for fg in [0.0, 0.33, 0.9] {
            let mut sampler = Sampler::new(&cases, config(fg, Augmentation::none()), 3);
            let n = 2000;
            let mut centred = 0;
            let mut centre_labelled = 0;
            for _ in 0..n {
                let p = sampler.sample();
                if p.centred_on_foreground {
                    centred += 1;
                }
                if p.labels[[4, 6, 8]] > 0 {
                    centre_labelled += 1;
                }
            }
            let frac = centred as f64 / n as f64;
            assert!((frac - fg).abs() < 0.04, "asked {fg}, got {frac}");
            // Every foreground-centred patch has a labelled centre voxel.
            assert!(centre_labelled >= centred);
        }
    }

    #[test]
    fn mirroring_swaps_paired_labels() {
        let mut case = planted();
        case.labels.fill(0);
        case.labels.slice_mut(s![.., .., ..30]).fill(1); // "left"
        case.labels.slice_mut(s![.., .., 30..]).fill(2); // "right"
        case.annotated = vec![1, 2];
        case.image = case.labels.mapv(|l| l as f32);
        let cases = vec![case];
        let mut cfg = config(
            1.0,
            Augmentation {
                flips: true,
                ..Augmentation::none()
            },
        );
        cfg.mirror_permutation = Some(vec![0, 2, 1]);
        let mut sampler = Sampler::new(&cases, cfg, 5);
        let mut swapped = 0;
        for _ in 0..40 {
            let p = sampler.sample();
            for ((qz, qy, qx), &l) in p.labels.indexed_iter() {
                let v = p.image[[qz + 6, qy + 6, qx + 6]];
                if v > 0.0 && l > 0 && v as u8 != l {
                    swapped += 1;
                    assert_eq!(v as u8 + l, 3);
                }
            }
        }
        assert!(swapped > 0, "some patches are mirrored");
    }

    #[test]
    fn same_seed_same_patches_and_resume() {
        let cases = vec![planted()];
        let mut a = Sampler::new(&cases, config(0.5, Augmentation::standard()), 11);
        let mut b = Sampler::new(&cases, config(0.5, Augmentation::standard()), 11);
        for _ in 0..3 {
            assert_eq!(a.sample().image, b.sample().image);
        }
        let state = a.state();
        let next = a.sample();
        let mut c = Sampler::new(&cases, config(0.5, Augmentation::standard()), 999);
        c.restore(state);
        let again = c.sample();
        assert_eq!(next.image, again.image);
        assert_eq!(next.labels, again.labels);
    }
}
