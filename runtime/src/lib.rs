//! edge-seg runtime: read a scan, bring it to the model's grid, run the
//! network tile by tile, and write a label map that overlays the scan.
//!
//! - [`volume`]: NIfTI I/O and the [`volume::Volume`] type;
//! - [`geometry`]: orientation, resampling, body cropping;
//! - [`intensity`]: CT windowing and MR z-scoring;
//! - [`memory`]: memory budgets;
//! - [`cli`]: the `edge-seg` command line.

pub mod cli;
pub mod geometry;
pub mod intensity;
pub mod memory;
pub mod volume;
