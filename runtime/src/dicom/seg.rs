//! Writing a label map as a DICOM Segmentation (PS3.3 A.51): one segment
//! per structure present, binary frames for the slices each segment
//! touches (empty frames are left out), every frame referencing the source
//! image it lies on, the segments coded in SNOMED CT (the model card's
//! terminology), the object stored with the Deflated Explicit VR Little
//! Endian transfer syntax (binary masks shrink to a few percent).

use std::path::Path;

use dicom_core::{PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{DefaultDicomObject, FileMetaTableBuilder, InMemDicomObject};
use edge_seg_models::atomic::{write_with, AtomicWriteError};
use edge_seg_models::labels::label_colour;
use edge_seg_models::terminology::Code;
use edge_seg_models::ModelCard;
use ndarray::{ArrayView3, Axis};

use super::elements::{ds, ds_multi, put, sequence, wrapped};
use super::layout::Layout;
use super::series::Series;
use super::uid::new_uid;
use crate::volume::{Problem, VolumeError};

/// What the Segmentation says about its making.
#[derive(Clone, Debug)]
pub struct SegOptions {
    /// The model's name (as `edge-seg` names it: `default`, a path).
    pub model: String,
    pub series_description: String,
    pub series_number: i64,
}

/// What was written.
#[derive(Clone, Debug, PartialEq)]
pub struct SegSummary {
    /// (segment number, label index) of each segment.
    pub segments: Vec<(u16, u16)>,
    pub frames: usize,
    pub sop_instance_uid: String,
    pub series_instance_uid: String,
}

fn code_item(code: &Code) -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    put(&mut item, tags::CODE_VALUE, VR::SH, code.value.as_str());
    put(&mut item, tags::CODING_SCHEME_DESIGNATOR, VR::SH, code.scheme.as_str());
    put(&mut item, tags::CODE_MEANING, VR::LO, code.meaning.as_str());
    item
}

