//! Decoding a series' frames into one float volume, each frame with its own
//! RescaleSlope and RescaleIntercept (Hounsfield units for CT). Frames are
//! decoded in parallel straight into their slice of the volume. Compressed
//! transfer syntaxes go through dicom-pixeldata's pure-Rust codecs: JPEG
//! baseline, extended and lossless, RLE lossless, deflate, JPEG 2000
//! (openjp2); JPEG-LS and JPEG XL are not built and are refused by name.

use std::collections::HashMap;
use std::path::Path;

use dicom_object::DefaultDicomObject;
use dicom_pixeldata::{ConvertOptions, ModalityLutOption, PixelDecoder};
use ndarray::{Array3, Axis};
use rayon::prelude::*;

use super::layout::Layout;
use super::series::Series;
use crate::error_text::source_text;
use crate::volume::{Problem, ReadOptions, Volume, VolumeError};

const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";

/// Names of compressed transfer syntaxes, for messages about them.
pub fn transfer_syntax_name(uid: &str) -> Option<&'static str> {
    Some(match uid {
        RLE_LOSSLESS => "RLE Lossless",
        "1.2.840.10008.1.2.4.50" => "JPEG Baseline",
        "1.2.840.10008.1.2.4.51" => "JPEG Extended",
        "1.2.840.10008.1.2.4.57" | "1.2.840.10008.1.2.4.70" => "JPEG Lossless",
        "1.2.840.10008.1.2.4.80" => "JPEG-LS Lossless (not supported: this build has no JPEG-LS codec)",
        "1.2.840.10008.1.2.4.81" => "JPEG-LS Near-Lossless (not supported: this build has no JPEG-LS codec)",
        "1.2.840.10008.1.2.4.90" => "JPEG 2000 Lossless",
        "1.2.840.10008.1.2.4.91" => "JPEG 2000",
        "1.2.840.10008.1.2.4.201" | "1.2.840.10008.1.2.4.202" | "1.2.840.10008.1.2.4.203" => {
            "High-Throughput JPEG 2000 (not supported)"
        }
        "1.2.840.10008.1.2.4.110" | "1.2.840.10008.1.2.4.111" | "1.2.840.10008.1.2.4.112" => {
            "JPEG XL (not supported: this build has no JPEG XL codec)"
        }
        u if u.starts_with("1.2.840.10008.1.2.4.10") => "MPEG video (not supported)",
        _ => return None,
    })
}

