//! Segmenting a scan with a loaded model: memory planning and tile-size
//! choice, preprocessing, sliding-window inference on a backend, decoding,
//! test-time mirroring, mapping the result back onto the scan's grid
//! (scores interpolated, or labels copied) and optional post-processing.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use edge_seg_models::card::{Decode, OutputKind};
use ndarray::{Array3, Array4, Axis};

use crate::backend::TileBackend;
use crate::memory::{choose_tile, format_bytes, model_grid_estimate, volume_memory};
use crate::model::Model;
use crate::preprocess::{is_resampled, preprocess, PreprocessSpec};
use crate::scores::decode;
use crate::scores::softmax_channels;
use crate::tiling::{TilePlan, Tiling};
use crate::volume::{Problem, Volume, VolumeError};
use crate::{postprocess, volume};

/// What a run may do.
#[derive(Clone, Debug)]
pub struct InferOptions {
    /// Bytes the whole job may use.
    pub max_memory: u64,
    /// Force this tile edge (the largest legal size not above it).
    pub tile: Option<usize>,
    pub roi_body: bool,
    /// Average over the 8 axis mirrorings.
    pub tta: bool,
    pub largest_component: bool,
    pub fill_holes: bool,
    /// Blended (same-padded) models: tile overlap.
    pub overlap: f64,
    /// Run tiles concurrently (one per rayon thread); the tile is then
    /// chosen so that that many fit the memory budget together.
    pub parallel_tiles: bool,
    /// How results on the model grid reach the scan's grid.
    pub resampling: OutputResampling,
}

/// How results on the model grid are brought onto the scan's grid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputResampling {
    /// Interpolate the class scores (trilinear) to each scan voxel and
    /// decode there: smooth boundaries at the scan's resolution. Holds the
    /// model grid's scores, `C` floats per model voxel.
    #[default]
    Linear,
    /// Decode on the model grid and give each scan voxel the label of the
    /// model voxel it lies in: less memory, blocky boundaries, and a GPU
    /// backend may return labels only.
    Nearest,
}

impl Default for InferOptions {
    fn default() -> Self {
        InferOptions {
            max_memory: crate::memory::default_budget(),
            tile: None,
            roi_body: false,
            tta: false,
            largest_component: false,
            fill_holes: false,
            overlap: 0.5,
            parallel_tiles: false,
            resampling: OutputResampling::Linear,
        }
    }
}

/// A finished segmentation.
#[derive(Clone, Debug)]
pub struct Segmentation {
    /// Labels on the scan's grid, `[k][j][i]`.
    pub labels: Array3<u16>,
    pub tile: [usize; 3],
    pub tiles: usize,
    pub model_grid: [usize; 3],
    pub seconds: f64,
    /// NaN/infinite input voxels (replaced before inference).
    pub non_finite: u64,
}

/// Why a scan could not be segmented.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// The scan: reading it, its geometry, its preprocessing.
    #[error(transparent)]
    Volume(#[from] VolumeError),
    /// The scan does not fit the memory budget.
    #[error("{}: too large for the memory budget: {message}", path.display())]
    Memory { path: PathBuf, message: String },
    /// The progress callback asked to stop.
    #[error("{}: cancelled", path.display())]
    Cancelled { path: PathBuf },
    /// The tile plan or the backend failed.
    #[error("{}: inference failed: {message}", path.display())]
    Backend { path: PathBuf, message: String },
}

/// A model on a backend, ready to segment scans.
pub struct Segmenter<'a> {
    pub model: &'a Model,
    pub backend: &'a dyn TileBackend,
    pub options: InferOptions,
}

