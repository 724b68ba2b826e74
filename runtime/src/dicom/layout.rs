//! A series' frames placed in space: sorted along the slice normal, checked
//! for a geometry one affine can represent exactly, and that affine.
//!
//! The construction is ITK's (and so SimpleITK's): i runs along the image
//! rows (ImageOrientationPatient's first vector), j down the columns (its
//! second), k along their cross product; slices are sorted by their
//! position on that normal; the origin is the first slice's
//! ImagePositionPatient; the slice spacing is the distance from the first to
//! the last slice over the number of gaps. DICOM's LPS coordinates become
//! RAS+ by negating x and y.
//!
//! Refused, with the series named: frames of different sizes, orientations
//! or pixel spacings; frames without a position or orientation; two frames
//! at one position; missing slices and uneven spacing; slices sheared
//! against their planes (gantry tilt). Jitter is accepted: a slice may sit
//! up to [`SLICE_JITTER_TOLERANCE`] of the slice spacing away from its
//! evenly spaced place (a note says how far the worst one was).

use super::series::{Frame, Series};
use crate::geometry::Affine;
use crate::volume::VolumeError;

/// How far (as a fraction of the slice spacing) a slice may sit from its
/// evenly spaced position and still be accepted.
pub const SLICE_JITTER_TOLERANCE: f64 = 0.1;

/// Orientation vectors and pixel spacings must agree to this (relative).
const SAME_TOLERANCE: f64 = 1e-4;

/// Where each frame goes.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Indices into `series.frames`, in slice order (k).
    pub order: Vec<usize>,
    /// Voxel (i, j, k) → world, RAS+ mm.
    pub affine: Affine,
    /// Voxels along i (columns), j (rows), k (slices).
    pub shape: [usize; 3],
    /// Accepted irregularities, worth telling the user.
    pub notes: Vec<String>,
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn unit(a: [f64; 3]) -> [f64; 3] {
    let n = norm(a);
    [a[0] / n, a[1] / n, a[2] / n]
}

