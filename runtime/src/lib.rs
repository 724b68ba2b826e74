//! edge-seg runtime: read a scan, bring it to the model's grid, run the
//! network tile by tile, and write a label map that overlays the scan.
//!
//! - [`volume`]: NIfTI I/O and the [`volume::Volume`] type;
//! - [`dicom`]: DICOM image series in, DICOM Segmentations out;
//! - [`geometry`]: orientation, resampling, body cropping;
//! - [`intensity`]: CT windowing and MR z-scoring;
//! - [`memory`]: memory budgets, what a job needs, the tile that fits;
//! - [`model`]: loading an ONNX model and its card, with checks;
//! - [`backend`]: running one tile: tract (CPU) or our WGSL kernels through wgpu (GPU);
//! - [`infer`]: segmenting a scan: memory plan, tiles, decoding, mapping back, typed errors;
//! - [`postprocess`]: largest component, hole filling;
//! - [`outputs`]: label map, colour table, report and per-structure masks;
//! - [`statistics`]: per-structure volume, intensity, centroid, box, border contact;
//! - [`builtin`]: the default model compiled into the binary;
//! - [`preview`]: the PNG of three slices with coloured structures and a legend;
//! - [`scan`]: a scan as named: a NIfTI file or a DICOM series, headers first;
//! - [`preprocess`]: scan → model grid and labels back, shared with the trainer;
//! - [`scores`]: a tile's class scores: softmax and decoding to labels;
//! - [`tiling`]: sliding-window inference (exact overlap-tile or Gaussian blending);
//! - [`error_text`]: an error and its causes as one line, for both command lines.
//!
//! The `edge-seg` command line (`src/cli/`, feature `cli`) is the binary's
//! own: the library, and libedge_seg built on it, never see the parser.

pub mod backend;
pub mod builtin;
pub mod dicom;
pub mod error_text;
pub mod geometry;
pub mod infer;
pub mod intensity;
pub mod memory;
pub mod model;
pub mod outputs;
pub mod postprocess;
pub mod preprocess;
pub mod preview;
pub mod scan;
pub mod scores;
pub mod statistics;
pub mod tiling;
pub mod volume;
