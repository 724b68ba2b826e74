//! The phantom body: one random anatomy per case, evaluated at any world
//! point (RAS+ mm) into a tissue mixture and labels.
//!
//! Everything is laid out in a nominal body frame (x to the patient's right,
//! y anterior, z superior; z = 0 at the pubic symphysis, the spine along the
//! back), then varied per case: body size and height, a smooth global warp,
//! and for each structure its position, size, rotation and a smooth surface
//! deformation. Rendering blends tissues by their coverage of each voxel, so
//! edges have partial-volume values.

use rand::Rng;
use rand_distr::{Distribution, Normal};

use super::shapes::{coverage, dot, random_unit, rotation, Blob, Harmonics, Tube, P3};
use edge_seg_models::labels::Task;

/// Tissues that make up the image; intensities come from a per-modality table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Tissue {
    Air,
    Skin,
    Fat,
    Muscle,
    VisceralFat,
    Bone,
    Marrow,
    Disc,
    Csf,
    Liver,
    Spleen,
    KidneyCortex,
    KidneyPelvis,
    Bile,
    StomachWall,
    StomachContent,
    Gas,
    Pancreas,
    ArterialBlood,
    VenousBlood,
    Lung,
    LungVessel,
    Fissure,
    Myocardium,
    HeartBlood,
    AirwayWall,
    Urine,
    BladderWall,
    ProstateCentral,
    ProstatePeripheral,
    GutWall,
    GutContent,
}

pub const TISSUES: usize = Tissue::GutContent as usize + 1;

/// Mean intensity per tissue: Hounsfield units for CT (portal-venous
/// contrast phase), arbitrary T2-weighted units for MR.
pub fn tissue_table(modality_mr: bool) -> [f32; TISSUES] {
    use Tissue::*;
    let mut t = [0f32; TISSUES];
    let ct: [(Tissue, f32, f32); TISSUES] = [
        (Air, -1000.0, 0.0),
        (Skin, 30.0, 300.0),
        (Fat, -100.0, 700.0),
        (Muscle, 50.0, 180.0),
        (VisceralFat, -90.0, 650.0),
        (Bone, 700.0, 60.0),
        (Marrow, 230.0, 550.0),
        (Disc, 80.0, 500.0),
        (Csf, 10.0, 1300.0),
        (Liver, 100.0, 250.0),
        (Spleen, 118.0, 450.0),
        (KidneyCortex, 175.0, 500.0),
        (KidneyPelvis, 25.0, 1200.0),
        (Bile, 8.0, 1400.0),
        (StomachWall, 85.0, 300.0),
        (StomachContent, 25.0, 900.0),
        (Gas, -950.0, 20.0),
        (Pancreas, 80.0, 350.0),
        (ArterialBlood, 210.0, 80.0),
        (VenousBlood, 150.0, 300.0),
        (Lung, -860.0, 30.0),
        (LungVessel, 40.0, 100.0),
        (Fissure, -650.0, 40.0),
        (Myocardium, 100.0, 200.0),
        (HeartBlood, 190.0, 150.0),
        (AirwayWall, 60.0, 250.0),
        (Urine, 10.0, 1350.0),
        (BladderWall, 40.0, 200.0),
        (ProstateCentral, 45.0, 380.0),
        (ProstatePeripheral, 38.0, 760.0),
        (GutWall, 45.0, 280.0),
        (GutContent, 20.0, 800.0),
    ];
    for (tissue, hu, mr) in ct {
        t[tissue as usize] = if modality_mr { mr } else { hu };
    }
    t
}

/// What one point of the body holds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// Mixed intensity (from the tissue table).
    pub value: f32,
    /// Base-vocabulary label (0 = none).
    pub base: u8,
    /// Label of the downstream task being rendered (0 = none).
    pub task: u8,
}