/// sRGB (0–255) → DICOM's scaled CIELab (PS3.3 C.10.7.1.1: L* 0–100 and
/// a*, b* −128–127 mapped onto 0–65535), D65 white.
pub fn cielab_scaled(rgb: [u8; 3]) -> [u16; 3] {
    let lin = |c: u8| {
        let c = c as f64 / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let (r, g, b) = (lin(rgb[0]), lin(rgb[1]), lin(rgb[2]));
    let x = (0.412_456_4 * r + 0.357_576_1 * g + 0.180_437_5 * b) / 0.950_47;
    let y = 0.212_672_9 * r + 0.715_152_2 * g + 0.072_175 * b;
    let z = (0.019_333_9 * r + 0.119_192 * g + 0.950_304_1 * b) / 1.088_83;
    let f = |t: f64| {
        if t > 216.0 / 24389.0 {
            t.cbrt()
        } else {
            (24389.0 / 27.0 * t + 16.0) / 116.0
        }
    };
    let (fx, fy, fz) = (f(x), f(y), f(z));
    let l = 116.0 * fy - 16.0;
    let a = 500.0 * (fx - fy);
    let bb = 200.0 * (fy - fz);
    let scale = |v: f64, lo: f64, hi: f64| (((v - lo) / (hi - lo)).clamp(0.0, 1.0) * 65535.0).round() as u16;
    [scale(l, 0.0, 100.0), scale(a, -128.0, 127.0), scale(bb, -128.0, 127.0)]
}

/// Write `labels` (indexed `[k][j][i]` on the grid of `series` as `layout`
/// placed it) to `dest` as a Segmentation, atomically. Refused when no
/// structure is present (a Segmentation needs a segment).
pub fn write_seg(
    dest: &Path,
    series: &Series,
    layout: &Layout,
    labels: ArrayView3<u16>,
    card: &ModelCard,
    options: &SegOptions,
) -> Result<SegSummary, VolumeError> {
    let (file, summary) = build_seg(dest, series, layout, labels, card, options)?;
    write_with(dest, ".dcm", |tmp| file.write_to_file(tmp)).map_err(|e| {
        VolumeError::new(
            dest,
            Problem::Write(match e {
                AtomicWriteError::Write(e) => crate::error_text::source_text(&e),
                AtomicWriteError::Io(e) => e.to_string(),
            }),
        )
    })?;
    Ok(summary)
}

/// The Segmentation object for `labels` (see [`write_seg`]), ready to be
/// written; `dest` names it in messages.
pub fn build_seg(
    dest: &Path,
    series: &Series,
    layout: &Layout,
    labels: ArrayView3<u16>,
    card: &ModelCard,
    options: &SegOptions,
) -> Result<(DefaultDicomObject, SegSummary), VolumeError> {
    let fail = |m: String| VolumeError::new(dest, Problem::Write(m));
    let (nk, nj, ni) = labels.dim();
    if [ni, nj, nk] != layout.shape {
        return Err(fail(format!(
            "the label map is {ni}x{nj}x{nk}, the series {}x{}x{}",
            layout.shape[0], layout.shape[1], layout.shape[2]
        )));
    }
    // Slices each label touches.
    let mut present: Vec<Vec<usize>> = vec![Vec::new(); card.labels.len()];
    for (k, slab) in labels.axis_iter(Axis(0)).enumerate() {
        let mut seen = vec![false; card.labels.len()];
        for &v in slab.iter() {
            if let Some(s) = seen.get_mut(v as usize) {
                *s = true;
            }
        }
        for (l, s) in seen.iter().enumerate().skip(1) {
            if *s {
                present[l].push(k);
            }
        }
    }
    let segments: Vec<(u16, u16)> = (1..card.labels.len())
        .filter(|&l| !present[l].is_empty())
        .enumerate()
        .map(|(n, l)| (n as u16 + 1, l as u16))
        .collect();
    if segments.is_empty() {
        return Err(fail(
            "no structure was found in the scan, and a DICOM Segmentation needs at least one segment".into(),
        ));
    }
    let first = &series.frames[layout.order[0]];
    let sop_instance = new_uid(&series.uid);
    let series_uid = new_uid(&series.uid);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (date, time) = date_time(now);

    let mut obj = series.context.clone();
    put(&mut obj, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
    put(&mut obj, tags::SOP_CLASS_UID, VR::UI, uids::SEGMENTATION_STORAGE);
    put(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, sop_instance.as_str());
    put(&mut obj, tags::MODALITY, VR::CS, "SEG");
    put(&mut obj, tags::SERIES_INSTANCE_UID, VR::UI, series_uid.as_str());
    put(&mut obj, tags::SERIES_NUMBER, VR::IS, options.series_number.to_string());
    put(
        &mut obj,
        tags::SERIES_DESCRIPTION,
        VR::LO,
        options.series_description.as_str(),
    );
    put(&mut obj, tags::INSTANCE_NUMBER, VR::IS, "1");
    for (tag, vr) in [
        (tags::PATIENT_NAME, VR::PN),
        (tags::PATIENT_ID, VR::LO),
        (tags::PATIENT_BIRTH_DATE, VR::DA),
        (tags::PATIENT_SEX, VR::CS),
        (tags::STUDY_DATE, VR::DA),
        (tags::STUDY_TIME, VR::TM),
        (tags::REFERRING_PHYSICIAN_NAME, VR::PN),
        (tags::STUDY_ID, VR::SH),
        (tags::ACCESSION_NUMBER, VR::SH),
        (tags::POSITION_REFERENCE_INDICATOR, VR::LO),
    ] {
        // Type 2 attributes: present, empty when the source lacks them.
        if obj.get(tag).is_none() {
            put(&mut obj, tag, vr, "");
        }
    }
    if obj.get(tags::STUDY_INSTANCE_UID).is_none() {
        return Err(series.error("the series has no StudyInstanceUID to reference"));
    }
    if obj.get(tags::FRAME_OF_REFERENCE_UID).is_none() {
        return Err(series.error("the series has no FrameOfReferenceUID to share"));
    }
    put(&mut obj, tags::CONTENT_DATE, VR::DA, date.as_str());
    put(&mut obj, tags::CONTENT_TIME, VR::TM, time.as_str());
    put(&mut obj, tags::SERIES_DATE, VR::DA, date.as_str());
    put(&mut obj, tags::SERIES_TIME, VR::TM, time.as_str());
    put(&mut obj, tags::MANUFACTURER, VR::LO, "edge-seg");
    put(&mut obj, tags::MANUFACTURER_MODEL_NAME, VR::LO, "edge-seg");
    put(&mut obj, tags::DEVICE_SERIAL_NUMBER, VR::LO, "0");
    put(&mut obj, tags::SOFTWARE_VERSIONS, VR::LO, env!("CARGO_PKG_VERSION"));
    put(&mut obj, tags::IMAGE_TYPE, VR::CS, "DERIVED\\PRIMARY");
    put(&mut obj, tags::CONTENT_LABEL, VR::CS, "EDGESEG");
    put(
        &mut obj,
        tags::CONTENT_DESCRIPTION,
        VR::LO,
        format!("{} by edge-seg", card.task).as_str(),
    );
    put(&mut obj, tags::CONTENT_CREATOR_NAME, VR::PN, "edge-seg");
    put(&mut obj, tags::SEGMENTATION_TYPE, VR::CS, "BINARY");
    put(&mut obj, tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1u16));
    put(&mut obj, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
    put(&mut obj, tags::ROWS, VR::US, PrimitiveValue::from(nj as u16));
    put(&mut obj, tags::COLUMNS, VR::US, PrimitiveValue::from(ni as u16));
    put(&mut obj, tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(1u16));
    put(&mut obj, tags::BITS_STORED, VR::US, PrimitiveValue::from(1u16));
    put(&mut obj, tags::HIGH_BIT, VR::US, PrimitiveValue::from(0u16));
    put(&mut obj, tags::PIXEL_REPRESENTATION, VR::US, PrimitiveValue::from(0u16));
    put(&mut obj, tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00");

    // Segments.
    let segment_items: Vec<InMemDicomObject> = segments
        .iter()
        .map(|&(number, label)| {
            let code = card.structure_code(label as usize);
            let mut item = InMemDicomObject::new_empty();
            put(&mut item, tags::SEGMENT_NUMBER, VR::US, PrimitiveValue::from(number));
            put(
                &mut item,
                tags::SEGMENT_LABEL,
                VR::LO,
                card.labels[label as usize].as_str(),
            );
            put(&mut item, tags::SEGMENT_ALGORITHM_TYPE, VR::CS, "AUTOMATIC");
            put(
                &mut item,
                tags::SEGMENT_ALGORITHM_NAME,
                VR::LO,
                format!("edge-seg {}", options.model).as_str(),
            );
            item.put(sequence(
                tags::SEGMENTED_PROPERTY_CATEGORY_CODE_SEQUENCE,
                vec![code_item(&code.category)],
            ));
            let mut kind = code_item(&code.kind);
            if let Some(m) = &code.modifier {
                kind.put(sequence(
                    tags::SEGMENTED_PROPERTY_TYPE_MODIFIER_CODE_SEQUENCE,
                    vec![code_item(m)],
                ));
            }
            item.put(sequence(tags::SEGMENTED_PROPERTY_TYPE_CODE_SEQUENCE, vec![kind]));
            let lab = cielab_scaled(label_colour(&card.labels[label as usize]));
            put(
                &mut item,
                tags::RECOMMENDED_DISPLAY_CIE_LAB_VALUE,
                VR::US,
                PrimitiveValue::U16(lab.to_vec().into()),
            );
            item
        })
        .collect();
    obj.put(sequence(tags::SEGMENT_SEQUENCE, segment_items));

    // Dimensions: segment, then position.
    let organisation = new_uid(&series.uid);
    let mut org = InMemDicomObject::new_empty();
    put(
        &mut org,
        tags::DIMENSION_ORGANIZATION_UID,
        VR::UI,
        organisation.as_str(),
    );
    obj.put(sequence(tags::DIMENSION_ORGANIZATION_SEQUENCE, vec![org]));
    put(&mut obj, tags::DIMENSION_ORGANIZATION_TYPE, VR::CS, "3D");
    let dimension = |pointer: Tag, group: Tag, label: &str| {
        let mut d = InMemDicomObject::new_empty();
        put(&mut d, tags::DIMENSION_ORGANIZATION_UID, VR::UI, organisation.as_str());
        put(
            &mut d,
            tags::DIMENSION_INDEX_POINTER,
            VR::AT,
            PrimitiveValue::Tags(vec![pointer].into()),
        );
        put(
            &mut d,
            tags::FUNCTIONAL_GROUP_POINTER,
            VR::AT,
            PrimitiveValue::Tags(vec![group].into()),
        );
        put(&mut d, tags::DIMENSION_DESCRIPTION_LABEL, VR::LO, label);
        d
    };
    obj.put(sequence(
        tags::DIMENSION_INDEX_SEQUENCE,
        vec![
            dimension(
                tags::REFERENCED_SEGMENT_NUMBER,
                tags::SEGMENT_IDENTIFICATION_SEQUENCE,
                "ReferencedSegmentNumber",
            ),
            dimension(
                tags::IMAGE_POSITION_PATIENT,
                tags::PLANE_POSITION_SEQUENCE,
                "ImagePositionPatient",
            ),
        ],
    ));

    // Geometry shared by every frame.
    let spacing = first.pixel_spacing.expect("a laid-out series has pixel spacing");
    let slice_spacing = {
        let a = layout.affine.rows();
        (a[0][2] * a[0][2] + a[1][2] * a[1][2] + a[2][2] * a[2][2]).sqrt()
    };
    let mut shared = InMemDicomObject::new_empty();
    let mut measures = InMemDicomObject::new_empty();
    put(
        &mut measures,
        tags::PIXEL_SPACING,
        VR::DS,
        format!("{}\\{}", ds(spacing[0]), ds(spacing[1])),
    );
    put(
        &mut measures,
        tags::SLICE_THICKNESS,
        VR::DS,
        ds(first.slice_thickness.unwrap_or(slice_spacing)),
    );
    put(&mut measures, tags::SPACING_BETWEEN_SLICES, VR::DS, ds(slice_spacing));
    shared.put(sequence(tags::PIXEL_MEASURES_SEQUENCE, vec![measures]));
    let o = first.orientation.expect("a laid-out series has an orientation");
    shared.put(wrapped(
        tags::PLANE_ORIENTATION_SEQUENCE,
        tags::IMAGE_ORIENTATION_PATIENT,
        VR::DS,
        ds_multi(&o),
    ));
    obj.put(sequence(tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE, vec![shared]));

    // Frames, segment by segment; their pixels packed one bit per pixel,
    // continuously across frame boundaries.
    let frame_pixels = ni * nj;
    let n_frames: usize = segments.iter().map(|&(_, l)| present[l as usize].len()).sum();
    let mut bits = vec![0u8; (n_frames * frame_pixels).div_ceil(8)];
    let mut per_frame = Vec::with_capacity(n_frames);
    let mut bit = 0usize;
    for &(number, label) in &segments {
        for &k in &present[label as usize] {
            let source = &series.frames[layout.order[k]];
            for &v in labels.index_axis(Axis(0), k).iter() {
                if v == label {
                    bits[bit / 8] |= 1 << (bit % 8);
                }
                bit += 1;
            }
            let mut item = InMemDicomObject::new_empty();
            let mut src = InMemDicomObject::new_empty();
            put(
                &mut src,
                tags::REFERENCED_SOP_CLASS_UID,
                VR::UI,
                source.sop_class_uid.as_str(),
            );
            put(
                &mut src,
                tags::REFERENCED_SOP_INSTANCE_UID,
                VR::UI,
                source.sop_instance_uid.as_str(),
            );
            if source.multi_frame {
                put(
                    &mut src,
                    tags::REFERENCED_FRAME_NUMBER,
                    VR::IS,
                    (source.frame + 1).to_string(),
                );
            }
            // The frame lies on its source image's pixel grid.
            put(&mut src, tags::SPATIAL_LOCATIONS_PRESERVED, VR::CS, "YES");
            src.put(sequence(
                tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE,
                vec![code_item(&Code::new(
                    "121322",
                    "DCM",
                    "Source image for image processing operation",
                ))],
            ));
            let mut derivation = InMemDicomObject::new_empty();
            derivation.put(sequence(
                tags::DERIVATION_CODE_SEQUENCE,
                vec![code_item(&Code::new("113076", "DCM", "Segmentation"))],
            ));
            derivation.put(sequence(tags::SOURCE_IMAGE_SEQUENCE, vec![src]));
            item.put(sequence(tags::DERIVATION_IMAGE_SEQUENCE, vec![derivation]));
            item.put(wrapped(
                tags::FRAME_CONTENT_SEQUENCE,
                tags::DIMENSION_INDEX_VALUES,
                VR::UL,
                PrimitiveValue::U32(vec![number as u32, k as u32 + 1].into()),
            ));
            let p = source.position.expect("a laid-out series has positions");
            item.put(wrapped(
                tags::PLANE_POSITION_SEQUENCE,
                tags::IMAGE_POSITION_PATIENT,
                VR::DS,
                ds_multi(&p),
            ));
            item.put(wrapped(
                tags::SEGMENT_IDENTIFICATION_SEQUENCE,
                tags::REFERENCED_SEGMENT_NUMBER,
                VR::US,
                PrimitiveValue::from(number),
            ));
            per_frame.push(item);
        }
    }
    put(&mut obj, tags::NUMBER_OF_FRAMES, VR::IS, n_frames.to_string());
    obj.put(sequence(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, per_frame));

    // The source series and its instances.
    let mut instances: Vec<(String, String)> = series
        .frames
        .iter()
        .map(|f| (f.sop_class_uid.clone(), f.sop_instance_uid.clone()))
        .collect();
    instances.sort();
    instances.dedup();
    let referenced: Vec<InMemDicomObject> = instances
        .iter()
        .map(|(class, instance)| {
            let mut i = InMemDicomObject::new_empty();
            put(&mut i, tags::REFERENCED_SOP_CLASS_UID, VR::UI, class.as_str());
            put(&mut i, tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, instance.as_str());
            i
        })
        .collect();
    let mut ref_series = InMemDicomObject::new_empty();
    put(&mut ref_series, tags::SERIES_INSTANCE_UID, VR::UI, series.uid.as_str());
    ref_series.put(sequence(tags::REFERENCED_INSTANCE_SEQUENCE, referenced));
    obj.put(sequence(tags::REFERENCED_SERIES_SEQUENCE, vec![ref_series]));

    put(&mut obj, tags::PIXEL_DATA, VR::OB, PrimitiveValue::U8(bits.into()));

    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN)
                .implementation_version_name(
                    format!("EDGESEG_{}", env!("CARGO_PKG_VERSION"))
                        .chars()
                        .take(16)
                        .collect::<String>(),
                ),
        )
        .map_err(|e| fail(e.to_string()))?;
    Ok((
        file,
        SegSummary {
            segments,
            frames: n_frames,
            sop_instance_uid: sop_instance,
            series_instance_uid: series_uid,
        },
    ))
}

/// `YYYYMMDD` and `HHMMSS` (UTC) of a Unix time.
fn date_time(secs: u64) -> (String, String) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (
        format!("{y:04}{m:02}{d:02}"),
        format!("{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_colours() {
        assert_eq!(date_time(0), ("19700101".into(), "000000".into()));
        assert_eq!(date_time(1_796_300_000), ("20261203".into(), "121320".into()));
        let white = cielab_scaled([255, 255, 255]);
        assert_eq!(white[0], 65535);
        assert!(
            white[1].abs_diff(32896) <= 2 && white[2].abs_diff(32896) <= 2,
            "{white:?}"
        );
        assert_eq!(cielab_scaled([0, 0, 0])[0], 0);
    }
}
