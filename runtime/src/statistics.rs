//! Per-structure statistics of a label map over its scan: volume, intensity
//! in the scan's units (Hounsfield units for CT), centroid and bounding box
//! in millimetres, and whether the structure reaches the scan's edge (then
//! the scan cut it off, and its volume is a lower bound).

use ndarray::Array3;
use serde::Serialize;

use crate::geometry::Affine;

/// Intensity of a structure's voxels in the scan, in the scan's units.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Intensity {
    pub mean: f64,
    pub median: f64,
    /// Standard deviation (population).
    pub sd: f64,
    pub min: f64,
    pub max: f64,
}

/// One structure of a label map.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StructureReport {
    pub index: usize,
    pub name: String,
    pub voxels: u64,
    pub volume_ml: f64,
    /// Of the finite scan voxels under the structure; absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intensity: Option<Intensity>,
    /// Mean position of the structure's voxel centres, world mm, RAS+.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub centroid_ras_mm: Option<[f64; 3]>,
    /// The same point in LPS+ (DICOM's patient coordinates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub centroid_lps_mm: Option<[f64; 3]>,
    /// World-axis-aligned box around the structure's voxels (whole voxels,
    /// not centres): `[min, max]` corners, RAS+ mm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bbox_ras_mm: Option<[[f64; 3]; 2]>,
    /// The same box in LPS+.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bbox_lps_mm: Option<[[f64; 3]; 2]>,
    /// Some voxel of the structure lies on a face of the scan's grid: the
    /// field of view may cut it off, and its volume is then a lower bound.
    pub touches_border: bool,
}

/// Running sums of one label.
#[derive(Clone)]
struct Acc {
    voxels: u64,
    values: Vec<f32>,
    sum_ijk: [f64; 3],
    lo: [usize; 3],
    hi: [usize; 3],
    border: bool,
}

impl Acc {
    fn new() -> Acc {
        Acc {
            voxels: 0,
            values: Vec::new(),
            sum_ijk: [0.0; 3],
            lo: [usize::MAX; 3],
            hi: [0; 3],
            border: false,
        }
    }
}

fn lps(p: [f64; 3]) -> [f64; 3] {
    [-p[0], -p[1], p[2]]
}

/// Statistics of every label of `names` (index 0, the background, skipped)
/// in `labels` over `scan` (both `[k][j][i]` on the grid of `affine`).
/// Labels outside `names` are ignored.
pub fn structure_statistics(
    labels: &Array3<u16>,
    scan: &Array3<f32>,
    affine: &Affine,
    names: &[String],
) -> Vec<StructureReport> {
    assert_eq!(labels.dim(), scan.dim(), "label map and scan share a grid");
    let (nk, nj, ni) = labels.dim();
    let mut acc = vec![Acc::new(); names.len()];
    for ((k, j, i), &l) in labels.indexed_iter() {
        let l = l as usize;
        if l == 0 || l >= acc.len() {
            continue;
        }
        let a = &mut acc[l];
        a.voxels += 1;
        let v = scan[[k, j, i]];
        if v.is_finite() {
            a.values.push(v);
        }
        for (axis, c) in [i, j, k].into_iter().enumerate() {
            a.sum_ijk[axis] += c as f64;
            a.lo[axis] = a.lo[axis].min(c);
            a.hi[axis] = a.hi[axis].max(c);
        }
        if i == 0 || j == 0 || k == 0 || i + 1 == ni || j + 1 == nj || k + 1 == nk {
            a.border = true;
        }
    }
    let voxel_ml = affine.det3().abs() / 1000.0;
    names
        .iter()
        .enumerate()
        .skip(1)
        .map(|(index, name)| {
            let a = &mut acc[index];
            let n = a.voxels;
            let intensity = intensity(&mut a.values);
            let (centroid, bbox) = if n == 0 {
                (None, None)
            } else {
                let c = affine.apply(a.sum_ijk.map(|s| s / n as f64));
                // Whole voxels: the corners half a voxel beyond the extreme centres.
                let mut lo = [f64::INFINITY; 3];
                let mut hi = [f64::NEG_INFINITY; 3];
                for corner in 0..8 {
                    let p = [0, 1, 2].map(|axis| {
                        if corner >> axis & 1 == 0 {
                            a.lo[axis] as f64 - 0.5
                        } else {
                            a.hi[axis] as f64 + 0.5
                        }
                    });
                    let w = affine.apply(p);
                    for axis in 0..3 {
                        lo[axis] = lo[axis].min(w[axis]);
                        hi[axis] = hi[axis].max(w[axis]);
                    }
                }
                (Some(c), Some([lo, hi]))
            };
            StructureReport {
                index,
                name: name.clone(),
                voxels: n,
                volume_ml: n as f64 * voxel_ml,
                intensity,
                centroid_ras_mm: centroid,
                centroid_lps_mm: centroid.map(lps),
                bbox_ras_mm: bbox,
                // Flipping x and y swaps their box's corners.
                bbox_lps_mm: bbox.map(|[lo, hi]| [[-hi[0], -hi[1], lo[2]], [-lo[0], -lo[1], hi[2]]]),
                touches_border: a.border,
            }
        })
        .collect()
}

