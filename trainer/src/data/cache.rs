//! Preprocessed cases, cached on disk as raw f32 image + u8 labels so epochs
//! do not re-read gzip. Preprocessing is the runtime's own
//! ([`edge_seg_runtime::preprocess`]), so training sees exactly what
//! inference sees.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use edge_seg_models::manifest::{Case, Split};
use edge_seg_runtime::preprocess::{preprocess, PreprocessSpec};
use ndarray::Array3;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::dataset::Dataset;
use crate::progress::Progress;

/// A case on the model grid, ready for patch sampling.
#[derive(Clone, Debug)]
pub struct PreparedCase {
    pub id: String,
    pub split: Split,
    /// Intensity-transformed image, `[z][y][x]`.
    pub image: Array3<f32>,
    /// Vocabulary indices; 0 is background or not annotated.
    pub labels: Array3<u8>,
    /// Vocabulary indices annotated in this case (ascending, no 0).
    pub annotated: Vec<usize>,
    /// Every foreground class is annotated.
    pub complete: bool,
    pub spacing_zyx: [f64; 3],
}

const MAGIC: &[u8; 4] = b"ESC1";
/// Bump when preprocessing changes so stale caches are not reused.
const CACHE_VERSION: u32 = 1;

fn file_stamp(p: &Path) -> String {
    match std::fs::metadata(p) {
        Ok(m) => format!(
            "{}:{}:{:?}",
            p.display(),
            m.len(),
            m.modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        ),
        Err(_) => format!("{}:missing", p.display()),
    }
}

fn cache_key(ds: &Dataset, case: &Case, spec: &PreprocessSpec) -> String {
    let mut h = Sha256::new();
    h.update(CACHE_VERSION.to_le_bytes());
    h.update(file_stamp(&ds.resolve(&case.image)));
    if let Some(l) = &case.label {
        h.update(file_stamp(&ds.resolve(l)));
    }
    h.update(format!("{:?}", ds.manifest.source_lookup(&case.source)));
    h.update(format!("{spec:?}"));
    let d = h.finalize();
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn cache_path(dir: &Path, case: &Case, key: &str) -> PathBuf {
    dir.join(format!("{}-{key}.bin", case.id))
}

fn write_cache(path: &Path, image: &Array3<f32>, labels: &Array3<u8>, spacing: [f64; 3]) -> Result<()> {
    let (z, y, x) = image.dim();
    let meta = serde_json::json!({"shape": [z, y, x], "spacing_zyx": spacing});
    let meta = serde_json::to_vec(&meta)?;
    let mut bytes = Vec::with_capacity(12 + meta.len() + image.len() * 5);
    bytes.write_all(MAGIC)?;
    bytes.write_all(&(meta.len() as u32).to_le_bytes())?;
    bytes.write_all(&meta)?;
    for v in image.iter() {
        bytes.write_all(&v.to_le_bytes())?;
    }
    bytes.extend(labels.iter());
    edge_seg_models::atomic::write_bytes(path, &bytes).with_context(|| format!("cannot write cache {}", path.display()))
}

fn read_cache(path: &Path) -> Result<(Array3<f32>, Array3<u8>, [f64; 3])> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.read_to_end(&mut bytes)?;
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        bail!("{}: not a cache file", path.display());
    }
    let n = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    let meta: serde_json::Value = serde_json::from_slice(bytes.get(8..8 + n).context("truncated cache")?)?;
    let shape: Vec<usize> = serde_json::from_value(meta["shape"].clone())?;
    let spacing: [f64; 3] = serde_json::from_value(meta["spacing_zyx"].clone())?;
    let vox = shape.iter().product::<usize>();
    let body = &bytes[8 + n..];
    if body.len() != vox * 5 {
        bail!("{}: truncated cache file", path.display());
    }
    let image: Vec<f32> = body[..vox * 4]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let labels = body[vox * 4..].to_vec();
    let dim = (shape[0], shape[1], shape[2]);
    Ok((
        Array3::from_shape_vec(dim, image)?,
        Array3::from_shape_vec(dim, labels)?,
        spacing,
    ))
}

/// Cases read and preprocessed at once: a CT scan of 512 × 512 × 400 voxels
/// takes about 0.4 GB as f32 before resampling.
const PREPARE_AT_ONCE: usize = 8;

/// Prepare every case of `splits`, from the cache in `cache_dir` when
/// possible. `progress(done, total)` is called as cases finish.
pub fn prepare_cases(
    ds: &Dataset,
    spec: &PreprocessSpec,
    cache_dir: &Path,
    splits: &[Split],
    progress: impl FnMut(usize, usize) + Send,
) -> Result<Vec<PreparedCase>> {
    if ds.manifest.vocabulary.len() > 256 {
        bail!(
            "training supports at most 256 labels, the vocabulary has {}",
            ds.manifest.vocabulary.len()
        );
    }
    let cases: Vec<&Case> = ds.manifest.cases.iter().filter(|c| splits.contains(&c.split)).collect();
    // Cases are read, resampled and cached in parallel (each one's gzip
    // decoding is single-threaded), at most PREPARE_AT_ONCE at a time since
    // each holds a whole scan at its own resolution; the result keeps the
    // manifest's order, and of several failures the first in that order is
    // reported.
    let total = cases.len();
    let progress = Progress::start(progress, total);
    let workers = rayon::current_num_threads().min(PREPARE_AT_ONCE);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .context("cannot start the case-preparation threads")?;
    let prepared: Vec<Result<PreparedCase>> = pool.install(|| {
        cases
            .par_iter()
            .map(|case| {
                let prepared = prepare_case(ds, spec, cache_dir, case);
                progress.item_done();
                prepared
            })
            .collect()
    });
    prepared.into_iter().collect()
}

/// One case from its cache file, or read, preprocessed and cached.
fn prepare_case(ds: &Dataset, spec: &PreprocessSpec, cache_dir: &Path, case: &Case) -> Result<PreparedCase> {
    let key = cache_key(ds, case, spec);
    let path = cache_path(cache_dir, case, &key);
    let (image, labels, spacing) = match read_cache(&path) {
        Ok(c) => c,
        Err(_) => {
            let (vol, labels) = ds.read_case(case)?;
            let image_path = ds.resolve(&case.image);
            let pre = preprocess(&vol, &image_path, spec)?;
            let labels = match labels {
                Some(l) => pre.labels_to_model(&l).mapv(|v| v as u8),
                None => Array3::zeros(pre.data.dim()),
            };
            std::fs::create_dir_all(cache_dir).with_context(|| format!("cannot create {}", cache_dir.display()))?;
            write_cache(&path, &pre.data, &labels, pre.spacing_zyx)?;
            (pre.data, labels, pre.spacing_zyx)
        }
    };
    Ok(PreparedCase {
        id: case.id.clone(),
        split: case.split,
        image,
        labels,
        annotated: ds.manifest.annotated_indices(case),
        complete: ds.manifest.is_complete(case),
        spacing_zyx: spacing,
    })
}
