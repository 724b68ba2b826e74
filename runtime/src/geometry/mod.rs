//! Geometry: affines, orientation codes and reorientation to RAS+,
//! resampling to a target spacing and back, and cropping to the body.

mod affine;
pub mod orientation;
pub mod resample;
pub mod roi;

pub use affine::Affine;

/// Voxel-axis order `(i, j, k)` ↔ array order `[z, y, x]` (our arrays are
/// indexed `[k][j][i]`): the same reversal both ways.
pub fn reversed<T: Copy>(v: [T; 3]) -> [T; 3] {
    [v[2], v[1], v[0]]
}

/// The `[i, j, k]` sizes of an array indexed `[k][j][i]`.
pub fn ijk_of_dim((k, j, i): (usize, usize, usize)) -> [usize; 3] {
    [i, j, k]
}
pub use orientation::{orientation_code, AxisMap, Reorientation};
pub use resample::{resample_decode, resample_linear, resample_nearest, ResampleGrid};
pub use roi::{largest_component_box, BoundingBox};
