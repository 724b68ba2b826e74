//! Atomic file writes, shared by every crate that writes results: the bytes
//! go to a temporary file in the destination's directory, which is synced
//! and renamed over the destination only when complete, and the directory is
//! synced so the rename survives a crash. A failed write removes the
//! temporary file and leaves the destination as it was.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Marker in every temporary file name.
pub const TEMP_MARKER: &str = "_tmp-";

/// A temporary name beside `dest`, hidden (leading dot) and keeping the
/// suffix `keep_suffix`: `.scan_seg_tmp-<pid>-<n>.nii.gz` for
/// `scan.seg.nii.gz` and `.nii.gz`. The stem's dots become underscores, so
/// the suffix is the only extension (the NIfTI writer rewrites extensions).
pub fn temp_path(dest: &Path, keep_suffix: &str) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let (stem, suffix) = match name.strip_suffix(keep_suffix) {
        Some(stem) if !keep_suffix.is_empty() => (stem.to_string(), keep_suffix),
        _ => (name.clone(), ""),
    };
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let stem = stem.replace('.', "_");
    dest.with_file_name(format!(".{stem}{TEMP_MARKER}{}-{n}{suffix}", std::process::id()))
}

/// Sync a file's data and its directory entry.
pub fn sync_file_and_dir(file: &Path) -> std::io::Result<()> {
    std::fs::File::open(file)?.sync_all()?;
    sync_dir_of(file);
    Ok(())
}

/// Sync the directory holding `path` (best effort: not every platform
/// allows opening a directory for syncing).
pub fn sync_dir_of(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Failure of [`write_with`]: the writer's own error or an I/O error while
/// syncing or renaming.
#[derive(Debug)]
pub enum AtomicWriteError<E> {
    Write(E),
    Io(std::io::Error),
}

impl<E: fmt::Display> fmt::Display for AtomicWriteError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AtomicWriteError::Write(e) => e.fmt(f),
            AtomicWriteError::Io(e) => e.fmt(f),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for AtomicWriteError<E> {}

/// Write `dest` atomically through `write_tmp`, which must create the file
/// at the temporary path it is given.
pub fn write_with<E>(
    dest: &Path,
    keep_suffix: &str,
    write_tmp: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), AtomicWriteError<E>> {
    let tmp = temp_path(dest, keep_suffix);
    let result = write_tmp(&tmp)
        .map_err(AtomicWriteError::Write)
        .and_then(|()| {
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(AtomicWriteError::Io)
        })
        .and_then(|()| std::fs::rename(&tmp, dest).map_err(AtomicWriteError::Io));
    match result {
        Ok(()) => {
            sync_dir_of(dest);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Write `bytes` to `dest` atomically.
pub fn write_bytes(dest: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_with(dest, "", |tmp| std::fs::write(tmp, bytes)).map_err(|e| match e {
        AtomicWriteError::Write(e) | AtomicWriteError::Io(e) => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("edge-seg-atomic-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn temp_names_keep_suffix_and_hide() {
        let t = temp_path(Path::new("/x/scan.seg.nii.gz"), ".nii.gz");
        let n = t.file_name().unwrap().to_string_lossy().to_string();
        assert!(n.starts_with(".scan_seg_tmp-") && n.ends_with(".nii.gz"), "{n}");
        let t = temp_path(Path::new("/x/model.onnx"), "");
        assert!(t.file_name().unwrap().to_string_lossy().starts_with(".model_onnx_tmp-"));
        // The suffix is the only extension left.
        let t = temp_path(Path::new("v.nii"), ".nii");
        assert_eq!(t.with_extension("").with_extension("nii"), t);
    }

    #[test]
    fn failed_write_keeps_old_file_and_leaves_no_temp() {
        let d = scratch_dir("fail");
        let dest = d.join("a.txt");
        write_bytes(&dest, b"old").unwrap();
        let r = write_with(&dest, "", |tmp| {
            std::fs::write(tmp, b"partial").unwrap();
            Err::<(), _>("disk full")
        });
        assert!(matches!(r, Err(AtomicWriteError::Write("disk full"))));
        assert_eq!(std::fs::read(&dest).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
        write_bytes(&dest, b"new").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