impl Segmenter<'_> {
    fn preprocess_spec(&self) -> PreprocessSpec {
        PreprocessSpec {
            spacing_zyx: self.model.card.spacing_mm,
            intensity: self.model.card.intensity,
            crop_to_body: self.options.roi_body,
            modality: self.model.card.modality,
        }
    }

    /// Check, from the header alone, that a scan fits the memory budget;
    /// returns the planned tile.
    pub fn plan_memory(&self, path: &Path) -> Result<[usize; 3], InferError> {
        let info = volume::read_header(path)?;
        let (affine, _, _) = volume::header_affine(&info.header, info.shape);
        self.plan_memory_for(path, info.shape, &affine)
    }

    /// The memory check for a volume of `shape` (i, j, k) on `affine`.
    pub fn plan_memory_for(
        &self,
        path: &Path,
        shape: [usize; 3],
        affine: &crate::geometry::Affine,
    ) -> Result<[usize; 3], InferError> {
        volume::check_affine(affine).map_err(|m| VolumeError::new(path, Problem::Geometry(m)))?;
        let scan_voxels: u64 = shape.iter().map(|&s| s as u64).product();
        let grid = model_grid_estimate(shape, affine.spacing(), &self.model.card);
        let model_voxels: u64 = grid.iter().map(|&s| s as u64).product();
        // Scores are held for the model grid only when they are resampled:
        // the grid preprocessing will build differs from the scan's.
        let resampled = is_resampled(affine, crate::geometry::reversed(shape), self.model.card.spacing_mm);
        let score_channels = if self.options.resampling == OutputResampling::Linear && resampled {
            self.model.card.network.classes
        } else {
            0
        };
        let postprocess = self.options.largest_component || self.options.fill_holes;
        let volume_need = volume_memory(scan_voxels, model_voxels, score_channels, postprocess);
        let budget = self.options.max_memory;
        if volume_need >= budget {
            return Err(InferError::Memory {
                path: path.to_path_buf(),
                message: format!(
                    "{}x{}x{} voxels need about {} before any tile, the budget is {} (raise --max-memory{})",
                    shape[0],
                    shape[1],
                    shape[2],
                    format_bytes(volume_need),
                    format_bytes(budget),
                    if score_channels > 0 {
                        ", or copy labels back with --resampling nearest"
                    } else {
                        ""
                    }
                ),
            });
        }
        let in_flight = if self.options.parallel_tiles {
            rayon::current_num_threads().max(1) as u64
        } else {
            1
        };
        let per_tile = (budget - volume_need) / in_flight;
        choose_tile(&self.model.card, grid, per_tile, self.options.tile).map_err(|m| InferError::Memory {
            path: path.to_path_buf(),
            message: format!(
                "the volume needs about {}, and {m}{}",
                format_bytes(volume_need),
                if in_flight > 1 {
                    format!(" ({in_flight} tiles in flight with --parallel-tiles share it)")
                } else {
                    String::new()
                }
            ),
        })
    }

    /// Run one tile through the backend, with softmax for logit models and
    /// mirroring when asked.
    fn forward(&self, input: &Array3<f32>) -> Result<Array4<f32>, String> {
        let logits = self.model.card.output == OutputKind::Logits;
        let run = |x: &Array3<f32>| -> Result<Array4<f32>, String> {
            let mut s = self.backend.run(x)?;
            if logits {
                softmax_channels(&mut s);
            }
            Ok(s)
        };
        if !self.options.tta {
            return run(input);
        }
        let mut acc: Option<Array4<f32>> = None;
        for mask in 0..8u8 {
            let mut x = input.view();
            for d in 0..3 {
                if mask & (1 << d) != 0 {
                    x.invert_axis(Axis(d));
                }
            }
            let mut s = run(&x.as_standard_layout().to_owned())?;
            for d in 0..3 {
                if mask & (1 << d) != 0 {
                    s.invert_axis(Axis(d + 1));
                }
            }
            match &mut acc {
                None => acc = Some(s.as_standard_layout().to_owned()),
                Some(a) => *a += &s,
            }
        }
        let mut a = acc.unwrap();
        a.mapv_inplace(|v| v / 8.0);
        Ok(a)
    }

    /// Segment a scan already read from `path`. `progress(done, total)` is
    /// called after each tile; returning `false` cancels the job.
    pub fn segment(
        &self,
        vol: &Volume,
        path: &Path,
        tile: [usize; 3],
        progress: &(dyn Fn(usize, usize) -> bool + Sync),
    ) -> Result<Segmentation, InferError> {
        let start = Instant::now();
        let pre = preprocess(vol, path, &self.preprocess_spec())?;
        let (z, y, x) = pre.data.dim();
        let card = &self.model.card;
        let plan = TilePlan::new(&card.network, [z, y, x], tile, self.options.overlap).map_err(|message| {
            InferError::Backend {
                path: path.to_path_buf(),
                message,
            }
        })?;
        let total = plan.tiles.len();
        let done = AtomicUsize::new(0);
        let cancelled = AtomicBool::new(false);
        let tick = || {
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if !progress(n, total) {
                cancelled.store(true, Ordering::Relaxed);
            }
        };
        let check_cancel = || {
            if cancelled.load(Ordering::Relaxed) {
                // Stops the tiles; `segment` reports the cancellation.
                return Err("cancelled".to_string());
            }
            Ok(())
        };
        let pad = card.intensity.background_value();
        // Scores interpolated onto the scan's grid need the whole model
        // grid's scores; otherwise tiles are decoded as they come.
        let resample_scores = self.options.resampling == OutputResampling::Linear && !pre.grid.is_identity();
        // Exact tiles of a probability model decoded by argmax: the backend
        // may compute the labels itself, so only labels come back.
        let labels_only = !resample_scores
            && !plan.blended
            && card.decode == Decode::Argmax
            && card.output == OutputKind::Probabilities
            && !self.options.tta;
        let forward = |t: &Array3<f32>| {
            check_cancel()?;
            self.forward(t)
        };
        let tiling = Tiling {
            parallel: self.options.parallel_tiles,
            progress: &tick,
            ..Tiling::new(pre.data.view(), &plan, pad)
        };
        let labels = if resample_scores {
            tiling.volume_scores(forward).and_then(|scores| {
                check_cancel()?;
                Ok(pre.scores_to_crop(scores.view(), card.decode))
            })
        } else if labels_only {
            let forward = |t: &Array3<f32>| {
                check_cancel()?;
                match self.backend.run_labels(t) {
                    Some(labels) => labels,
                    None => self.forward(t).map(|s| decode(s.view(), Decode::Argmax)),
                }
            };
            tiling
                .labels_of_label_tiles(forward)
                .map(|labels| pre.labels_to_crop(&labels))
        } else {
            tiling
                .labels(card.decode, forward)
                .map(|labels| pre.labels_to_crop(&labels))
        };
        // A cancelled job is told by the flag, whatever the tiles returned.
        if cancelled.load(Ordering::Relaxed) {
            return Err(InferError::Cancelled {
                path: path.to_path_buf(),
            });
        }
        let mut labels = labels.map_err(|message| InferError::Backend {
            path: path.to_path_buf(),
            message,
        })?;
        // Post-processing on the scan's resolution (the cropped canonical
        // grid: components do not depend on axis order or direction).
        if self.options.largest_component {
            postprocess::largest_component(&mut labels);
        }
        if self.options.fill_holes {
            postprocess::fill_holes(&mut labels);
        }
        Ok(Segmentation {
            labels: pre.crop_to_scan(labels),
            tile,
            tiles: total,
            model_grid: [z, y, x],
            seconds: start.elapsed().as_secs_f64(),
            non_finite: pre.non_finite,
        })
    }
}