/// A case's body.
pub struct Anatomy {
    warp: Vec<(P3, P3, f64)>,
    body_scale: [f64; 3],
    fat: f64,
    muscle: f64,
    spine_y: f64,
    vertebrae: Vec<(Blob, f64, f64)>, // body, disc bottom z, disc top z
    canal: Tube,
    arches: Vec<Blob>,
    ribs: Vec<Tube>,
    pelvis: Vec<Blob>,
    femoral_heads: Vec<Blob>,
    muscles: Vec<Tube>,
    gut: Vec<Blob>,
    gut_gas: Vec<Blob>,
    liver: Vec<Blob>,
    spleen: Blob,
    kidneys: Vec<Blob>,
    renal_pelvis: Vec<Blob>,
    gallbladder: Blob,
    stomach: Blob,
    stomach_gas_level: f64,
    pancreas: Tube,
    aorta: Tube,
    iliac_arteries: Vec<Tube>,
    ivc: Tube,
    iliac_veins: Vec<Tube>,
    lungs: [Blob; 2],
    lung_vessels: Vec<Tube>,
    fissures: Fissures,
    heart: Blob,
    heart_blood: Blob,
    trachea: Tube,
    bronchi: Vec<Tube>,
    esophagus: Tube,
    bladder: Blob,
    prostate: Blob,
    prostate_central: Blob,
    rectum: Tube,
    table: [f32; TISSUES],
}

/// Fissure planes (point, normal, deformation) of the lungs.
struct Fissures {
    right_oblique: (P3, P3, Harmonics),
    right_horizontal: (P3, P3, Harmonics),
    left_oblique: (P3, P3, Harmonics),
}

/// Per-case randomisation helpers.
struct Jitter<'a, R: Rng> {
    rng: &'a mut R,
    pos_mm: f64,
    size: f64,
    angle: f64,
    deform: f64,
}

impl<R: Rng> Jitter<'_, R> {
    fn normal(&mut self, sd: f64) -> f64 {
        Normal::new(0.0, sd).unwrap().sample(self.rng)
    }

    fn blob(&mut self, centre: P3, radii: P3, angles_deg: P3) -> Blob {
        let c = [0, 1, 2].map(|d| centre[d] + self.normal(self.pos_mm));
        let r = radii.map(|v| v * self.rng.random_range(1.0 - self.size..1.0 + self.size));
        let a = angles_deg.map(|v| (v + self.normal(self.angle)).to_radians());
        let h = Harmonics::random(self.rng, 4, self.deform);
        Blob::new(c, r, rotation(a[0], a[1], a[2]), h)
    }

    fn tube(&mut self, points: &[P3], radii: &[f64]) -> Tube {
        let shift = [self.normal(self.pos_mm * 0.6), self.normal(self.pos_mm * 0.6), 0.0];
        let s = self.rng.random_range(1.0 - self.size * 0.7..1.0 + self.size * 0.7);
        let pts = points
            .iter()
            .map(|p| {
                [
                    p[0] + shift[0] + self.normal(2.0),
                    p[1] + shift[1] + self.normal(2.0),
                    p[2],
                ]
            })
            .collect();
        Tube::new(pts, radii.iter().map(|r| r * s).collect())
    }
}

/// Body half-width (x) and half-depth (y) at height z, nominal mm.
fn body_profile(z: f64) -> (f64, f64) {
    const ANCHORS: [(f64, f64, f64); 9] = [
        (-80.0, 150.0, 105.0),
        (0.0, 165.0, 110.0),
        (150.0, 160.0, 108.0),
        (300.0, 152.0, 115.0),
        (450.0, 162.0, 115.0),
        (600.0, 170.0, 110.0),
        (680.0, 160.0, 100.0),
        (730.0, 72.0, 66.0),
        (820.0, 62.0, 62.0),
    ];
    if z <= ANCHORS[0].0 {
        return (ANCHORS[0].1, ANCHORS[0].2);
    }
    for w in ANCHORS.windows(2) {
        let (z0, a0, b0) = w[0];
        let (z1, a1, b1) = w[1];
        if z <= z1 {
            let t = (z - z0) / (z1 - z0);
            let s = t * t * (3.0 - 2.0 * t);
            return (a0 + (a1 - a0) * s, b0 + (b1 - b0) * s);
        }
    }
    (ANCHORS[8].1, ANCHORS[8].2)
}

