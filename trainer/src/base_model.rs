//! The base model a transfer starts from: a checkpoint folder, or
//! `default`, the shipped base — the default model's training checkpoint
//! (`models/zoo/default.safetensors` and `default.card.json`), compiled into
//! the binary and checked against its card's `weights_sha256` when loaded.

use std::path::Path;

use anyhow::{bail, Result};
use edge_seg_export::Checkpoint;

/// The name `--base` takes for the shipped base model.
pub const DEFAULT_BASE: &str = "default";

/// A loaded base model and the name provenance records for it.
#[derive(Clone, Debug)]
pub struct BaseModel {
    pub checkpoint: Checkpoint,
    /// `default` for the shipped base; else the checkpoint folder's last
    /// two path components (e.g. `base-run/best`).
    pub name: String,
}

/// The shipped base checkpoint's card text and weights, when this binary
/// was built with them.
pub fn default_base_files() -> Option<(&'static str, &'static [u8])> {
    #[cfg(default_base)]
    {
        Some((
            include_str!(env!("EDGE_SEG_DEFAULT_BASE_CARD")),
            include_bytes!(env!("EDGE_SEG_DEFAULT_BASE_WEIGHTS")),
        ))
    }
    #[cfg(not(default_base))]
    {
        None
    }
}

/// Load `--base`: `default` (unless a folder of that name exists here,
/// which wins, as a path the user typed should) or a checkpoint folder.
pub fn load_base(arg: &Path) -> Result<BaseModel> {
    if arg == Path::new(DEFAULT_BASE) && !arg.is_dir() {
        let Some((card, weights)) = default_base_files() else {
            bail!(
                "--base default: this build has no shipped base checkpoint (models/zoo/default.safetensors and \
                 default.card.json were missing when it was built); give --base CHECKPOINT_DIR"
            );
        };
        let checkpoint = Checkpoint::from_bytes(card, weights, Path::new("models/zoo/default"))?;
        return Ok(BaseModel {
            checkpoint,
            name: DEFAULT_BASE.into(),
        });
    }
    let checkpoint = Checkpoint::read(arg)?;
    // The run and checkpoint (`base-run/best`), not the machine's path.
    let abs = arg.canonicalize().unwrap_or_else(|_| arg.to_path_buf());
    let parts: Vec<String> = abs.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let name = parts[parts.len().saturating_sub(2)..].join("/");
    Ok(BaseModel { checkpoint, name })
}
