//! Model and backend options shared by `infer` and `bench`.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use crate::backend::{TileBackend, TractBackend};
use crate::builtin::{builtin_names, default_model_bytes, DEFAULT_MODEL};
use crate::model::{Model, ModelSource};

#[derive(Debug, Args, Clone)]
pub struct ModelArgs {
    /// A built-in model name (`default`) or an ONNX file.
    #[arg(long, default_value = DEFAULT_MODEL)]
    pub model: String,
    /// Model card for an ONNX file without one (e.g. exported from MONAI or PyTorch).
    #[arg(long)]
    pub card: Option<PathBuf>,
    /// tract (CPU).
    #[arg(long, default_value = "tract")]
    pub backend: String,
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
pub struct LoadedModel {
    pub model: Model,
    pub backend: Box<dyn TileBackend>,
    pub parallel_tiles: bool,
}

impl ModelArgs {
    /// Load the model and prepare the backend.
    pub fn load(&self) -> Result<LoadedModel> {
        let model = if self.model == DEFAULT_MODEL && self.card.is_none() {
            match default_model_bytes() {
                Some(bytes) => Model::from_bytes(bytes, ModelSource::Builtin(DEFAULT_MODEL), None)?,
                None => bail!(
                    "this build has no default model (models/zoo/default.onnx was missing); give --model FILE.onnx"
                ),
            }
        } else {
            let p = PathBuf::from(&self.model);
            if !p.exists() && !self.model.contains('/') && !self.model.ends_with(".onnx") {
                bail!(
                    "no built-in model named {:?} (built-in: {:?}) and no such file",
                    self.model,
                    builtin_names()
                );
            }
            Model::from_file(&p, self.card.as_deref())?
        };
        let threads = match self.threads {
            Some(0) => bail!("--threads must be at least 1"),
            Some(n) => n,
            None => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        };
        let backend: Box<dyn TileBackend> = match self.backend.as_str() {
            "tract" => {
                if self.parallel_tiles {
                    crate::backend::tract::set_threads(1);
                    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().ok();
                } else {
                    crate::backend::tract::set_threads(threads);
                }
                Box::new(TractBackend::new(&model.proto, model.card.classes()))
            }
            other => bail!("unknown --backend {other:?}: use tract"),
        };
        Ok(LoadedModel {
            model,
            backend,
            parallel_tiles: self.parallel_tiles,
        })
    }
}