/// Spine's y position (vertebral body centre) at height z: a gentle S-curve.
fn spine_curve(z: f64, base: f64) -> f64 {
    base + 8.0 * ((z - 80.0) / 650.0 * std::f64::consts::PI * 1.6).sin()
}

impl Anatomy {
    /// A random body. `mr` selects the MR intensity table.
    pub fn random(rng: &mut impl Rng, mr: bool) -> Anatomy {
        let mut table = tissue_table(mr);
        // Per-case contrast variation.
        let spread = if mr { 40.0 } else { 8.0 };
        for (i, v) in table.iter_mut().enumerate() {
            if i != Tissue::Air as usize {
                *v += rng.random_range(-spread..spread);
            }
        }
        if !mr {
            table[Tissue::ArterialBlood as usize] = rng.random_range(160.0..300.0);
            table[Tissue::VenousBlood as usize] = rng.random_range(120.0..180.0);
        }
        let warp = (0..3)
            .map(|_| {
                let amp = super::shapes::scale(random_unit(rng), rng.random_range(2.0..6.0));
                let omega =
                    super::shapes::scale(random_unit(rng), std::f64::consts::TAU / rng.random_range(250.0..500.0));
                (amp, omega, rng.random_range(0.0..std::f64::consts::TAU))
            })
            .collect();
        let body_scale = [
            rng.random_range(0.85..1.15),
            rng.random_range(0.85..1.18),
            rng.random_range(0.93..1.07),
        ];
        let fat = rng.random_range(8.0..32.0);
        let muscle = rng.random_range(8.0..14.0);
        let spine_y = -58.0 + rng.random_range(-5.0..5.0);
        let mut j = Jitter {
            rng,
            pos_mm: 5.0,
            size: 0.12,
            angle: 8.0,
            deform: 0.07,
        };
        let sy = |z: f64| spine_curve(z, spine_y);

        // Spine: vertebral bodies separated by discs, from the sacrum up.
        let mut vertebrae = Vec::new();
        let mut arches = Vec::new();
        let mut z = 110.0;
        while z < 760.0 {
            let height = j.rng.random_range(20.0..27.0) * if z > 600.0 { 0.85 } else { 1.0 };
            let disc = j.rng.random_range(5.0..8.0);
            let zc = z + height / 2.0;
            let w = if z > 600.0 { 16.0 } else { 21.0 };
            let body = Blob::new(
                [0.0, sy(zc), zc],
                [w, w * 0.85, height / 2.0],
                rotation(0.0, 0.0, 0.0),
                Harmonics::random(j.rng, 2, 0.03),
            );
            vertebrae.push((body, z + height, z + height + disc));
            arches.push(Blob::new(
                [0.0, sy(zc) - w * 0.85 - 16.0, zc],
                [18.0, 14.0, height * 0.45],
                rotation(0.0, 0.0, 0.0),
                Harmonics::none(),
            ));
            arches.push(Blob::new(
                [0.0, sy(zc) - w * 0.85 - 36.0, zc - 4.0],
                [5.0, 14.0, height * 0.4],
                rotation(0.3, 0.0, 0.0),
                Harmonics::none(),
            ));
            z += height + disc;
        }
        let canal_pts: Vec<P3> = (0..12)
            .map(|i| {
                let z = 100.0 + i as f64 * 62.0;
                [0.0, sy(z) - 35.0, z]
            })
            .collect();
        let canal = Tube::new(canal_pts, vec![8.0; 12]);

        // Ribs: arcs from the spine round to the front, sloping down.
        let mut ribs = Vec::new();
        for r in 0..11 {
            let zr = 390.0 + r as f64 * 24.0 + j.normal(2.0);
            let (a, b) = body_profile(zr);
            for side in [-1.0, 1.0] {
                let pts: Vec<P3> = (0..9)
                    .map(|s| {
                        let t = s as f64 / 8.0; // 0 = back, 1 = front
                        let ang = std::f64::consts::PI * (0.08 + 0.75 * t);
                        let x = side * (a - fat - 18.0) * ang.sin();
                        let y = -(b - fat - 16.0) * ang.cos();
                        [x, y, zr - 40.0 * t]
                    })
                    .collect();
                ribs.push(Tube::new(pts, vec![5.0; 9]));
            }
        }
        let pelvis = vec![
            j.blob([95.0, -25.0, 120.0], [40.0, 12.0, 55.0], [0.0, 0.0, 55.0]),
            j.blob([-95.0, -25.0, 120.0], [40.0, 12.0, 55.0], [0.0, 0.0, -55.0]),
            j.blob([0.0, spine_y - 10.0, 85.0], [38.0, 18.0, 40.0], [-20.0, 0.0, 0.0]),
            j.blob([32.0, 78.0, 10.0], [28.0, 9.0, 14.0], [0.0, 0.0, -25.0]),
            j.blob([-32.0, 78.0, 10.0], [28.0, 9.0, 14.0], [0.0, 0.0, 25.0]),
        ];
        let femoral_heads = vec![
            j.blob([92.0, 15.0, 5.0], [24.0, 24.0, 24.0], [0.0, 0.0, 0.0]),
            j.blob([-92.0, 15.0, 5.0], [24.0, 24.0, 24.0], [0.0, 0.0, 0.0]),
        ];
        let muscles = vec![
            j.tube(
                &[
                    [35.0, spine_y + 5.0, 360.0],
                    [48.0, spine_y + 15.0, 200.0],
                    [75.0, 10.0, 60.0],
                ],
                &[12.0, 24.0, 20.0],
            ),
            j.tube(
                &[
                    [-35.0, spine_y + 5.0, 360.0],
                    [-48.0, spine_y + 15.0, 200.0],
                    [-75.0, 10.0, 60.0],
                ],
                &[12.0, 24.0, 20.0],
            ),
            j.tube(
                &[[40.0, spine_y - 45.0, 80.0], [40.0, spine_y - 48.0, 680.0]],
                &[22.0, 18.0],
            ),
            j.tube(
                &[[-40.0, spine_y - 45.0, 80.0], [-40.0, spine_y - 48.0, 680.0]],
                &[22.0, 18.0],
            ),
        ];
        // Bowel loops in the lower abdomen, some with gas.
        let mut gut = Vec::new();
        let mut gut_gas = Vec::new();
        for _ in 0..14 {
            let c = [
                j.rng.random_range(-95.0..95.0),
                j.rng.random_range(-20.0..60.0),
                j.rng.random_range(90.0..300.0),
            ];
            let r = j.rng.random_range(14.0..24.0);
            gut.push(j.blob(c, [r, r * 0.9, r * 1.2], [0.0, 0.0, 0.0]));
            if j.rng.random_bool(0.4) {
                gut_gas.push(Blob::new(
                    [c[0], c[1] + r * 0.4, c[2]],
                    [r * 0.5; 3],
                    rotation(0.0, 0.0, 0.0),
                    Harmonics::none(),
                ));
            }
        }
        let liver = vec![
            j.blob([68.0, 8.0, 410.0], [80.0, 82.0, 72.0], [0.0, 10.0, -12.0]),
            j.blob([-8.0, 45.0, 430.0], [52.0, 32.0, 40.0], [0.0, 0.0, 10.0]),
        ];
        let spleen = j.blob([-92.0, -42.0, 420.0], [30.0, 50.0, 55.0], [0.0, 0.0, 35.0]);
        let kidneys = vec![
            j.blob([72.0, spine_y + 15.0, 290.0], [27.0, 24.0, 52.0], [0.0, 14.0, 18.0]),
            j.blob([-72.0, spine_y + 15.0, 305.0], [27.0, 24.0, 52.0], [0.0, -14.0, -18.0]),
        ];
        let renal_pelvis = kidneys
            .iter()
            .map(|k| {
                let side = k.centre[0].signum();
                Blob::new(
                    [k.centre[0] - side * 10.0, k.centre[1] + 4.0, k.centre[2]],
                    [9.0, 8.0, 16.0],
                    rotation(0.0, 0.0, 0.0),
                    Harmonics::none(),
                )
            })
            .collect();
        let gallbladder = j.blob([48.0, 52.0, 348.0], [15.0, 17.0, 36.0], [20.0, -15.0, 0.0]);
        let stomach = j.blob([-52.0, 32.0, 432.0], [48.0, 36.0, 58.0], [0.0, -20.0, 25.0]);
        let stomach_gas_level = stomach.centre[2] + j.rng.random_range(0.1..0.6) * stomach.radii[2];
        let pancreas = j.tube(
            &[
                [32.0, -2.0, 338.0],
                [5.0, -12.0, 348.0],
                [-35.0, -18.0, 360.0],
                [-75.0, -28.0, 372.0],
            ],
            &[14.0, 11.0, 10.0, 11.0],
        );
        let ay = spine_y + 36.0;
        let aorta = j.tube(
            &[
                [-14.0, ay, 150.0],
                [-14.0, ay, 350.0],
                [-16.0, ay - 2.0, 520.0],
                [-18.0, ay - 4.0, 600.0],
                [-8.0, 10.0, 630.0],
                [2.0, 28.0, 600.0],
                [-2.0, 36.0, 545.0],
            ],
            &[11.0, 12.0, 12.0, 13.0, 14.0, 15.0, 15.0],
        );
        let iliac_arteries = vec![
            Tube::new(vec![[-14.0, ay, 152.0], [40.0, ay + 10.0, 60.0]], vec![7.0, 6.0]),
            Tube::new(vec![[-14.0, ay, 152.0], [-60.0, ay + 10.0, 60.0]], vec![7.0, 6.0]),
        ];
        let ivc = j.tube(
            &[
                [24.0, ay + 2.0, 150.0],
                [25.0, ay + 4.0, 330.0],
                [26.0, ay + 10.0, 460.0],
                [22.0, 12.0, 505.0],
            ],
            &[10.0, 11.0, 12.0, 13.0],
        );
        let iliac_veins = vec![
            Tube::new(vec![[24.0, ay + 2.0, 152.0], [55.0, ay + 6.0, 60.0]], vec![8.0, 7.0]),
            Tube::new(vec![[24.0, ay + 2.0, 152.0], [-45.0, ay + 6.0, 60.0]], vec![8.0, 7.0]),
        ];
        let lungs = [
            j.blob([-78.0, -8.0, 590.0], [64.0, 84.0, 128.0], [0.0, 0.0, 0.0]),
            j.blob([80.0, -8.0, 585.0], [68.0, 86.0, 132.0], [0.0, 0.0, 0.0]),
        ];
        let mut lung_vessels = Vec::new();
        for lung in &lungs {
            let side = lung.centre[0].signum();
            for _ in 0..10 {
                let hilum = [side * 40.0, 0.0, 570.0];
                let dir = random_unit(j.rng);
                let end = [
                    lung.centre[0] + dir[0].abs() * side * lung.radii[0] * 0.8,
                    lung.centre[1] + dir[1] * lung.radii[1] * 0.8,
                    lung.centre[2] + dir[2] * lung.radii[2] * 0.8,
                ];
                lung_vessels.push(Tube::new(vec![hilum, end], vec![4.0, 1.2]));
            }
        }
        let fissure = |j: &mut Jitter<_>, c: P3, n: P3| {
            let nn = super::shapes::scale(n, 1.0 / super::shapes::norm(n));
            (c, nn, Harmonics::random(j.rng, 3, 0.05))
        };
        let rl = lungs[1].centre;
        let ll = lungs[0].centre;
        let fissures = Fissures {
            right_oblique: fissure(&mut j, [rl[0], rl[1], rl[2] - 10.0], [0.0, 0.75, 0.66]),
            right_horizontal: fissure(&mut j, [rl[0], rl[1], rl[2] + 5.0], [0.0, 0.1, 1.0]),
            left_oblique: fissure(&mut j, [ll[0], ll[1], ll[2] - 5.0], [0.0, 0.7, 0.7]),
        };
        let heart = j.blob([-18.0, 38.0, 530.0], [58.0, 46.0, 52.0], [0.0, 15.0, -30.0]);
        let heart_blood = Blob::new(
            heart.centre,
            heart.radii.map(|r| r - 11.0),
            rotation(0.0, 0.0, -0.5),
            Harmonics::none(),
        );
        let ty = spine_y + 62.0;
        let trachea = j.tube(
            &[[0.0, ty + 8.0, 800.0], [0.0, ty + 4.0, 700.0], [0.0, ty, 608.0]],
            &[9.0, 9.0, 9.0],
        );
        let bronchi = vec![
            Tube::new(
                vec![[0.0, ty, 608.0], [42.0, ty - 4.0, 575.0], [60.0, ty - 8.0, 555.0]],
                vec![6.5, 5.0, 3.0],
            ),
            Tube::new(
                vec![[0.0, ty, 608.0], [-42.0, ty - 4.0, 580.0], [-60.0, ty - 8.0, 560.0]],
                vec![6.5, 5.0, 3.0],
            ),
        ];
        let ey = spine_y + 38.0;
        let esophagus = j.tube(
            &[
                [-2.0, ey + 4.0, 800.0],
                [-4.0, ey, 640.0],
                [-8.0, ey - 4.0, 520.0],
                [-18.0, ey + 6.0, 470.0],
                [
                    stomach.centre[0] + 10.0,
                    stomach.centre[1] - 10.0,
                    stomach.centre[2] + stomach.radii[2] * 0.6,
                ],
            ],
            &[7.5, 8.0, 8.0, 8.5, 9.0],
        );
        let bladder = j.blob([0.0, 48.0, 48.0], [44.0, 34.0, 34.0], [10.0, 0.0, 0.0]);
        let prostate = j.blob([0.0, 32.0, -8.0], [20.0, 16.0, 18.0], [10.0, 0.0, 0.0]);
        let prostate_central = Blob::new(
            [prostate.centre[0], prostate.centre[1] + 3.0, prostate.centre[2] + 2.0],
            prostate.radii.map(|r| r * 0.62),
            rotation(0.0, 0.0, 0.0),
            Harmonics::none(),
        );
        let rectum = j.tube(
            &[[0.0, 5.0, -60.0], [0.0, 4.0, 20.0], [-10.0, -20.0, 120.0]],
            &[15.0, 17.0, 16.0],
        );
        Anatomy {
            warp,
            body_scale,
            fat,
            muscle,
            spine_y,
            vertebrae,
            canal,
            arches,
            ribs,
            pelvis,
            femoral_heads,
            muscles,
            gut,
            gut_gas,
            liver,
            spleen,
            kidneys,
            renal_pelvis,
            gallbladder,
            stomach,
            stomach_gas_level,
            pancreas,
            aorta,
            iliac_arteries,
            ivc,
            iliac_veins,
            lungs,
            lung_vessels,
            fissures,
            heart,
            heart_blood,
            trachea,
            bronchi,
            esophagus,
            bladder,
            prostate,
            prostate_central,
            rectum,
            table,
        }
    }

