//! Backends run a model's graph on one tile: tract on the CPU.

pub mod tract;

use ndarray::{Array3, Array4};

pub use self::tract::TractBackend;

/// Something that runs one tile: `[z, y, x]` → scores `[C, z', y', x']`.
pub trait TileBackend: Sync {
    fn run(&self, input: &Array3<f32>) -> Result<Array4<f32>, String>;
    /// A name for reports (`tract`, `wgpu (NVIDIA H100)`).
    fn name(&self) -> String;
}

impl TileBackend for TractBackend {
    fn run(&self, input: &Array3<f32>) -> Result<Array4<f32>, String> {
        TractBackend::run(self, input)
    }

    fn name(&self) -> String {
        "tract".into()
    }
}
