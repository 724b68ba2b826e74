//! The preprocessing shared by inference and training, and its exact
//! inverse for label maps:
//!
//! scan `[k][j][i]` → reorient to RAS+ `[z][y][x]` → (optional) crop to the
//! body → resample to the model spacing → intensity transform.
//!
//! Results come back through the same steps in reverse: to the cropped
//! canonical grid (class scores interpolated trilinearly and decoded there,
//! or labels resampled nearest) → pad back to the full canonical grid →
//! undo the reorientation, giving labels on the scan's own grid.

use std::path::Path;

use edge_seg_models::card::{Decode, Intensity, Modality};
use ndarray::{Array3, ArrayView4};

use crate::geometry::{
    largest_component_box, resample_decode, resample_linear, resample_nearest, Affine, BoundingBox, Reorientation,
    ResampleGrid,
};
use crate::intensity;
use crate::scores::decode_voxel;
use crate::volume::{Problem, Volume, VolumeError};

/// How to bring a scan onto a model's grid.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PreprocessSpec {
    /// Target spacing `[z, y, x]`, mm.
    pub spacing_zyx: [f64; 3],
    pub intensity: Intensity,
    /// Crop to the body (largest component above the body threshold).
    pub crop_to_body: bool,
    pub modality: Modality,
}

/// A scan on the model's grid, and what is needed to map results back.
#[derive(Clone, Debug)]
pub struct Preprocessed {
    /// Intensity-transformed voxels on the model grid, `[z][y][x]` RAS+.
    pub data: Array3<f32>,
    pub reorientation: Reorientation,
    /// Canonical (reoriented) shape before cropping.
    pub canonical_shape: [usize; 3],
    /// Crop of the canonical grid (the full grid when not cropping).
    pub crop: BoundingBox,
    /// Cropped canonical grid → model grid.
    pub grid: ResampleGrid,
    /// Voxel → world affine of `data`.
    pub affine: Affine,
    /// The spacing `data` really has, `[z, y, x]`.
    pub spacing_zyx: [f64; 3],
    /// NaN or infinite input voxels (replaced by the background value).
    pub non_finite: u64,
}

/// Body threshold: HU for CT; for MR a tenth of the 99th percentile.
fn body_threshold(data: &Array3<f32>, modality: Modality) -> f32 {
    match modality {
        Modality::CT => -500.0,
        Modality::MR => {
            let mut v: Vec<f32> = data.iter().copied().filter(|x| x.is_finite()).step_by(7).collect();
            if v.is_empty() {
                return 0.0;
            }
            let k = ((v.len() - 1) as f64 * 0.99) as usize;
            let (_, p99, _) = v.select_nth_unstable_by(k, |a, b| a.total_cmp(b));
            *p99 * 0.1
        }
    }
}

/// Margin kept around the body box, mm.
const BODY_MARGIN_MM: f64 = 10.0;

/// The voxel spacing of a canonical grid's affine, in array order `[z, y, x]`.
fn spacing_zyx(canonical_affine: &Affine) -> [f64; 3] {
    crate::geometry::reversed(canonical_affine.spacing())
}

/// Whether [`preprocess`] resamples a scan of array shape `[k, j, i]` on
/// `affine` to reach `spacing_zyx_mm` (judged on the uncropped canonical
/// grid).
pub fn is_resampled(affine: &Affine, shape_kji: [usize; 3], spacing_zyx_mm: [f64; 3]) -> bool {
    let reorientation = Reorientation::new(affine, shape_kji);
    let spacing = spacing_zyx(&reorientation.canonical_affine(affine));
    !ResampleGrid::to_spacing(reorientation.canonical_shape(), spacing, spacing_zyx_mm).is_identity()
}

