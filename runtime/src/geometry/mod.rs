//! Geometry: affines, orientation codes and reorientation to RAS+,
//! resampling to a target spacing and back, and cropping to the body.

mod affine;
pub mod orientation;
pub mod resample;
pub mod roi;

pub use affine::Affine;
pub use orientation::{orientation_code, AxisMap, Reorientation};
pub use resample::{resample_decode, resample_linear, resample_nearest, ResampleGrid};
pub use roi::{largest_component_box, BoundingBox};