/// Place the frames of `series`.
pub fn layout(series: &Series) -> Result<Layout, VolumeError> {
    let frames = &series.frames;
    let first = &frames[0];
    let where_ = |f: &Frame| {
        if f.multi_frame {
            format!("{} frame {}", f.file.display(), f.frame + 1)
        } else {
            f.file.display().to_string()
        }
    };
    if first.samples_per_pixel != 1 || !first.photometric.starts_with("MONOCHROME") {
        return Err(series.error(format!(
            "{} images with {} samples per pixel are not grey-level volumes",
            if first.photometric.is_empty() {
                "colour"
            } else {
                first.photometric.as_str()
            },
            first.samples_per_pixel
        )));
    }
    let orientation = first
        .orientation
        .ok_or_else(|| series.error(format!("{} has no ImageOrientationPatient", where_(first))))?;
    let spacing = first
        .pixel_spacing
        .ok_or_else(|| series.error(format!("{} has no PixelSpacing", where_(first))))?;
    if spacing.iter().any(|s| !s.is_finite() || *s <= 0.0) {
        return Err(series.error(format!("PixelSpacing {spacing:?} is not positive")));
    }
    let row = unit([orientation[0], orientation[1], orientation[2]]);
    let col = unit([orientation[3], orientation[4], orientation[5]]);
    if !row.iter().chain(col.iter()).all(|v| v.is_finite()) || dot(row, col).abs() > 1e-3 {
        return Err(series.error(format!(
            "ImageOrientationPatient {orientation:?} does not hold two perpendicular directions"
        )));
    }
    let normal = unit(cross(row, col));
    for f in frames {
        if (f.rows, f.columns) != (first.rows, first.columns) {
            return Err(series.error(format!(
                "mixed image sizes: {} is {}x{}, {} is {}x{}",
                where_(first),
                first.columns,
                first.rows,
                where_(f),
                f.columns,
                f.rows
            )));
        }
        if (f.samples_per_pixel, &f.photometric) != (first.samples_per_pixel, &first.photometric) {
            return Err(series.error(format!(
                "mixed pixel formats: {} is {}, {} is {}",
                where_(first),
                first.photometric,
                where_(f),
                f.photometric
            )));
        }
        let o = f
            .orientation
            .ok_or_else(|| series.error(format!("{} has no ImageOrientationPatient", where_(f))))?;
        let (r, c) = (unit([o[0], o[1], o[2]]), unit([o[3], o[4], o[5]]));
        if norm(sub(r, row)) > SAME_TOLERANCE || norm(sub(c, col)) > SAME_TOLERANCE {
            return Err(series.error(format!(
                "mixed orientations: {} has ImageOrientationPatient {:?}, {} has {:?} (a localizer or a second stack in the series?)",
                where_(first),
                orientation,
                where_(f),
                o
            )));
        }
        let s = f
            .pixel_spacing
            .ok_or_else(|| series.error(format!("{} has no PixelSpacing", where_(f))))?;
        if (0..2).any(|a| (s[a] - spacing[a]).abs() > SAME_TOLERANCE * spacing[a]) {
            return Err(series.error(format!(
                "mixed pixel spacings: {} has {:?} mm, {} has {:?} mm",
                where_(first),
                spacing,
                where_(f),
                s
            )));
        }
        if f.position.is_none() {
            return Err(series.error(format!(
                "{} has no ImagePositionPatient: its place in the volume is unknown",
                where_(f)
            )));
        }
    }
    let pos = |i: usize| frames[i].position.expect("checked above");
    let mut order: Vec<usize> = (0..frames.len()).collect();
    order.sort_by(|&a, &b| dot(pos(a), normal).total_cmp(&dot(pos(b), normal)));
    let along: Vec<f64> = order.iter().map(|&i| dot(pos(i), normal)).collect();
    let n = order.len();
    let mut notes = Vec::new();
    let slice_spacing = if n == 1 {
        let t = first.slice_thickness.unwrap_or(1.0);
        notes.push(format!(
            "a single slice: its thickness along the normal is taken as {t} mm ({})",
            if first.slice_thickness.is_some() {
                "SliceThickness"
            } else {
                "no SliceThickness; 1 mm assumed"
            }
        ));
        t
    } else {
        let gaps: Vec<f64> = along.windows(2).map(|w| w[1] - w[0]).collect();
        let mut sorted = gaps.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        let min_allowed = 1e-3 * median.max(1e-3);
        if let Some(k) = gaps.iter().position(|&g| g <= min_allowed) {
            let same = gaps.iter().filter(|&&g| g <= min_allowed).count();
            return Err(series.error(format!(
                "{} pairs of slices share a position (e.g. {} and {}, at {:.3} mm along the normal): several acquisitions, echoes or phases in one series? Select the images of one volume",
                same,
                where_(&frames[order[k]]),
                where_(&frames[order[k + 1]]),
                along[k]
            )));
        }
        let step = (along[n - 1] - along[0]) / (n - 1) as f64;
        let (worst, worst_k) = along
            .iter()
            .enumerate()
            .map(|(k, &a)| ((a - (along[0] + k as f64 * step)).abs(), k))
            .fold((0.0, 0), |m, x| if x.0 > m.0 { x } else { m });
        if worst > SLICE_JITTER_TOLERANCE * step {
            let max_gap = sorted[sorted.len() - 1];
            let k = gaps.iter().position(|&g| g == max_gap).unwrap_or(0);
            if max_gap > 1.5 * median {
                let missing = (max_gap / median).round() as i64 - 1;
                return Err(series.error(format!(
                    "missing slices: a gap of {:.3} mm between {} and {} where the other slices are {:.3} mm apart (about {} slice{} missing)",
                    max_gap,
                    where_(&frames[order[k]]),
                    where_(&frames[order[k + 1]]),
                    median,
                    missing.max(1),
                    if missing > 1 { "s" } else { "" }
                )));
            }
            return Err(series.error(format!(
                "uneven slice spacing: gaps from {:.3} to {:.3} mm; {} is {:.3} mm ({:.0} % of the spacing) from an evenly spaced position, more than the {:.0} % accepted",
                sorted[0],
                max_gap,
                where_(&frames[order[worst_k]]),
                worst,
                100.0 * worst / step,
                100.0 * SLICE_JITTER_TOLERANCE
            )));
        }
        if worst > 1e-3 * step {
            notes.push(format!(
                "slice positions jitter by up to {:.3} mm ({:.1} % of the {:.4} mm spacing, within the {:.0} % accepted)",
                worst,
                100.0 * worst / step,
                step,
                100.0 * SLICE_JITTER_TOLERANCE
            ));
        }
        // Gantry tilt: the stack advances sideways as well as along the normal.
        let span = sub(pos(order[n - 1]), pos(order[0]));
        let lateral = norm(sub(
            span,
            [
                normal[0] * dot(span, normal),
                normal[1] * dot(span, normal),
                normal[2] * dot(span, normal),
            ],
        ));
        let limit = 0.5 * spacing[0].min(spacing[1]);
        if lateral > limit {
            let degrees = lateral.atan2(dot(span, normal)).to_degrees();
            return Err(series.error(format!(
                "the slices are sheared against their planes (gantry tilt of about {degrees:.2}°: the stack moves {lateral:.2} mm sideways over {:.1} mm); such a volume has no rectangular grid. Resample it to an untilted grid first (e.g. with the scanner's or PACS's tilt correction)",
                dot(span, normal)
            )));
        }
        step
    };
    // Direction columns scaled by spacing, in LPS; then LPS → RAS.
    let cols = [
        [row[0] * spacing[1], row[1] * spacing[1], row[2] * spacing[1]],
        [col[0] * spacing[0], col[1] * spacing[0], col[2] * spacing[0]],
        [
            normal[0] * slice_spacing,
            normal[1] * slice_spacing,
            normal[2] * slice_spacing,
        ],
    ];
    let origin = pos(order[0]);
    let mut m = [[0.0; 4]; 4];
    for r in 0..3 {
        let sign = if r < 2 { -1.0 } else { 1.0 };
        for (c, column) in cols.iter().enumerate() {
            m[r][c] = sign * column[r];
        }
        m[r][3] = sign * origin[r];
    }
    m[3][3] = 1.0;
    Ok(Layout {
        order,
        affine: Affine(m),
        shape: [first.columns as usize, first.rows as usize, n],
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_object::InMemDicomObject;
    use std::path::PathBuf;

    fn frame(k: usize, position: [f64; 3]) -> Frame {
        Frame {
            file: PathBuf::from(format!("s{k}.dcm")),
            frame: 0,
            multi_frame: false,
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            sop_instance_uid: format!("1.2.3.{k}"),
            position: Some(position),
            orientation: Some([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
            pixel_spacing: Some([0.5, 0.7]),
            slice_thickness: Some(2.0),
            rows: 4,
            columns: 3,
            rescale: (1.0, -1024.0),
            samples_per_pixel: 1,
            photometric: "MONOCHROME2".into(),
        }
    }

    fn series(z: &[f64]) -> Series {
        Series {
            uid: "1.2.3".into(),
            modality: "CT".into(),
            description: String::new(),
            number: None,
            source: PathBuf::from("dir"),
            // Shuffled: the layout must sort them.
            frames: z
                .iter()
                .enumerate()
                .rev()
                .map(|(k, &z)| frame(k, [10.0, 20.0, z]))
                .collect(),
            context: InMemDicomObject::new_empty(),
        }
    }

    #[test]
    fn axial_series_sorted_and_flipped_to_ras() {
        let l = layout(&series(&[-10.0, -8.0, -6.0, -4.0])).unwrap();
        assert_eq!(l.shape, [3, 4, 4]);
        // Sorted ascending along +z (the normal of rows x columns).
        let z: Vec<f64> = l
            .order
            .iter()
            .map(|&i| series(&[-10.0, -8.0, -6.0, -4.0]).frames[i].position.unwrap()[2])
            .collect();
        assert_eq!(z, vec![-10.0, -8.0, -6.0, -4.0]);
        let a = l.affine.rows();
        assert_eq!(a[0], [-0.7, 0.0, 0.0, -10.0]);
        assert_eq!(a[1], [0.0, -0.5, 0.0, -20.0]);
        assert_eq!(a[2], [0.0, 0.0, 2.0, -10.0]);
        assert!(l.notes.is_empty());
    }

    #[test]
    fn jitter_accepted_with_a_note_uneven_and_missing_refused() {
        let l = layout(&series(&[0.0, 2.02, 3.98, 6.0])).unwrap();
        assert!((l.affine.rows()[2][2] - 2.0).abs() < 1e-12);
        assert!(l.notes[0].contains("jitter"), "{:?}", l.notes);
        let e = layout(&series(&[0.0, 2.0, 4.0, 8.0, 10.0])).unwrap_err().to_string();
        assert!(
            e.contains("missing slices") && e.contains("about 1 slice missing"),
            "{e}"
        );
        let e = layout(&series(&[0.0, 2.0, 4.6, 6.0, 8.0])).unwrap_err().to_string();
        assert!(e.contains("uneven slice spacing"), "{e}");
        let e = layout(&series(&[0.0, 2.0, 2.0, 4.0])).unwrap_err().to_string();
        assert!(e.contains("share a position"), "{e}");
    }

    #[test]
    fn tilt_and_mixed_orientation_refused() {
        let mut s = series(&[0.0, 2.0, 4.0, 6.0]);
        for f in &mut s.frames {
            let p = f.position.as_mut().unwrap();
            p[1] += p[2] * 0.2; // 11° tilt
        }
        let e = layout(&s).unwrap_err().to_string();
        assert!(e.contains("gantry tilt"), "{e}");
        let mut s = series(&[0.0, 2.0, 4.0]);
        s.frames[1].orientation = Some([0.0, 1.0, 0.0, 0.0, 0.0, -1.0]);
        let e = layout(&s).unwrap_err().to_string();
        assert!(e.contains("mixed orientations") && e.contains("series 1.2.3"), "{e}");
    }
}
