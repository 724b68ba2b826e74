//! DICOM: image series in, a Segmentation object out.
//!
//! - [`bounds`]: declared lengths checked against the file before parsing;
//! - [`elements`]: typed reads of data elements and the writers' shorthands;
//! - [`series`]: finding the image objects in folders and files, grouped
//!   by series (headers only);
//! - [`layout`]: ordering a series' slices in space, the checks that refuse
//!   a geometry we cannot represent exactly, and the voxel-to-world affine;
//! - [`pixels`]: decoding the frames to one float volume (rescale applied);
//! - [`rle`]: RLE Lossless frames checked before the codec decodes them;
//! - [`seg`]: writing a label map as a DICOM Segmentation referencing its series;
//! - [`synthetic`]: writing a volume as a CT or MR image series (test and
//!   benchmark fixtures);
//! - [`uid`]: new unique identifiers.
//!
//! A series becomes a [`crate::volume::Volume`] whose axes are the image
//! columns (i), rows (j) and slices in ascending order along the slice
//! normal (k), exactly as ITK (and so SimpleITK) builds it, with the affine
//! converted from DICOM's LPS to the RAS+ convention of NIfTI.

pub mod bounds;
pub mod elements;
pub mod layout;
pub mod pixels;
pub mod rle;
pub mod seg;
pub mod series;
pub mod synthetic;
pub mod uid;

pub use layout::{Layout, SLICE_JITTER_TOLERANCE};

/// Read a Part 10 file (preamble and `DICM` marker checked by the caller or
/// refused by the parser) with every declared length checked first
/// ([`bounds`]); `until` stops before that element (headers only).
pub fn open_checked(
    path: &std::path::Path,
    until: Option<dicom_core::Tag>,
) -> Result<dicom_object::DefaultDicomObject, crate::volume::VolumeError> {
    use crate::error_text::source_text;
    use crate::volume::{Problem, VolumeError};
    let fail = |m: String| VolumeError::new(path, Problem::Dicom(m));
    let bytes = std::fs::read(path).map_err(|e| VolumeError::new(path, Problem::Io(e)))?;
    bounds::check_lengths(&bytes).map_err(|m| fail(format!("cannot parse the DICOM file: {m}")))?;
    if bytes.len() < 132 || &bytes[128..132] != b"DICM" {
        return Err(fail(
            "not a DICOM file (no \"DICM\" marker after the 128-byte preamble)".into(),
        ));
    }
    let mut options = dicom_object::OpenFileOptions::new().read_preamble(dicom_object::file::ReadPreamble::Never);
    if let Some(tag) = until {
        options = options.read_until(tag);
    }
    options
        .from_reader(&bytes[128..])
        .map_err(|e| fail(format!("cannot parse the DICOM file: {}", source_text(&e))))
}
pub use pixels::read_series;
pub use seg::{build_seg, write_seg, SegOptions, SegSummary};
pub use series::{find_series, is_dicom_file, select_series, Series};

#[cfg(test)]
mod tests;
