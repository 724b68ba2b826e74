//! Writing a volume as a DICOM image series: one CT or MR Image object per
//! slice, or one Enhanced CT / MR object holding every frame. The test
//! suite and the benchmarks make their series with it (from phantoms, in
//! any orientation); it is the inverse of [`super::read_series`].

use std::path::{Path, PathBuf};

use dicom_core::{PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

use super::elements::{ds, ds_multi, put, sequence, wrapped};
use super::uid::new_uid;
use crate::volume::{Problem, Volume, VolumeError};

/// How to write the series.
#[derive(Clone, Debug)]
pub struct SeriesOptions {
    /// `CT` or `MR`.
    pub modality: String,
    pub description: String,
    pub series_number: i64,
    /// Stored value = (value − intercept) / slope, rounded to i16.
    pub rescale_slope: f64,
    pub rescale_intercept: f64,
    /// One Enhanced object with per-frame functional groups instead of one file per slice.
    pub multi_frame: bool,
    /// ImagePositionPatient of each slice (LPS), replacing the volume's
    /// evenly spaced positions (to write uneven or tilted series).
    pub positions: Option<Vec<[f64; 3]>>,
    /// The study the series belongs to (a new one when `None`).
    pub study_uid: Option<String>,
}

impl Default for SeriesOptions {
    fn default() -> Self {
        SeriesOptions {
            modality: "CT".into(),
            description: "edge-seg synthetic series".into(),
            series_number: 1,
            rescale_slope: 1.0,
            rescale_intercept: -1024.0,
            multi_frame: false,
            positions: None,
            study_uid: None,
        }
    }
}

/// Write `volume` into `dir` (created if needed) as one series; returns the
/// files written (`slice_0001.dcm`... or `enhanced.dcm`).
pub fn write_series(volume: &Volume, dir: &Path, options: &SeriesOptions) -> Result<Vec<PathBuf>, VolumeError> {
    let fail = |m: String| VolumeError::new(dir, Problem::Write(m));
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    let (nk, nj, ni) = volume.data.dim();
    let a = volume.affine.rows();
    // RAS → LPS: negate x and y.
    let lps = |r: usize, c: usize| if r < 2 { -a[r][c] } else { a[r][c] };
    let column = |c: usize| [lps(0, c), lps(1, c), lps(2, c)];
    let length = |v: [f64; 3]| (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    let (ci, cj, ck) = (column(0), column(1), column(2));
    let (si, sj) = (length(ci), length(cj));
    let orientation = [ci[0] / si, ci[1] / si, ci[2] / si, cj[0] / sj, cj[1] / sj, cj[2] / sj];
    let origin = [lps(0, 3), lps(1, 3), lps(2, 3)];
    let positions: Vec<[f64; 3]> = match &options.positions {
        Some(p) if p.len() == nk => p.clone(),
        Some(p) => return Err(fail(format!("{} positions given for {nk} slices", p.len()))),
        None => (0..nk)
            .map(|k| std::array::from_fn(|r| origin[r] + k as f64 * ck[r]))
            .collect(),
    };
    let study_uid = options.study_uid.clone().unwrap_or_else(|| new_uid("study"));
    let series_uid = new_uid("series");
    let frame_of_reference = new_uid("frame of reference");
    let ct = options.modality == "CT";
    let stored = |v: f32| -> i16 {
        let s = ((v as f64 - options.rescale_intercept) / options.rescale_slope).round();
        s.clamp(i16::MIN as f64, i16::MAX as f64) as i16
    };
    let slice_bytes = |k: usize| -> Vec<u8> {
        let slab = volume.data.index_axis(ndarray::Axis(0), k);
        slab.iter().flat_map(|&v| stored(v).to_le_bytes()).collect()
    };
    let common = |obj: &mut InMemDicomObject, sop_class: &str, sop_instance: &str, number: i64| {
        put(obj, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
        put(obj, tags::SOP_CLASS_UID, VR::UI, sop_class);
        put(obj, tags::SOP_INSTANCE_UID, VR::UI, sop_instance);
        put(obj, tags::STUDY_DATE, VR::DA, "20260101");
        put(obj, tags::STUDY_TIME, VR::TM, "120000");
        put(obj, tags::ACCESSION_NUMBER, VR::SH, "");
        put(obj, tags::MODALITY, VR::CS, options.modality.as_str());
        put(obj, tags::MANUFACTURER, VR::LO, "edge-seg");
        put(obj, tags::REFERRING_PHYSICIAN_NAME, VR::PN, "");
        put(obj, tags::SERIES_DESCRIPTION, VR::LO, options.description.as_str());
        put(obj, tags::PATIENT_NAME, VR::PN, "Phantom^Synthetic");
        put(obj, tags::PATIENT_ID, VR::LO, "PHANTOM");
        put(obj, tags::PATIENT_BIRTH_DATE, VR::DA, "");
        put(obj, tags::PATIENT_SEX, VR::CS, "O");
        put(obj, tags::STUDY_INSTANCE_UID, VR::UI, study_uid.as_str());
        put(obj, tags::SERIES_INSTANCE_UID, VR::UI, series_uid.as_str());
        put(obj, tags::STUDY_ID, VR::SH, "1");
        put(obj, tags::SERIES_NUMBER, VR::IS, options.series_number.to_string());
        put(obj, tags::INSTANCE_NUMBER, VR::IS, number.to_string());
        put(obj, tags::FRAME_OF_REFERENCE_UID, VR::UI, frame_of_reference.as_str());
        put(obj, tags::POSITION_REFERENCE_INDICATOR, VR::LO, "");
        put(obj, tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1u16));
        put(obj, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
        put(obj, tags::ROWS, VR::US, PrimitiveValue::from(nj as u16));
        put(obj, tags::COLUMNS, VR::US, PrimitiveValue::from(ni as u16));
        put(obj, tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(16u16));
        put(obj, tags::BITS_STORED, VR::US, PrimitiveValue::from(16u16));
        put(obj, tags::HIGH_BIT, VR::US, PrimitiveValue::from(15u16));
        put(obj, tags::PIXEL_REPRESENTATION, VR::US, PrimitiveValue::from(1u16));
    };
    let spacing = [ds(sj), ds(si)].join("\\");
    let thickness = ds(length(ck));
    let write = |obj: InMemDicomObject, path: &Path| -> Result<(), VolumeError> {
        let file = obj
            .with_meta(FileMetaTableBuilder::new().transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN))
            .map_err(|e| fail(e.to_string()))?;
        file.write_to_file(path)
            .map_err(|e| fail(format!("{}: {e}", path.display())))
    };
    let mut written = Vec::new();
    if !options.multi_frame {
        let sop_class = if ct {
            uids::CT_IMAGE_STORAGE
        } else {
            uids::MR_IMAGE_STORAGE
        };
        for (k, position) in positions.iter().enumerate() {
            let mut obj = InMemDicomObject::new_empty();
            common(&mut obj, sop_class, &new_uid(&series_uid), k as i64 + 1);
            put(&mut obj, tags::IMAGE_TYPE, VR::CS, "ORIGINAL\\PRIMARY\\AXIAL");
            put(&mut obj, tags::IMAGE_POSITION_PATIENT, VR::DS, ds_multi(position));
            put(
                &mut obj,
                tags::IMAGE_ORIENTATION_PATIENT,
                VR::DS,
                ds_multi(&orientation),
            );
            put(&mut obj, tags::PIXEL_SPACING, VR::DS, spacing.as_str());
            put(&mut obj, tags::SLICE_THICKNESS, VR::DS, thickness.as_str());
            put(&mut obj, tags::RESCALE_INTERCEPT, VR::DS, ds(options.rescale_intercept));
            put(&mut obj, tags::RESCALE_SLOPE, VR::DS, ds(options.rescale_slope));
            if ct {
                put(&mut obj, tags::RESCALE_TYPE, VR::LO, "HU");
            }
            put(
                &mut obj,
                tags::PIXEL_DATA,
                VR::OW,
                PrimitiveValue::U8(slice_bytes(k).into()),
            );
            let path = dir.join(format!("slice_{:04}.dcm", k + 1));
            write(obj, &path)?;
            written.push(path);
        }
        return Ok(written);
    }
    let sop_class = if ct {
        uids::ENHANCED_CT_IMAGE_STORAGE
    } else {
        uids::ENHANCED_MR_IMAGE_STORAGE
    };
    let mut obj = InMemDicomObject::new_empty();
    common(&mut obj, sop_class, &new_uid(&series_uid), 1);
    put(&mut obj, tags::IMAGE_TYPE, VR::CS, "ORIGINAL\\PRIMARY\\VOLUME\\NONE");
    put(&mut obj, tags::NUMBER_OF_FRAMES, VR::IS, nk.to_string());
    put(&mut obj, tags::CONTENT_DATE, VR::DA, "20260101");
    put(&mut obj, tags::CONTENT_TIME, VR::TM, "120000");
    let mut shared = InMemDicomObject::new_empty();
    let mut measures = InMemDicomObject::new_empty();
    put(&mut measures, tags::PIXEL_SPACING, VR::DS, spacing.as_str());
    put(&mut measures, tags::SLICE_THICKNESS, VR::DS, thickness.as_str());
    shared.put(sequence(tags::PIXEL_MEASURES_SEQUENCE, vec![measures]));
    shared.put(wrapped(
        tags::PLANE_ORIENTATION_SEQUENCE,
        tags::IMAGE_ORIENTATION_PATIENT,
        VR::DS,
        ds_multi(&orientation),
    ));
    let mut transform = InMemDicomObject::new_empty();
    put(
        &mut transform,
        tags::RESCALE_INTERCEPT,
        VR::DS,
        ds(options.rescale_intercept),
    );
    put(&mut transform, tags::RESCALE_SLOPE, VR::DS, ds(options.rescale_slope));
    put(&mut transform, tags::RESCALE_TYPE, VR::LO, if ct { "HU" } else { "US" });
    shared.put(sequence(tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE, vec![transform]));
    obj.put(sequence(tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE, vec![shared]));
    let per_frame: Vec<InMemDicomObject> = positions
        .iter()
        .map(|p| {
            let mut item = InMemDicomObject::new_empty();
            item.put(wrapped(
                tags::PLANE_POSITION_SEQUENCE,
                tags::IMAGE_POSITION_PATIENT,
                VR::DS,
                ds_multi(p),
            ));
            item
        })
        .collect();
    obj.put(sequence(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, per_frame));
    let pixels: Vec<u8> = (0..nk).flat_map(slice_bytes).collect();
    put(&mut obj, tags::PIXEL_DATA, VR::OW, PrimitiveValue::U8(pixels.into()));
    let path = dir.join("enhanced.dcm");
    write(obj, &path)?;
    written.push(path);
    Ok(written)
}