    /// World point → nominal body frame.
    fn to_body(&self, p: P3) -> P3 {
        let mut q = p;
        for (amp, omega, phase) in &self.warp {
            let s = (dot(*omega, p) + phase).sin();
            q = [q[0] + amp[0] * s, q[1] + amp[1] * s, q[2] + amp[2] * s];
        }
        [
            q[0] / self.body_scale[0],
            q[1] / self.body_scale[1],
            q[2] / self.body_scale[2],
        ]
    }

    /// Signed distance to the skin surface (nominal mm).
    fn body_sdf(&self, q: P3) -> f64 {
        let (a, b) = body_profile(q[2]);
        let n = 2.6;
        let r = ((q[0] / a).abs().powf(n) + (q[1] / b).abs().powf(n)).powf(1.0 / n);
        (r - 1.0) * a.min(b)
    }

    /// Evaluate the body at world point `p` (mm); `width` is the
    /// partial-volume width (about one voxel); `task` selects which task
    /// label to report.
    pub fn eval(&self, p: P3, width: f64, task: Option<Task>) -> Sample {
        use Tissue::*;
        let q = self.to_body(p);
        let t = &self.table;
        let mut v = t[Air as usize];
        let mut base = 0u8;
        let mut task_label = 0u8;
        let paint = |v: &mut f32, sdf: f64, tissue: Tissue| {
            let a = coverage(sdf, width);
            if a > 0.0 {
                *v += (t[tissue as usize] - *v) * a;
            }
        };
        let body = self.body_sdf(q);
        if body > width {
            return Sample {
                value: v,
                base,
                task: 0,
            };
        }
        paint(&mut v, body, Skin);
        paint(&mut v, body + 2.5, Fat);
        paint(&mut v, body + 2.5 + self.fat, Muscle);
        let inner = body + 2.5 + self.fat + self.muscle;
        paint(&mut v, inner, VisceralFat);
        for m in &self.muscles {
            paint(&mut v, m.sdf(q), Muscle);
        }
        for g in &self.gut {
            let s = g.sdf(q);
            if s < width {
                paint(&mut v, s, GutWall);
                paint(&mut v, s + 3.0, GutContent);
            }
        }
        for g in &self.gut_gas {
            paint(&mut v, g.sdf(q).max(inner), Gas);
        }
        // Lungs, with vessels and fissures inside.
        for (side, lung) in self.lungs.iter().enumerate() {
            let s = lung.sdf(q).max(inner + 4.0);
            if s < width {
                paint(&mut v, s, Lung);
                for vessel in &self.lung_vessels {
                    let vs = vessel.sdf(q);
                    if vs < width {
                        paint(&mut v, vs.max(s), LungVessel);
                    }
                }
                let (lobe, fissure_dist) = self.lobe(side, q);
                paint(&mut v, (fissure_dist - 0.6).max(s), Fissure);
                if s < 0.0 {
                    base = if side == 0 { 9 } else { 10 };
                    if task == Some(Task::LungLobes) {
                        task_label = lobe;
                    }
                }
            }
        }
        let organ = |v: &mut f32, base: &mut u8, sdf: f64, tissue: Tissue, label: u8| {
            paint(v, sdf, tissue);
            if sdf < 0.0 {
                *base = label;
            }
        };
        for (k, pelvis) in self.kidneys.iter().zip(&self.renal_pelvis) {
            let s = k.sdf(q);
            if s < width {
                organ(&mut v, &mut base, s, KidneyCortex, 3);
                paint(&mut v, pelvis.sdf(q).max(s), KidneyPelvis);
            }
        }
        for a in &self.iliac_arteries {
            paint(&mut v, a.sdf(q), ArterialBlood);
        }
        for vein in &self.iliac_veins {
            paint(&mut v, vein.sdf(q), VenousBlood);
        }
        organ(&mut v, &mut base, self.ivc.sdf(q), VenousBlood, 8);
        organ(&mut v, &mut base, self.pancreas.sdf(q), Pancreas, 6);
        organ(&mut v, &mut base, self.spleen.sdf(q), Spleen, 2);
        for l in &self.liver {
            organ(&mut v, &mut base, l.sdf(q).max(inner + 1.0), Liver, 1);
        }
        organ(&mut v, &mut base, self.gallbladder.sdf(q), Bile, 4);
        let st = self.stomach.sdf(q).max(inner + 1.0);
        if st < width {
            organ(&mut v, &mut base, st, StomachWall, 5);
            let content = if q[2] > self.stomach_gas_level {
                Gas
            } else {
                StomachContent
            };
            paint(&mut v, st + 4.0, content);
        }
        organ(&mut v, &mut base, self.aorta.sdf(q), ArterialBlood, 7);
        let h = self.heart.sdf(q);
        if h < width {
            organ(&mut v, &mut base, h, Myocardium, 11);
            paint(&mut v, self.heart_blood.sdf(q).max(h), HeartBlood);
        }
        let e = self.esophagus.sdf(q);
        if e < width {
            paint(&mut v, e, GutWall);
            if e < 0.0 {
                if task == Some(Task::Esophagus) {
                    task_label = 1;
                }
                if base == 5 && task == Some(Task::Esophagus) {
                    // The stomach's cardia is not esophagus.
                    task_label = 0;
                }
            }
        }
        let tr = self.trachea.sdf(q);
        if tr < width {
            organ(&mut v, &mut base, tr, AirwayWall, 12);
            paint(&mut v, tr + 2.0, Air);
        }
        for b in &self.bronchi {
            let s = b.sdf(q);
            if s < width {
                paint(&mut v, s, AirwayWall);
                paint(&mut v, s + 1.5, Air);
                if s < 0.0 && base != 12 {
                    base = 0;
                    if task == Some(Task::LungLobes) {
                        task_label = 0;
                    }
                }
            }
        }
        let bl = self.bladder.sdf(q);
        if bl < width {
            organ(&mut v, &mut base, bl, BladderWall, 13);
            paint(&mut v, bl + 3.0, Urine);
        }
        let pr = self.prostate.sdf(q);
        if pr < width {
            paint(&mut v, pr, ProstatePeripheral);
            paint(&mut v, self.prostate_central.sdf(q).max(pr), ProstateCentral);
            if pr < 0.0 && task == Some(Task::Prostate) {
                task_label = 1;
            }
        }
        let re = self.rectum.sdf(q);
        if re < width {
            paint(&mut v, re, GutWall);
            paint(&mut v, re + 4.0, GutContent);
        }
        // Bones last: nothing soft lies inside them.
        for b in self.pelvis.iter().chain(&self.femoral_heads) {
            let s = b.sdf(q);
            if s < width {
                paint(&mut v, s, Bone);
                paint(&mut v, s + 3.0, Marrow);
                if s < 0.0 {
                    base = 0;
                }
            }
        }
        for r in &self.ribs {
            let s = r.sdf(q);
            if s < width {
                paint(&mut v, s, Bone);
                paint(&mut v, s + 2.0, Marrow);
                if s < 0.0 {
                    base = 0;
                }
            }
        }
        if (q[1] - spine_curve(q[2], self.spine_y)).abs() < 80.0 {
            for a in &self.arches {
                let s = a.sdf(q);
                if s < width {
                    paint(&mut v, s, Bone);
                    paint(&mut v, s + 2.5, Marrow);
                    if s < 0.0 {
                        base = 0;
                    }
                }
            }
            let c = self.canal.sdf(q);
            paint(&mut v, c, Csf);
            for (vb, disc_lo, disc_hi) in &self.vertebrae {
                let s = vb.sdf(q);
                if s < width {
                    paint(&mut v, s, Bone);
                    paint(&mut v, s + 2.0, Marrow);
                    if s < 0.0 {
                        base = 0;
                        if task == Some(Task::Vertebrae) {
                            task_label = 1;
                        }
                    }
                }
                // The disc above this body: a cylinder between the two bodies.
                if q[2] > *disc_lo && q[2] < *disc_hi {
                    let r = vb.radii[0].min(vb.radii[1]) * 0.95;
                    let d = ((q[0] - vb.centre[0]).powi(2) + ((q[1] - vb.centre[1]) / 0.85).powi(2)).sqrt() - r;
                    paint(&mut v, d, Disc);
                    if d < 0.0 {
                        base = 0;
                        if task == Some(Task::Vertebrae) {
                            task_label = 0;
                        }
                    }
                }
            }
        }
        if body >= 0.0 {
            base = 0;
            task_label = 0;
        }
        Sample {
            value: v,
            base,
            task: task_label,
        }
    }

    /// Lobe (task label 1..5) of a point inside lung `side` (0 left, 1
    /// right) and its distance to the nearest fissure.
    fn lobe(&self, side: usize, q: P3) -> (u8, f64) {
        let plane = |f: &(P3, P3, Harmonics)| {
            let d = super::shapes::sub(q, f.0);
            let dist = dot(d, f.1);
            let n = super::shapes::norm(d).max(1e-6);
            dist + 40.0 * f.2.eval(super::shapes::scale(d, 1.0 / n))
        };
        if side == 1 {
            let o = plane(&self.fissures.right_oblique);
            if o < 0.0 {
                return (3, o.abs()); // right lower
            }
            let h = plane(&self.fissures.right_horizontal);
            let d = o.abs().min(h.abs());
            if h > 0.0 {
                (1, d) // right upper
            } else {
                (2, d) // right middle
            }
        } else {
            let o = plane(&self.fissures.left_oblique);
            if o < 0.0 {
                (5, o.abs()) // left lower
            } else {
                (4, o.abs()) // left upper
            }
        }
    }
}