/// A warning for each structure cut by the scan's edge.
pub fn border_warnings(structures: &[StructureReport]) -> Vec<String> {
    structures
        .iter()
        .filter(|s| s.voxels > 0 && s.touches_border)
        .map(|s| {
            format!(
                "{} touches the scan's border: its volume ({:.1} mL) is a lower bound",
                s.name, s.volume_ml
            )
        })
        .collect()
}

fn intensity(values: &mut [f32]) -> Option<Intensity> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
    let sd = (values.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    for &v in values.iter() {
        min = min.min(v as f64);
        max = max.max(v as f64);
    }
    let m = values.len() / 2;
    let (_, &mut upper, _) = values.select_nth_unstable_by(m, f32::total_cmp);
    let median = if values.len() % 2 == 1 {
        upper as f64
    } else {
        // The lower middle value is the largest of the lower half.
        let lower = values[..m].iter().copied().fold(f32::NEG_INFINITY, f32::max);
        (lower as f64 + upper as f64) / 2.0
    };
    Some(Intensity {
        mean,
        median,
        sd,
        min,
        max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["background", "a", "b", "c"].iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn statistics_of_a_small_grid() {
        // 4 x 4 x 4, 2 mm voxels, origin (10, 20, 30).
        let affine = Affine::from_spacing([2.0, 2.0, 2.0], [10.0, 20.0, 30.0]);
        let mut labels = Array3::<u16>::zeros((4, 4, 4));
        let mut scan = Array3::<f32>::zeros((4, 4, 4));
        // Label 1: two inner voxels at (i, j, k) = (1, 1, 1) and (2, 1, 1).
        labels[[1, 1, 1]] = 1;
        labels[[1, 1, 2]] = 1;
        scan[[1, 1, 1]] = 10.0;
        scan[[1, 1, 2]] = 30.0;
        // Label 2: a corner voxel, on the border.
        labels[[0, 0, 0]] = 2;
        scan[[0, 0, 0]] = -5.0;
        let s = structure_statistics(&labels, &scan, &affine, &names());
        assert_eq!(s.len(), 3);
        let a = &s[0];
        assert_eq!((a.voxels, a.touches_border), (2, false));
        assert!((a.volume_ml - 2.0 * 8.0 / 1000.0).abs() < 1e-12);
        let i = a.intensity.as_ref().unwrap();
        assert_eq!((i.mean, i.median, i.sd, i.min, i.max), (20.0, 20.0, 10.0, 10.0, 30.0));
        assert_eq!(a.centroid_ras_mm, Some([13.0, 22.0, 32.0]));
        assert_eq!(a.centroid_lps_mm, Some([-13.0, -22.0, 32.0]));
        assert_eq!(a.bbox_ras_mm, Some([[11.0, 21.0, 31.0], [15.0, 23.0, 33.0]]));
        assert_eq!(a.bbox_lps_mm, Some([[-15.0, -23.0, 31.0], [-11.0, -21.0, 33.0]]));
        assert!(s[1].touches_border);
        assert_eq!(s[1].intensity.as_ref().unwrap().median, -5.0);
        // Absent label: nothing but the count.
        assert_eq!(
            (s[2].voxels, s[2].intensity.is_none(), s[2].centroid_ras_mm),
            (0, true, None)
        );
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(intensity(&mut [3.0, 1.0, 2.0]).unwrap().median, 2.0);
        assert_eq!(intensity(&mut [4.0, 1.0, 3.0, 2.0]).unwrap().median, 2.5);
        assert!(intensity(&mut []).is_none());
    }
}