/// The series as a volume, its frames where `layout` (from
/// [`super::layout::layout`]) placed them; the layout's notes become the
/// volume's warnings.
pub fn read_series(series: &Series, layout: &Layout, options: ReadOptions) -> Result<Volume, VolumeError> {
    let [ni, nj, nk] = layout.shape;
    let need = (ni * nj * nk) as u64 * 4;
    if need > options.max_bytes {
        return Err(VolumeError::new(
            &series.source,
            Problem::TooLarge {
                shape: vec![ni as u64, nj as u64, nk as u64],
                need_bytes: need,
                limit_bytes: options.max_bytes,
            },
        ));
    }
    let open = |path: &Path| super::open_checked(path, None);
    // Multi-frame objects are opened once and shared by their frames.
    let mut multi: HashMap<&Path, DefaultDicomObject> = HashMap::new();
    for f in series.frames.iter().filter(|f| f.multi_frame) {
        if !multi.contains_key(f.file.as_path()) {
            multi.insert(f.file.as_path(), open(&f.file)?);
        }
    }
    let mut data = Array3::<f32>::zeros((nk, nj, ni));
    let raw = ConvertOptions::new().with_modality_lut(ModalityLutOption::None);
    data.axis_iter_mut(Axis(0)).into_par_iter().enumerate().try_for_each(
        |(k, mut slab)| -> Result<(), VolumeError> {
            let frame = &series.frames[layout.order[k]];
            let fail = |m: String| {
                VolumeError::new(
                    &frame.file,
                    Problem::Dicom(if frame.multi_frame {
                        format!("frame {}: {m}", frame.frame + 1)
                    } else {
                        m
                    }),
                )
            };
            let owned;
            let obj = match multi.get(frame.file.as_path()) {
                Some(o) => o,
                None => {
                    owned = open(&frame.file)?;
                    &owned
                }
            };
            if obj.meta().transfer_syntax().trim_end_matches('\0') == RLE_LOSSLESS {
                check_rle_frame(obj, frame.frame).map_err(|m| fail(format!("corrupt RLE Lossless pixel data: {m}")))?;
            }
            let decoded = obj.decode_pixel_data_frame(frame.frame).map_err(|e| {
                let ts = obj.meta().transfer_syntax().trim_end_matches('\0');
                fail(format!(
                    "cannot decode the pixel data ({}): {}",
                    transfer_syntax_name(ts)
                        .map(|n| format!("{n}, transfer syntax {ts}"))
                        .unwrap_or_else(|| format!("transfer syntax {ts}")),
                    source_text(&e)
                ))
            })?;
            let (slope, intercept) = frame.rescale;
            let dst = slab
                .as_slice_mut()
                .expect("slices of a standard-layout array are contiguous");
            let big_endian = obj.meta().transfer_syntax().trim_end_matches('\0') == "1.2.840.10008.1.2.2";
            if decoded.bits_allocated() == 16 && decoded.samples_per_pixel() == 1 && !big_endian {
                // The common case (CT and MR): 16-bit samples converted here,
                // with BitsStored honoured (masked, or sign-extended).
                let bytes = decoded
                    .frame_data(0)
                    .map_err(|e| fail(format!("cannot read the pixel data: {}", source_text(&e))))?;
                if bytes.len() < 2 * ni * nj {
                    return Err(fail(format!(
                        "the pixel data holds {} bytes, the header says {}x{} 16-bit pixels",
                        bytes.len(),
                        ni,
                        nj
                    )));
                }
                let stored = decoded.bits_stored().clamp(1, 16) as u32;
                let signed = decoded.pixel_representation() == dicom_pixeldata::PixelRepresentation::Signed;
                let shift = 16 - stored;
                let mask = (u32::MAX >> (32 - stored)) as u16;
                for (d, b) in dst.iter_mut().zip(bytes.chunks_exact(2)) {
                    let v = u16::from_le_bytes([b[0], b[1]]);
                    let raw = if signed {
                        (((v << shift) as i16) >> shift) as f64
                    } else {
                        (v & mask) as f64
                    };
                    *d = (raw * slope + intercept) as f32;
                }
                return Ok(());
            }
            let values: Vec<f32> = decoded
                .to_vec_frame_with_options(0, &raw)
                .map_err(|e| fail(format!("cannot convert the pixel data: {}", source_text(&e))))?;
            if values.len() != ni * nj {
                return Err(fail(format!(
                    "the pixel data holds {} values, the header says {}x{}",
                    values.len(),
                    ni,
                    nj
                )));
            }
            for (d, src) in dst.iter_mut().zip(values) {
                *d = (src as f64 * slope + intercept) as f32;
            }
            Ok(())
        },
    )?;
    let mut volume = Volume::from_array(data, layout.affine);
    volume.warnings = layout.notes.clone();
    volume.affine_source = crate::volume::AffineSource::Dicom;
    Ok(volume)
}

/// The RLE frame `frame` of `obj` checked as the codec will read it: the
/// fragment of that index (or the whole value of a file that holds none),
/// with the codec's own reading of Rows, Columns, BitsAllocated and
/// SamplesPerPixel. Other bit depths are left to the codec, which refuses them.
fn check_rle_frame(obj: &DefaultDicomObject, frame: u32) -> Result<(), String> {
    use dicom_core::value::Value;
    use dicom_dictionary_std::tags;
    let int = |tag| obj.get(tag).and_then(|e| e.to_int::<u32>().ok());
    let (Some(rows), Some(cols), Some(bits)) = (int(tags::ROWS), int(tags::COLUMNS), int(tags::BITS_ALLOCATED)) else {
        return Ok(());
    };
    if bits != 8 && bits != 16 {
        return Ok(());
    }
    let samples = int(tags::SAMPLES_PER_PIXEL).unwrap_or(1) as usize;
    let Some(pixel_data) = obj.get(tags::PIXEL_DATA) else {
        return Ok(());
    };
    let bytes = match pixel_data.value() {
        Value::PixelSequence(seq) => match seq.fragments().get(frame as usize) {
            Some(f) => std::borrow::Cow::Borrowed(f.as_slice()),
            None => return Ok(()),
        },
        Value::Primitive(p) if frame == 0 => p.to_bytes(),
        _ => return Ok(()),
    };
    super::rle::check_frame(&bytes, (bits / 8) as usize * samples, rows as usize * cols as usize)
}