/// Preprocess a scan read from `path`.
pub fn preprocess(vol: &Volume, path: &Path, spec: &PreprocessSpec) -> Result<Preprocessed, VolumeError> {
    vol.check_geometry(path)?;
    if !spec.spacing_zyx.iter().all(|s| s.is_finite() && *s > 0.0) {
        return Err(VolumeError::new(
            path,
            Problem::Other(format!("invalid model spacing {:?}", spec.spacing_zyx)),
        ));
    }
    let (k, j, i) = vol.data.dim();
    let reorientation = Reorientation::new(&vol.affine, [k, j, i]);
    let canonical = reorientation.apply(vol.data.view());
    let canonical_affine = reorientation.canonical_affine(&vol.affine);
    let canonical_spacing = spacing_zyx(&canonical_affine);
    let canonical_shape = reorientation.canonical_shape();
    let crop = if spec.crop_to_body {
        let threshold = body_threshold(&canonical, spec.modality);
        match largest_component_box(canonical.view(), threshold) {
            Some(b) => {
                let margin = [0, 1, 2].map(|d| (BODY_MARGIN_MM / canonical_spacing[d]).ceil() as usize);
                b.grown(margin, canonical_shape)
            }
            None => BoundingBox::full(canonical_shape),
        }
    } else {
        BoundingBox::full(canonical_shape)
    };
    let cropped = if crop == BoundingBox::full(canonical_shape) {
        canonical
    } else {
        crop.crop(canonical.view())
    };
    // Affine of the cropped grid: shift the origin to the crop start.
    let mut cropped_affine = canonical_affine;
    let start_world = canonical_affine.apply([crop.start[2] as f64, crop.start[1] as f64, crop.start[0] as f64]);
    for (r, w) in start_world.iter().enumerate() {
        cropped_affine.0[r][3] = *w;
    }
    let grid = ResampleGrid::to_spacing(crop.shape(), canonical_spacing, spec.spacing_zyx);
    let mut data = resample_linear(cropped.view(), &grid);
    let report = intensity::apply(&spec.intensity, &mut data);
    Ok(Preprocessed {
        data,
        reorientation,
        canonical_shape,
        crop,
        affine: grid.target_affine(&cropped_affine),
        spacing_zyx: grid.target_spacing(canonical_spacing),
        grid,
        non_finite: report.non_finite,
    })
}

impl Preprocessed {
    /// Bring a label volume on the scan's grid onto the model grid (nearest).
    pub fn labels_to_model(&self, labels: &Array3<u16>) -> Array3<u16> {
        let canonical = self.reorientation.apply(labels.view());
        let cropped = if self.crop == BoundingBox::full(self.canonical_shape) {
            canonical
        } else {
            self.crop.crop(canonical.view())
        };
        resample_nearest(cropped.view(), &self.grid)
    }

    /// Map a label map on the model grid back onto the scan's grid,
    /// `[k][j][i]`: the exact inverse of the preprocessing geometry.
    pub fn labels_to_scan(&self, labels: &Array3<u16>) -> Array3<u16> {
        self.crop_to_scan(self.labels_to_crop(labels))
    }

    /// Class scores `[C, z, y, x]` on the model grid → labels on the scan's
    /// grid, `[k][j][i]`, by [`Preprocessed::scores_to_crop`].
    pub fn scores_to_scan(&self, scores: ArrayView4<f32>, rule: Decode) -> Array3<u16> {
        self.crop_to_scan(self.scores_to_crop(scores, rule))
    }

    /// Labels on the model grid → the cropped canonical grid (nearest).
    pub fn labels_to_crop(&self, labels: &Array3<u16>) -> Array3<u16> {
        resample_nearest(labels.view(), &self.grid.inverse())
    }

    /// Class scores `[C, z, y, x]` on the model grid → labels on the
    /// cropped canonical grid: the scores are interpolated (trilinear) to
    /// each voxel's centre and decoded there, so boundaries fall between
    /// model voxels instead of along their faces.
    pub fn scores_to_crop(&self, scores: ArrayView4<f32>, rule: Decode) -> Array3<u16> {
        resample_decode(scores, &self.grid.inverse(), |v| decode_voxel(v.iter().copied(), rule))
    }

