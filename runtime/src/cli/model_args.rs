//! Model and backend options shared by `infer` and `bench`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;

use edge_seg_runtime::backend::{TileBackend, TractBackend};
use edge_seg_runtime::builtin::{builtin_names, default_model_bytes, DEFAULT_MODEL};
use edge_seg_runtime::model::{Model, ModelSource};

#[derive(Debug, Args, Clone)]
pub struct ModelArgs {
    /// A built-in model name (`default`) or an ONNX file.
    #[arg(long, default_value = DEFAULT_MODEL)]
    pub model: String,
    /// Model card for an ONNX file without one (e.g. exported from MONAI or PyTorch).
    #[arg(long)]
    pub card: Option<PathBuf>,
    /// `tract` (CPU), `wgpu` (GPU through Vulkan, Metal or DirectX 12), or
    /// `auto`: wgpu when a GPU adapter exists and the model's graph is
    /// supported, else tract (with a note).
    #[arg(long, default_value = "tract")]
    pub backend: String,
    /// GPU adapter for wgpu: its index in the list of adapters, or part of
    /// its name (case-insensitive); default: the most capable one.
    #[arg(long)]
    pub gpu: Option<String>,
    /// CPU threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Run tiles in parallel (one thread each) instead of one tile on all threads.
    #[arg(long)]
    pub parallel_tiles: bool,
    /// Memory budget: bytes, 800M, 4G, or a percentage of available memory
    /// (default 75%).
    #[arg(long)]
    pub max_memory: Option<String>,
    /// Tile edge in voxels (the largest legal size not above it); default:
    /// the largest that fits the memory budget.
    #[arg(long)]
    pub tile: Option<usize>,
}

/// A model on its backend.
pub struct ModelOnBackend {
    pub model: Model,
    pub backend: Box<dyn TileBackend>,
    pub parallel_tiles: bool,
}

impl ModelArgs {
    /// The model named by `--model` (and `--card`).
    pub fn model(&self) -> Result<Model> {
        load_model(&self.model, self.card.as_deref())
    }

    /// Load the model and prepare the backend.
    pub fn load(&self) -> Result<ModelOnBackend> {
        let model = self.model()?;
        let threads = match self.threads {
            Some(0) => bail!("--threads must be at least 1"),
            Some(n) => n,
            None => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        };
        // rayon's pool runs parallel tiles, resampling and the softmax:
        // `--threads` bounds it too.
        rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().ok();
        let tract = || -> Box<dyn TileBackend> {
            if self.parallel_tiles {
                edge_seg_runtime::backend::tract::set_threads(1);
            } else {
                edge_seg_runtime::backend::tract::set_threads(threads);
            }
            Box::new(TractBackend::new(&model.proto, model.card.classes()))
        };
        let backend: Box<dyn TileBackend> = match self.backend.as_str() {
            "tract" if self.gpu.is_some() => bail!("--gpu selects a wgpu adapter: use it with --backend wgpu or auto"),
            "tract" => tract(),
            "wgpu" => gpu::open(&model, self.gpu.as_deref(), false).map_err(anyhow::Error::msg)?,
            "auto" => match gpu::open(&model, self.gpu.as_deref(), true) {
                Ok(b) => b,
                Err(why) => {
                    eprintln!("note: {why}; using tract");
                    tract()
                }
            },
            other => bail!("unknown --backend {other:?}: use tract, wgpu or auto"),
        };
        Ok(ModelOnBackend {
            model,
            backend,
            parallel_tiles: self.parallel_tiles,
        })
    }
}

/// Opening the wgpu backend for `--backend wgpu|auto`.
#[cfg(feature = "wgpu")]
mod gpu {
    use edge_seg_runtime::backend::graph::Graph;
    use edge_seg_runtime::backend::wgpu::device::adapter_infos;
    use edge_seg_runtime::backend::{TileBackend, WgpuBackend, WgpuOptions};
    use edge_seg_runtime::model::Model;

    /// The model on the wgpu backend. For `auto`, without an adapter named,
    /// software adapters (such as Mesa's llvmpipe) do not count: tract is
    /// faster on the same CPU.
    pub fn open(model: &Model, adapter: Option<&str>, auto: bool) -> Result<Box<dyn TileBackend>, String> {
        let graph =
            Graph::from_proto(&model.proto).map_err(|e| format!("the wgpu backend cannot run this model: {e}"))?;
        if auto && adapter.is_none() {
            let infos = adapter_infos();
            if !infos.iter().any(|a| a.device_type != wgpu::DeviceType::Cpu) {
                let names: Vec<&str> = infos.iter().map(|a| a.name.as_str()).collect();
                return Err(if names.is_empty() {
                    "no GPU adapter found".to_string()
                } else {
                    format!("only software GPU adapters found ({})", names.join(", "))
                });
            }
        }
        let options = WgpuOptions {
            adapter: adapter.map(str::to_string),
            ..Default::default()
        };
        Ok(Box::new(WgpuBackend::from_graph(
            graph,
            model.card.classes(),
            &options,
        )?))
    }
}

/// Without the `wgpu` feature there is no GPU backend.
#[cfg(not(feature = "wgpu"))]
mod gpu {
    use edge_seg_runtime::backend::TileBackend;
    use edge_seg_runtime::model::Model;

    pub fn open(_model: &Model, _adapter: Option<&str>, _auto: bool) -> Result<Box<dyn TileBackend>, String> {
        Err("this edge-seg was built without the wgpu backend (cargo feature `wgpu`)".into())
    }
}

/// A built-in model by name (`default`) or an ONNX file, with `card` for a
/// file without one.
pub fn load_model(model: &str, card: Option<&Path>) -> Result<Model> {
    Ok(if model == DEFAULT_MODEL && card.is_none() {
        match default_model_bytes() {
            Some(bytes) => Model::from_bytes(bytes, ModelSource::Builtin(DEFAULT_MODEL), None)?,
            None => {
                bail!("this build has no default model (models/zoo/default.onnx was missing); give --model FILE.onnx")
            }
        }
    } else {
        let p = PathBuf::from(model);
        if !p.exists() && !model.contains('/') && !model.ends_with(".onnx") {
            bail!(
                "no built-in model named {:?} (built-in: {:?}) and no such file",
                model,
                builtin_names()
            );
        }
        Model::from_file(&p, card)?
    })
}
