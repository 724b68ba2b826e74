//! Shapes of the phantom body: smoothly deformed ellipsoids ("blobs") and
//! tubes along polylines, each with an approximate signed distance in mm
//! (negative inside) and a bounding box for cheap culling.

use rand::Rng;

pub type P3 = [f64; 3];

pub fn sub(a: P3, b: P3) -> P3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

pub fn add(a: P3, b: P3) -> P3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

pub fn dot(a: P3, b: P3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub fn norm(a: P3) -> f64 {
    dot(a, a).sqrt()
}

pub fn scale(a: P3, s: f64) -> P3 {
    [a[0] * s, a[1] * s, a[2] * s]
}

/// A random unit vector.
pub fn random_unit(rng: &mut impl Rng) -> P3 {
    loop {
        let v = [
            rng.random_range(-1.0..1.0),
            rng.random_range(-1.0..1.0),
            rng.random_range(-1.0..1.0),
        ];
        let n = norm(v);
        if n > 0.1 && n <= 1.0 {
            return scale(v, 1.0 / n);
        }
    }
}

/// Rotation matrix from Euler angles (radians) about x, then y, then z.
pub fn rotation(ax: f64, ay: f64, az: f64) -> [[f64; 3]; 3] {
    let (sx, cx) = ax.sin_cos();
    let (sy, cy) = ay.sin_cos();
    let (sz, cz) = az.sin_cos();
    let rx = [[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]];
    let ry = [[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]];
    let rz = [[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]];
    matmul(rz, matmul(ry, rx))
}

fn matmul(a: [[f64; 3]; 3], b: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut m = [[0.0; 3]; 3];
    for (r, row) in m.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = (0..3).map(|k| a[r][k] * b[k][c]).sum();
        }
    }
    m
}

/// Rᵀ·v (world → local for a rotation R).
fn rotate_back(r: &[[f64; 3]; 3], v: P3) -> P3 {
    [
        r[0][0] * v[0] + r[1][0] * v[1] + r[2][0] * v[2],
        r[0][1] * v[0] + r[1][1] * v[1] + r[2][1] * v[2],
        r[0][2] * v[0] + r[1][2] * v[1] + r[2][2] * v[2],
    ]
}

/// Axis-aligned bounding box.
#[derive(Clone, Copy, Debug)]
pub struct Aabb {
    pub lo: P3,
    pub hi: P3,
}

impl Aabb {
    pub fn contains(&self, p: P3, margin: f64) -> bool {
        (0..3).all(|d| p[d] >= self.lo[d] - margin && p[d] <= self.hi[d] + margin)
    }

    pub fn union(&self, o: &Aabb) -> Aabb {
        Aabb {
            lo: [0, 1, 2].map(|d| self.lo[d].min(o.lo[d])),
            hi: [0, 1, 2].map(|d| self.hi[d].max(o.hi[d])),
        }
    }
}

/// Low-order smooth perturbation of a surface, as a function of direction.
#[derive(Clone, Debug)]
pub struct Harmonics {
    terms: Vec<(P3, f64, f64, f64)>, // direction, frequency, amplitude, phase
}

impl Harmonics {
    pub fn none() -> Harmonics {
        Harmonics { terms: Vec::new() }
    }

    /// `n` terms with relative amplitude up to `amplitude`.
    pub fn random(rng: &mut impl Rng, n: usize, amplitude: f64) -> Harmonics {
        let terms = (0..n)
            .map(|_| {
                (
                    random_unit(rng),
                    rng.random_range(1.5..3.5),
                    rng.random_range(0.3..1.0) * amplitude,
                    rng.random_range(0.0..std::f64::consts::TAU),
                )
            })
            .collect();
        Harmonics { terms }
    }

    /// The perturbation in direction `u` (a unit vector).
    pub fn eval(&self, u: P3) -> f64 {
        self.terms
            .iter()
            .map(|(d, f, a, ph)| a * (f * dot(u, *d) + ph).sin())
            .sum()
    }

    fn max_amplitude(&self) -> f64 {
        self.terms.iter().map(|t| t.2).sum()
    }
}

/// A deformed ellipsoid.
#[derive(Clone, Debug)]
pub struct Blob {
    pub centre: P3,
    pub radii: P3,
    rot: [[f64; 3]; 3],
    harmonics: Harmonics,
    bbox: Aabb,
}

impl Blob {
    pub fn new(centre: P3, radii: P3, rot: [[f64; 3]; 3], harmonics: Harmonics) -> Blob {
        let r = radii.iter().cloned().fold(0.0, f64::max) * (1.0 + harmonics.max_amplitude());
        Blob {
            centre,
            radii,
            rot,
            harmonics,
            bbox: Aabb {
                lo: [centre[0] - r, centre[1] - r, centre[2] - r],
                hi: [centre[0] + r, centre[1] + r, centre[2] + r],
            },
        }
    }

    pub fn bbox(&self) -> Aabb {
        self.bbox
    }

