//! PNG figures (learning curves, result plots, phantom previews), written
//! whole or not at all: drawn into a temporary file beside the target and
//! renamed once every part is drawn. Without this a failure part-way (on a
//! machine without fonts, say) left a blank or half-drawn PNG behind.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Draw a `size` (width, height) PNG with `draw` and write it to `path`.
pub fn write_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()>,
) -> Result<()> {
    // The encoder goes by the extension, so the temporary name keeps `.png`.
    edge_seg_models::atomic::write_with(path, ".png", |tmp| {
        // Should `draw` panic, the backend writes what it holds to `tmp`
        // while unwinding; the guard, dropped after it, removes that file.
        let _guard = RemoveOnUnwind(tmp);
        let root = BitMapBackend::new(tmp, size).into_drawing_area();
        draw(&root)?;
        root.present().map_err(|e| anyhow!("{e}"))
        // On an error the backend writes what it holds when dropped: the
        // temporary file, which the atomic writer then removes.
    })
    .map_err(|e| anyhow!("cannot draw {}: {e:#}", path.display()))
}

/// Removes a file when dropped during a panic.
struct RemoveOnUnwind<'a>(&'a Path);

impl Drop for RemoveOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = std::fs::remove_file(self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names of the files in `dir`, temporary ones included.
    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_figure_that_fails_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("plot.png");
        let err = write_png(&png, (40, 30), |root| {
            root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
            Err(anyhow!("no font"))
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("no font"), "{err:#}");
        assert!(format!("{err:#}").contains("plot.png"), "{err:#}");
        assert_eq!(files_in(dir.path()), Vec::<String>::new());
    }

    #[test]
    fn a_figure_that_panics_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("plot.png");
        let r = std::panic::catch_unwind(|| {
            let _ = write_png(&png, (40, 30), |root| {
                root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
                panic!("drawing failed");
            });
        });
        assert!(r.is_err());
        assert_eq!(files_in(dir.path()), Vec::<String>::new());
    }

    #[test]
    fn a_figure_that_succeeds_is_a_png_of_the_asked_size() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("plot.png");
        write_png(&png, (40, 30), |root| root.fill(&RED).map_err(|e| anyhow!("{e}"))).unwrap();
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        // IHDR: width and height, big-endian, after the 8-byte signature and 8 bytes of chunk header.
        assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 40);
        assert_eq!(u32::from_be_bytes(bytes[20..24].try_into().unwrap()), 30);
        assert_eq!(files_in(dir.path()), ["plot.png"]);
    }
}
