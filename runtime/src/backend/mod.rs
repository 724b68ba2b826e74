//! Backends run a model's graph on one tile: tract on the CPU, and (with the
//! `wgpu` feature) our own executor on a GPU through wgpu.
//!
//! - [`tract`]: the CPU backend;
//! - [`graph`]: a backend-agnostic executor for the exporter's op set
//!   (graph walk, shapes, buffer plan) over a pluggable kernel set;
//! - [`wgpu`]: that executor with WGSL compute kernels.

pub mod graph;
pub mod tract;
#[cfg(feature = "wgpu")]
pub mod wgpu;

use ndarray::{Array3, Array4};

pub use self::tract::TractBackend;
#[cfg(feature = "wgpu")]
pub use self::wgpu::{WgpuBackend, WgpuOptions};

/// Something that runs one tile: `[z, y, x]` → scores `[C, z', y', x']`.
pub trait TileBackend: Sync {
    fn run(&self, input: &Array3<f32>) -> Result<Array4<f32>, String>;
    /// A name for reports (`tract`, `wgpu (NVIDIA H100)`).
    fn name(&self) -> String;
    /// The argmax over the output's channels per voxel (`[z', y', x']`),
    /// computed where the scores are, so only labels come back; `None` when
    /// the backend has no such path (callers decode the scores instead).
    fn run_labels(&self, _input: &Array3<f32>) -> Option<Result<Array3<u16>, String>> {
        None
    }
}

impl TileBackend for TractBackend {
    fn run(&self, input: &Array3<f32>) -> Result<Array4<f32>, String> {
        TractBackend::run(self, input)
    }

    fn name(&self) -> String {
        "tract".into()
    }
}
