//! Training checkpoints on disk: a directory (`best/`, `last/`) holding the
//! model checkpoint (`model.safetensors` + `model.card.json`), the optimiser
//! state (`optimizer.safetensors`) and `train_state.json`.
//!
//! A checkpoint directory is never seen half-written: it is built under a
//! temporary name, every file synced, then swapped in with one atomic
//! `renameat2(RENAME_EXCHANGE)` (Linux; elsewhere two renames), and the
//! directory synced. `train_state.json` is written last, so a directory
//! holding it is complete.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use edge_seg_export::Checkpoint;
use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use crate::data::SamplerState;

pub const STATE_FILE: &str = "train_state.json";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";

/// Where training stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Iterations completed.
    pub iteration: u64,
    pub sampler: SamplerState,
    pub best_val_dice: Option<f64>,
    pub best_iteration: Option<u64>,
    pub config: TrainConfig,
    pub elapsed_seconds: f64,
    /// The run ended before `config.iterations` because validation stopped
    /// improving (`config.patience`); resuming it does nothing more.
    #[serde(default)]
    pub stopped_early: bool,
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn sync_tree(dir: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_file() {
            std::fs::File::open(&p)?.sync_all()?;
        }
    }
    sync_dir(dir)
}

/// Swap `tmp` into `dest` atomically; afterwards `tmp` holds the old
/// content (or is gone), and is removed.
fn replace_dir(tmp: &Path, dest: &Path) -> Result<()> {
    if !dest.exists() {
        std::fs::rename(tmp, dest).with_context(|| format!("cannot rename {} to {}", tmp.display(), dest.display()))?;
    } else if !exchange(tmp, dest) {
        let old = dest.with_file_name(format!(
            ".{}.old-{}",
            dest.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        std::fs::rename(dest, &old).with_context(|| format!("cannot move {} aside", dest.display()))?;
        std::fs::rename(tmp, dest).with_context(|| format!("cannot rename {} to {}", tmp.display(), dest.display()))?;
        let _ = std::fs::remove_dir_all(&old);
    }
    if let Some(parent) = dest.parent() {
        let _ = sync_dir(parent);
    }
    let _ = std::fs::remove_dir_all(tmp);
    Ok(())
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> bool {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let (Ok(ca), Ok(cb)) = (
        CString::new(a.as_os_str().as_bytes()),
        CString::new(b.as_os_str().as_bytes()),
    ) else {
        return false;
    };
    // SAFETY: both are valid NUL-terminated paths; renameat2 only reads them.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    r == 0
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> bool {
    false
}

/// Write a complete checkpoint directory at `dest` (replacing any).
pub fn write_checkpoint(dest: &Path, ckpt: &Checkpoint, optimizer: Option<&[u8]>, state: &TrainState) -> Result<()> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    let name = dest.file_name().unwrap_or_default().to_string_lossy().to_string();
    let tmp = parent.join(format!(
        ".{name}{}{}",
        edge_seg_models::atomic::TEMP_MARKER,
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    let result = (|| -> Result<()> {
        std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        ckpt.write(&tmp)?;
        if let Some(bytes) = optimizer {
            std::fs::write(tmp.join(OPTIMIZER_FILE), bytes)
                .with_context(|| format!("cannot write {}", tmp.join(OPTIMIZER_FILE).display()))?;
        }
        std::fs::write(tmp.join(STATE_FILE), serde_json::to_vec_pretty(state)?)
            .with_context(|| format!("cannot write {}", tmp.join(STATE_FILE).display()))?;
        sync_tree(&tmp).with_context(|| format!("cannot sync {}", tmp.display()))?;
        replace_dir(&tmp, dest)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// Read a checkpoint directory's training state.
pub fn read_state(dir: &Path) -> Result<TrainState> {
    let p = dir.join(STATE_FILE);
    let text = std::fs::read_to_string(&p).with_context(|| format!("{}: no training state", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: invalid training state", p.display()))
}

/// Remove temporary checkpoint directories left by an interrupted run and
/// return the directory to resume from (`last/`), if complete.
pub fn recover(out: &Path) -> Result<Option<PathBuf>> {
    if let Ok(rd) = std::fs::read_dir(out) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') && (name.contains(edge_seg_models::atomic::TEMP_MARKER) || name.contains(".old-"))
            {
                let p = e.path();
                // An ".old-" directory is complete; it is the previous "last"
                // only if "last" itself is missing (a crash between renames).
                if name.starts_with(".last.old-") && !out.join("last").exists() && p.join(STATE_FILE).exists() {
                    std::fs::rename(&p, out.join("last"))?;
                } else if p.is_dir() {
                    std::fs::remove_dir_all(&p)?;
                } else {
                    std::fs::remove_file(&p)?;
                }
            }
        }
    }
    let last = out.join("last");
    if last.join(STATE_FILE).exists() {
        Ok(Some(last))
    } else if last.exists() {
        bail!("{}: checkpoint without {STATE_FILE}", last.display())
    } else {
        Ok(None)
    }
}