    /// Approximate signed distance (mm); large positive far away.
    pub fn sdf(&self, p: P3) -> f64 {
        if !self.bbox.contains(p, 8.0) {
            return 1e3;
        }
        let local = rotate_back(&self.rot, sub(p, self.centre));
        let q = [
            local[0] / self.radii[0],
            local[1] / self.radii[1],
            local[2] / self.radii[2],
        ];
        let n = norm(q);
        let rmin = self.radii.iter().cloned().fold(f64::INFINITY, f64::min);
        if n < 1e-9 {
            return -rmin;
        }
        let u = scale(q, 1.0 / n);
        (n - (1.0 + self.harmonics.eval(u))) * rmin
    }

    /// Position of `p` in the blob's local, normalised frame.
    pub fn local(&self, p: P3) -> P3 {
        let local = rotate_back(&self.rot, sub(p, self.centre));
        [
            local[0] / self.radii[0],
            local[1] / self.radii[1],
            local[2] / self.radii[2],
        ]
    }
}

/// A tube of varying radius along a polyline.
#[derive(Clone, Debug)]
pub struct Tube {
    points: Vec<P3>,
    radii: Vec<f64>,
    bbox: Aabb,
}

impl Tube {
    pub fn new(points: Vec<P3>, radii: Vec<f64>) -> Tube {
        assert_eq!(points.len(), radii.len());
        assert!(points.len() >= 2);
        let rmax = radii.iter().cloned().fold(0.0, f64::max);
        let mut bbox = Aabb {
            lo: points[0],
            hi: points[0],
        };
        for p in &points {
            bbox = bbox.union(&Aabb { lo: *p, hi: *p });
        }
        bbox.lo = bbox.lo.map(|v| v - rmax);
        bbox.hi = bbox.hi.map(|v| v + rmax);
        Tube { points, radii, bbox }
    }

    pub fn bbox(&self) -> Aabb {
        self.bbox
    }

    pub fn sdf(&self, p: P3) -> f64 {
        if !self.bbox.contains(p, 8.0) {
            return 1e3;
        }
        let mut best = f64::INFINITY;
        for s in 0..self.points.len() - 1 {
            let (a, b) = (self.points[s], self.points[s + 1]);
            let ab = sub(b, a);
            let len2 = dot(ab, ab).max(1e-12);
            let t = (dot(sub(p, a), ab) / len2).clamp(0.0, 1.0);
            let closest = add(a, scale(ab, t));
            let r = self.radii[s] * (1.0 - t) + self.radii[s + 1] * t;
            best = best.min(norm(sub(p, closest)) - r);
        }
        best
    }
}

/// Fraction of a voxel inside a surface, from the signed distance and the
/// partial-volume width (about one voxel): 1 inside, 0 outside.
#[inline]
pub fn coverage(sdf: f64, width: f64) -> f32 {
    (0.5 - sdf / width).clamp(0.0, 1.0) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn blob_sdf_signs() {
        let b = Blob::new(
            [10.0, 0.0, 0.0],
            [20.0, 10.0, 5.0],
            rotation(0.0, 0.0, 0.0),
            Harmonics::none(),
        );
        assert!(b.sdf([10.0, 0.0, 0.0]) < 0.0);
        assert!((b.sdf([30.0, 0.0, 0.0])).abs() < 1e-9);
        assert!(b.sdf([10.0, 0.0, 6.0]) > 0.0);
        assert_eq!(b.sdf([500.0, 0.0, 0.0]), 1e3);
    }

    #[test]
    fn rotated_blob_follows_rotation() {
        let b = Blob::new(
            [0.0; 3],
            [20.0, 5.0, 5.0],
            rotation(0.0, 0.0, std::f64::consts::FRAC_PI_2),
            Harmonics::none(),
        );
        assert!(b.sdf([0.0, 18.0, 0.0]) < 0.0);
        assert!(b.sdf([18.0, 0.0, 0.0]) > 0.0);
    }

    #[test]
    fn tube_distance() {
        let t = Tube::new(vec![[0.0, 0.0, 0.0], [0.0, 0.0, 100.0]], vec![5.0, 10.0]);
        assert!((t.sdf([0.0, 0.0, 50.0]) + 7.5).abs() < 1e-9);
        assert!((t.sdf([15.0, 0.0, 0.0]) - 10.0).abs() < 1e-9);
        // Far away the culled distance is just "outside".
        assert!(t.sdf([60.0, 0.0, 0.0]) > 10.0);
    }

    #[test]
    fn harmonics_deform_but_stay_bounded() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let h = Harmonics::random(&mut rng, 4, 0.1);
        let b = Blob::new([0.0; 3], [30.0, 30.0, 30.0], rotation(0.0, 0.0, 0.0), h);
        let radii: Vec<f64> = (0..32)
            .map(|i| {
                let t = i as f64 / 32.0 * std::f64::consts::TAU;
                // find the surface along a ray by bisection
                let (mut lo, mut hi) = (0.0, 60.0);
                for _ in 0..50 {
                    let m = 0.5 * (lo + hi);
                    if b.sdf([m * t.cos(), m * t.sin(), 0.0]) < 0.0 {
                        lo = m
                    } else {
                        hi = m
                    }
                }
                lo
            })
            .collect();
        let min = radii.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = radii.iter().cloned().fold(0.0, f64::max);
        assert!(max - min > 1.0, "not deformed: {min}..{max}");
        assert!(min > 30.0 * 0.6 && max < 30.0 * 1.4);
        assert!(coverage(-5.0, 1.0) == 1.0 && coverage(5.0, 1.0) == 0.0);
    }
}
