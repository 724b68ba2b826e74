//! The GPU backend: the [graph executor](crate::backend::graph) with WGSL
//! compute kernels, through wgpu (Vulkan, Metal, DirectX 12; Mesa's
//! lavapipe runs it on the CPU).
//!
//! - [`device`]: adapters, `--gpu` selection, the device with the
//!   adapter's own limits;
//! - [`kernels`]: the op set as compute kernels ([`kernels::WgpuKernels`]);
//! - [`slab`]: splitting kernels into z-slabs that fit one storage binding;
//! - `pipelines`: WGSL sources (`shaders/*.wgsl`) and compiled pipelines.
//!
//! Tensors live channels-last (`[d, h, w, c]`) in one buffer each, up to
//! the adapter's maximum buffer size; kernels bind z-slabs of them, so an
//! activation larger than one storage binding still works.

pub mod device;
pub mod kernels;
mod pipelines;
pub mod slab;

use std::sync::{Mutex, MutexGuard};

use ndarray::{Array3, Array4, ArrayView4};
use tract_onnx::pb::ModelProto;

use self::kernels::WgpuKernels;
use super::graph::{Executor, Graph};
use super::TileBackend;

/// How to open the GPU backend.
#[derive(Clone, Debug, Default)]
pub struct WgpuOptions {
    /// The adapter: an index into [`device::adapter_infos`] or a
    /// case-insensitive part of its name; `None` picks the most capable.
    pub adapter: Option<String>,
    /// Bind at most this many bytes per storage binding (below the
    /// device's limit), e.g. to exercise the slab path on a small tile.
    pub max_binding_bytes: Option<u64>,
}

/// What the plan of one tile shape uses on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanSummary {
    /// Buffers (slots shared by tensors) and their bytes.
    pub buffers: usize,
    pub buffer_bytes: u64,
    /// The largest tensor, in bytes.
    pub largest_tensor_bytes: u64,
    /// Compute dispatches per tile (probabilities path).
    pub dispatches: usize,
    /// The storage binding limit the dispatches were split for.
    pub binding_limit: u64,
}

/// A model prepared for a GPU.
pub struct WgpuBackend {
    executor: Mutex<Executor<WgpuKernels>>,
    name: String,
    classes: usize,
}

impl WgpuBackend {
    /// Read the graph (refusing ops outside the op set) and open the
    /// adapter. `classes` is the number of output channels expected.
    pub fn new(proto: &ModelProto, classes: usize, options: &WgpuOptions) -> Result<WgpuBackend, String> {
        WgpuBackend::from_graph(Graph::from_proto(proto)?, classes, options)
    }

    /// Open the adapter for a graph already read.
    pub fn from_graph(graph: Graph, classes: usize, options: &WgpuOptions) -> Result<WgpuBackend, String> {
        let gpu = device::open(options.adapter.as_deref())?;
        let name = format!("wgpu ({}, {:?})", gpu.info.name, gpu.info.backend);
        let executor = Executor::new(graph, WgpuKernels::new(gpu, options.max_binding_bytes))?;
        Ok(WgpuBackend {
            executor: Mutex::new(executor),
            name,
            classes,
        })
    }

    fn executor(&self) -> MutexGuard<'_, Executor<WgpuKernels>> {
        self.executor.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The adapter in use.
    pub fn adapter(&self) -> wgpu::AdapterInfo {
        self.executor().kernels().gpu().info.clone()
    }

    /// Run any graph of the op set on `[C, z, y, x]` input; returns
    /// `[C', z', y', x']` (no check of the class count).
    pub fn run_channels(&self, input: ArrayView4<f32>) -> Result<Array4<f32>, String> {
        let (c, z, y, x) = input.dim();
        let data: Vec<f32> = input.permuted_axes([1, 2, 3, 0]).iter().copied().collect();
        let (out, d) = self.executor().run([z, y, x, c], &data)?;
        let a = Array4::from_shape_vec((d[0], d[1], d[2], d[3]), out).map_err(|e| e.to_string())?;
        Ok(a.permuted_axes([3, 0, 1, 2]).as_standard_layout().to_owned())
    }

    /// The argmax over the output's channels for a `[z, y, x]` tile,
    /// computed on the GPU.
    pub fn labels(&self, input: &Array3<f32>) -> Result<Array3<u16>, String> {
        let (z, y, x) = input.dim();
        let data: Vec<f32> = input.iter().copied().collect();
        let (labels, d) = self.executor().run_labels([z, y, x, 1], &data)?;
        let labels = labels
            .into_iter()
            .map(|l| u16::try_from(l).map_err(|_| format!("label {l} does not fit 16 bits")))
            .collect::<Result<Vec<u16>, String>>()?;
        Array3::from_shape_vec((d[0], d[1], d[2]), labels).map_err(|e| e.to_string())
    }

    /// Buffers and dispatches for a `[z, y, x]` tile (building its plan).
    pub fn plan_summary(&self, tile: [usize; 3]) -> Result<PlanSummary, String> {
        let mut ex = self.executor();
        let binding_limit = ex.kernels().binding_limit();
        let (plan, steps) = ex.program([tile[0], tile[1], tile[2], 1])?;
        Ok(PlanSummary {
            buffers: plan.slots.len(),
            buffer_bytes: plan.total_bytes(),
            largest_tensor_bytes: plan.tensors.iter().map(|t| t.bytes()).max().unwrap_or(0),
            dispatches: steps[..steps.len() - 1].iter().map(|s| s.dispatches()).sum(),
            binding_limit,
        })
    }
}

impl TileBackend for WgpuBackend {
    fn run(&self, input: &Array3<f32>) -> Result<Array4<f32>, String> {
        let (z, y, x) = input.dim();
        let scores = self.run_channels(
            input
                .view()
                .into_shape_with_order((1, z, y, x))
                .map_err(|e| e.to_string())?,
        )?;
        if scores.dim().0 != self.classes {
            return Err(format!(
                "the model returned {} channels, expected {}",
                scores.dim().0,
                self.classes
            ));
        }
        Ok(scores)
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn run_labels(&self, input: &Array3<f32>) -> Option<Result<Array3<u16>, String>> {
        Some(self.labels(input))
    }
}