    /// Labels on the cropped canonical grid → the scan's grid, `[k][j][i]`
    /// (un-crop with background, undo the reorientation).
    pub fn crop_to_scan(&self, cropped: Array3<u16>) -> Array3<u16> {
        let canonical = if self.crop == BoundingBox::full(self.canonical_shape) {
            cropped
        } else {
            self.crop.uncrop(cropped.view(), self.canonical_shape, 0)
        };
        self.reorientation.invert(canonical.view())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::s;

    fn lps_volume() -> Volume {
        // A 40 x 30 x 12 LPS scan, 0.8 x 0.8 x 3 mm, with a bright block.
        let mut data = Array3::<f32>::from_elem((12, 30, 40), -1000.0);
        data.slice_mut(s![2..10, 5..25, 6..34]).fill(40.0);
        data.slice_mut(s![4..8, 10..20, 10..20]).fill(300.0);
        let affine = Affine([
            [-0.8, 0.0, 0.0, 50.0],
            [0.0, -0.8, 0.0, 40.0],
            [0.0, 0.0, 3.0, -20.0],
            [0.0, 0.0, 0.0, 1.0],
        ]);
        Volume::from_array(data, affine)
    }

    fn spec(crop: bool) -> PreprocessSpec {
        PreprocessSpec {
            spacing_zyx: [2.0, 2.0, 2.0],
            intensity: Intensity::ct_default(),
            crop_to_body: crop,
            modality: Modality::CT,
        }
    }

    #[test]
    fn model_grid_is_canonical_at_the_model_spacing() {
        let vol = lps_volume();
        let p = preprocess(&vol, Path::new("x.nii"), &spec(false)).unwrap();
        assert_eq!(p.data.dim(), (18, 12, 16));
        assert_eq!(crate::geometry::orientation_code(&p.affine), "RAS");
        for (d, s) in p.spacing_zyx.iter().enumerate() {
            assert!((s - 2.0).abs() < 0.1, "axis {d}: {s}");
        }
        assert!(p.data.iter().all(|v| (-1.0..=1.0).contains(v)));
    }

    #[test]
    fn labels_map_back_onto_the_scan_grid() {
        let vol = lps_volume();
        let labels = vol.data.mapv(|v| {
            if v > 200.0 {
                2u16
            } else if v > 0.0 {
                1
            } else {
                0
            }
        });
        for crop in [false, true] {
            let p = preprocess(&vol, Path::new("x.nii"), &spec(crop)).unwrap();
            let model = p.labels_to_model(&labels);
            assert_eq!(model.dim(), p.data.dim());
            let back = p.labels_to_scan(&model);
            assert_eq!(back.dim(), labels.dim());
            let agree = back.iter().zip(labels.iter()).filter(|(a, b)| a == b).count();
            assert!(
                agree as f64 / labels.len() as f64 > 0.9,
                "crop {crop}: {agree}/{}",
                labels.len()
            );
        }
        // A scan with much air around the body is cropped (10 mm margin).
        let mut wide = Array3::<f32>::from_elem((12, 30, 90), -1000.0);
        wide.slice_mut(s![2..10, 5..25, 40..60]).fill(40.0);
        let wide = Volume::from_array(wide, vol.affine);
        let cropped = preprocess(&wide, Path::new("x.nii"), &spec(true)).unwrap();
        assert_eq!(cropped.crop.start[2], 90 - 60 - 13);
        assert_eq!(cropped.crop.end[2], 90 - 40 + 13);
    }

    #[test]
    fn bad_geometry_is_refused() {
        let mut vol = lps_volume();
        vol.affine.0[2][2] = 0.0;
        let err = preprocess(&vol, Path::new("flat.nii"), &spec(false))
            .unwrap_err()
            .to_string();
        assert!(err.contains("flat.nii") && err.contains("spacing"), "{err}");
    }
}
