//! DICOM: image series in, a Segmentation object out.
//!
//! - [`elements`]: typed reads of data elements and the writers' shorthands;
//! - [`series`]: finding the image objects in folders and files, grouped
//!   by series (headers only);
//! - [`layout`]: ordering a series' slices in space, the checks that refuse
//!   a geometry we cannot represent exactly, and the voxel-to-world affine;
//! - [`pixels`]: decoding the frames to one float volume (rescale applied);
//! - [`seg`]: writing a label map as a DICOM Segmentation referencing its series;
//! - [`synthetic`]: writing a volume as a CT or MR image series (test and
//!   benchmark fixtures);
//! - [`uid`]: new unique identifiers.
//!
//! A series becomes a [`crate::volume::Volume`] whose axes are the image
//! columns (i), rows (j) and slices in ascending order along the slice
//! normal (k), exactly as ITK (and so SimpleITK) builds it, with the affine
//! converted from DICOM's LPS to the RAS+ convention of NIfTI.

pub mod elements;
pub mod layout;
pub mod pixels;
pub mod seg;
pub mod series;
pub mod synthetic;
pub mod uid;

pub use layout::{Layout, SLICE_JITTER_TOLERANCE};
pub use pixels::read_series;
pub use seg::{build_seg, write_seg, SegOptions, SegSummary};
pub use series::{find_series, is_dicom_file, select_series, Series};

#[cfg(test)]
mod tests;
