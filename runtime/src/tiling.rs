//! Sliding-window inference over a volume on the model grid.
//!
//! - **Exact overlap-tile** (valid convolutions): tile `t` along an axis
//!   reads input from `t·S − m` (the volume padded by the margin `m`) and
//!   produces output for `[t·S, t·S + O)`; the step `S` is the largest
//!   multiple of the pooling factor not above the output size `O`, so every
//!   tile's pooling grid lines up with the whole volume's, and each output
//!   voxel is kept from exactly one tile. The result equals one forward pass
//!   over the whole padded volume. Each tile is decoded to labels at once,
//!   or, with [`Tiling::labels_of_label_tiles`], comes back from the backend as labels.
//! - **Gaussian-blended** (same padding): tiles placed as nnU-Net places
//!   them, scores weighted by a Gaussian importance map (σ = tile/8) and
//!   accumulated over a moving z-slab of tiles; each slab is decoded as
//!   soon as no later tile touches it.

use edge_seg_models::card::Decode;
use edge_seg_models::spec::{NetworkSpec, Padding};
use ndarray::{s, Array3, Array4, ArrayView3, ArrayView4};
use rayon::prelude::*;

use crate::scores::decode;

/// Where one tile reads and what it keeps, in model-grid voxels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TilePos {
    /// Start of the tile's input window (may be negative: padding).
    pub input_start: [i64; 3],
    /// Start of the tile's output window in the volume.
    pub output_start: [i64; 3],
    /// The part of the output kept: volume region `[keep_start, keep_end)`.
    pub keep_start: [usize; 3],
    pub keep_end: [usize; 3],
}

/// How tiles cover a volume.
#[derive(Clone, Debug, PartialEq)]
pub struct TilePlan {
    pub volume: [usize; 3],
    pub input: [usize; 3],
    pub output: [usize; 3],
    pub blended: bool,
    pub tiles: Vec<TilePos>,
}

/// Where a piece of a result lands in the volume: whole z-rows from `z0`
/// (a finished slab of blended tiles), or the kept box of an exact tile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Region {
    Rows(usize),
    Kept([std::ops::Range<usize>; 3]),
}

impl Region {
    fn of_tile(tile: &TilePos) -> Region {
        Region::Kept([0, 1, 2].map(|d| tile.keep_start[d]..tile.keep_end[d]))
    }

    /// The region in a `[z, y, x]` array, for a piece of `rows` z-rows.
    pub fn in3<'a, A>(&self, a: &'a mut Array3<A>, rows: usize) -> ndarray::ArrayViewMut3<'a, A> {
        match self {
            Region::Rows(z0) => a.slice_mut(s![*z0..*z0 + rows, .., ..]),
            Region::Kept([z, y, x]) => a.slice_mut(s![z.clone(), y.clone(), x.clone()]),
        }
    }

    /// The region in a `[C, z, y, x]` array.
    pub fn in4<'a, A>(&self, a: &'a mut Array4<A>, rows: usize) -> ndarray::ArrayViewMut4<'a, A> {
        match self {
            Region::Rows(z0) => a.slice_mut(s![.., *z0..*z0 + rows, .., ..]),
            Region::Kept([z, y, x]) => a.slice_mut(s![.., z.clone(), y.clone(), x.clone()]),
        }
    }
}

/// A model output of spatial shape `got` where `expected` was planned.
fn check_output(got: [usize; 3], expected: [usize; 3]) -> Result<(), String> {
    if got != expected {
        return Err(format!("the model returned a {got:?} tile, expected {expected:?}"));
    }
    Ok(())
}

/// Starts of `count` tiles of size `tile` evenly spread over `[0, n − tile]`.
fn spread(n: usize, tile: usize, count: usize) -> Vec<i64> {
    if count <= 1 || n <= tile {
        return vec![0];
    }
    let span = (n - tile) as f64;
    (0..count)
        .map(|i| (span * i as f64 / (count - 1) as f64).round() as i64)
        .collect()
}

impl TilePlan {
    /// Refuse a volume of another shape than the plan's.
    fn check_volume(&self, volume: &ArrayView3<f32>) -> Result<(), String> {
        let d = volume.dim();
        if [d.0, d.1, d.2] != self.volume {
            return Err(format!("volume {d:?} does not match the plan's {:?}", self.volume));
        }
        Ok(())
    }

    /// Plan tiles of input size `input` for `spec` over a volume `[z, y, x]`.
    /// `overlap` is used for same-padded (blended) networks only.
    pub fn new(spec: &NetworkSpec, volume: [usize; 3], input: [usize; 3], overlap: f64) -> Result<TilePlan, String> {
        let output = spec.output_shape(input).map_err(|e| e.to_string())?;
        match spec.padding {
            Padding::Valid => Ok(Self::exact(spec, volume, input, output)),
            Padding::Same => {
                if !(0.0..1.0).contains(&overlap) {
                    return Err(format!("overlap {overlap} must be in [0, 1)"));
                }
                Ok(Self::blended(volume, input, overlap))
            }
        }
    }

    fn exact(spec: &NetworkSpec, volume: [usize; 3], input: [usize; 3], output: [usize; 3]) -> TilePlan {
        let step = output.map(|o| spec.tile_step(o));
        let margin = [0, 1, 2].map(|d| (input[d] - output[d]) / 2);
        let counts = [0, 1, 2].map(|d| volume[d].div_ceil(step[d]).max(1));
        let mut tiles = Vec::new();
        for tz in 0..counts[0] {
            for ty in 0..counts[1] {
                for tx in 0..counts[2] {
                    let t = [tz, ty, tx];
                    let out_start = [0, 1, 2].map(|d| (t[d] * step[d]) as i64);
                    let keep_end = [0, 1, 2].map(|d| {
                        if t[d] + 1 == counts[d] {
                            volume[d]
                        } else {
                            (t[d] + 1) * step[d]
                        }
                    });
                    tiles.push(TilePos {
                        input_start: [0, 1, 2].map(|d| out_start[d] - margin[d] as i64),
                        output_start: out_start,
                        keep_start: [0, 1, 2].map(|d| t[d] * step[d]),
                        keep_end,
                    });
                }
            }
        }
        TilePlan {
            volume,
            input,
            output,
            blended: false,
            tiles,
        }
    }

    fn blended(volume: [usize; 3], tile: [usize; 3], overlap: f64) -> TilePlan {
        let counts = [0, 1, 2].map(|d| {
            if volume[d] <= tile[d] {
                1
            } else {
                ((volume[d] - tile[d]) as f64 / (tile[d] as f64 * (1.0 - overlap))).ceil() as usize + 1
            }
        });
        let starts: Vec<Vec<i64>> = (0..3).map(|d| spread(volume[d], tile[d], counts[d])).collect();
        let mut tiles = Vec::new();
        for &z in &starts[0] {
            for &y in &starts[1] {
                for &x in &starts[2] {
                    let start = [z, y, x];
                    tiles.push(TilePos {
                        input_start: start,
                        output_start: start,
                        keep_start: [0, 1, 2].map(|d| start[d] as usize),
                        keep_end: [0, 1, 2].map(|d| (start[d] as usize + tile[d]).min(volume[d])),
                    });
                }
            }
        }
        TilePlan {
            volume,
            input: tile,
            output: tile,
            blended: true,
            tiles,
        }
    }
}

/// The input window of `tile`, padded with `pad` outside the volume.
pub fn extract_input(volume: ArrayView3<f32>, tile: &TilePos, size: [usize; 3], pad: f32) -> Array3<f32> {
    let dims = volume.dim();
    let n = [dims.0 as i64, dims.1 as i64, dims.2 as i64];
    let mut out = Array3::from_elem((size[0], size[1], size[2]), pad);
    // Overlap of the window with the volume.
    let lo = [0, 1, 2].map(|d| tile.input_start[d].max(0));
    let hi = [0, 1, 2].map(|d| (tile.input_start[d] + size[d] as i64).min(n[d]));
    if (0..3).any(|d| lo[d] >= hi[d]) {
        return out;
    }
    let (lo, hi) = (lo.map(|v| v as usize), hi.map(|v| v as usize));
    let src = volume.slice(s![lo[0]..hi[0], lo[1]..hi[1], lo[2]..hi[2]]);
    let o = [0, 1, 2].map(|d| (lo[d] as i64 - tile.input_start[d]) as usize);
    out.slice_mut(s![
        o[0]..o[0] + (hi[0] - lo[0]),
        o[1]..o[1] + (hi[1] - lo[1]),
        o[2]..o[2] + (hi[2] - lo[2])
    ])
    .assign(&src);
    out
}

/// Gaussian importance map for a tile (σ = size/8 per axis, peak 1,
/// smallest value clamped to the smallest positive one, as nnU-Net does).
pub fn gaussian_map(size: [usize; 3]) -> Array3<f32> {
    let g: Vec<Vec<f64>> = size
        .iter()
        .map(|&n| {
            let sigma = n as f64 / 8.0;
            let c = (n as f64 - 1.0) / 2.0;
            (0..n)
                .map(|i| (-((i as f64 - c).powi(2)) / (2.0 * sigma * sigma)).exp())
                .collect()
        })
        .collect();
    let mut m = Array3::from_shape_fn((size[0], size[1], size[2]), |(z, y, x)| {
        (g[0][z] * g[1][y] * g[2][x]) as f32
    });
    let max = m.iter().cloned().fold(0.0f32, f32::max);
    m.mapv_inplace(|v| v / max);
    let min_pos = m.iter().cloned().filter(|v| *v > 0.0).fold(f32::INFINITY, f32::min);
    m.mapv_inplace(|v| if v == 0.0 { min_pos } else { v });
    m
}

/// One sliding-window pass: the volume (model grid, `[z, y, x]`), its tile
/// plan, the value outside the volume, whether tiles run concurrently (as
/// many at a time as rayon has threads; results are still combined in tile
/// order, so they do not change), and a callback after each tile.
#[derive(Clone, Copy)]
pub struct Tiling<'a> {
    pub volume: ArrayView3<'a, f32>,
    pub plan: &'a TilePlan,
    pub pad: f32,
    pub parallel: bool,
    pub progress: &'a (dyn Fn() + Sync),
}

fn no_progress() {}

impl<'a> Tiling<'a> {
    /// Tiles one at a time, no progress callback.
    pub fn new(volume: ArrayView3<'a, f32>, plan: &'a TilePlan, pad: f32) -> Tiling<'a> {
        Tiling {
            volume,
            plan,
            pad,
            parallel: false,
            progress: &no_progress,
        }
    }
}

/// A forward pass: input window `[z, y, x]` → scores `[C, z', y', x']`.
pub type TileResult = Result<Array4<f32>, String>;

impl Tiling<'_> {
    /// Exactly tiled inference: calls `sink(tile, scores)` with the kept part
    /// of every tile's scores (`[C, z, y, x]` over `[keep_start, keep_end)`).
    /// `parallel` runs tiles concurrently; sinks are called in tile order.
    pub fn exact_tiles<F>(&self, forward: F, sink: impl FnMut(&TilePos, Array4<f32>) + Send) -> Result<(), String>
    where
        F: Fn(&Array3<f32>) -> TileResult + Sync,
    {
        let Tiling { plan, .. } = *self;
        let keep = |scores: Array4<f32>, k0: [usize; 3], k1: [usize; 3]| {
            let (_, z, y, x) = scores.dim();
            check_output([z, y, x], plan.output)?;
            Ok(scores
                .slice(s![.., k0[0]..k1[0], k0[1]..k1[1], k0[2]..k1[2]])
                .to_owned())
        };
        self.each_exact_tile(forward, keep, sink)
    }
}

impl Tiling<'_> {
    /// The loop of exactly tiled inference over any per-tile result: `forward`
    /// runs a tile, `keep(result, k0, k1)` cuts out the kept output region
    /// `[k0, k1)` (tile coordinates), and `sink` receives it in tile order.
    #[allow(clippy::too_many_arguments)]
    fn each_exact_tile<T, F, K>(&self, forward: F, keep: K, sink: impl FnMut(&TilePos, T) + Send) -> Result<(), String>
    where
        T: Send,
        F: Fn(&Array3<f32>) -> Result<T, String> + Sync,
        K: Fn(T, [usize; 3], [usize; 3]) -> Result<T, String> + Sync,
    {
        let Tiling {
            volume,
            plan,
            pad,
            parallel,
            progress,
        } = *self;
        let run_tile = |tile: &TilePos| -> Result<T, String> {
            let input = extract_input(volume, tile, plan.input, pad);
            let result = forward(&input)?;
            let k0 = [0, 1, 2].map(|d| tile.keep_start[d] - tile.output_start[d] as usize);
            let k1 = [0, 1, 2].map(|d| tile.keep_end[d] - tile.output_start[d] as usize);
            let kept = keep(result, k0, k1)?;
            progress();
            Ok(kept)
        };
        in_tile_order(&plan.tiles, parallel, run_tile, sink)
    }
}

/// Run `run` on each of `tiles` and hand the results to `sink` in tile
/// order. `parallel` runs as many tiles at once as rayon has threads, one
/// chunk in flight at a time, so memory stays bounded.
fn in_tile_order<I: Sync, T: Send>(
    tiles: &[I],
    parallel: bool,
    run: impl Fn(&I) -> Result<T, String> + Sync,
    mut sink: impl FnMut(&I, T),
) -> Result<(), String> {
    if parallel {
        for chunk in tiles.chunks(rayon::current_num_threads().max(1)) {
            let results: Vec<Result<T, String>> = chunk.par_iter().map(&run).collect();
            for (tile, r) in chunk.iter().zip(results) {
                sink(tile, r?);
            }
        }
    } else {
        for tile in tiles {
            sink(tile, run(tile)?);
        }
    }
    Ok(())
}

impl Tiling<'_> {
    /// Exactly tiled segmentation with a forward pass that returns labels
    /// (`[z', y', x']`, e.g. an argmax computed where the scores are), so no
    /// tile's scores reach the host. Only for exact (valid-convolution) plans.
    pub fn labels_of_label_tiles<F>(&self, forward: F) -> Result<Array3<u16>, String>
    where
        F: Fn(&Array3<f32>) -> Result<Array3<u16>, String> + Sync,
    {
        let Tiling { volume, plan, .. } = *self;
        if plan.blended {
            return Err("labels-only inference needs an exactly tiled (valid-convolution) plan".into());
        }
        plan.check_volume(&volume)?;
        let keep = |labels: Array3<u16>, k0: [usize; 3], k1: [usize; 3]| {
            let (z, y, x) = labels.dim();
            check_output([z, y, x], plan.output)?;
            Ok(labels.slice(s![k0[0]..k1[0], k0[1]..k1[1], k0[2]..k1[2]]).to_owned())
        };
        let mut out = Array3::<u16>::zeros(volume.dim());
        self.each_exact_tile(forward, keep, |tile, labels| {
            Region::of_tile(tile).in3(&mut out, 0).assign(&labels);
        })?;
        Ok(out)
    }
}

impl Tiling<'_> {
    /// Run `forward` over every tile of `plan` and return the label map.
    /// Exact tiles are decoded as they come; blended tiles slab by slab.
    /// `parallel` runs tiles concurrently (blended: those of one z-group).
    /// `progress` is called after each tile.
    pub fn labels<F>(&self, rule: Decode, forward: F) -> Result<Array3<u16>, String>
    where
        F: Fn(&Array3<f32>) -> TileResult + Sync,
    {
        let Tiling { volume, plan, .. } = *self;
        plan.check_volume(&volume)?;
        let mut out = Array3::<u16>::zeros(volume.dim());
        self.scores_by_region(forward, |region, scores| {
            let rows = scores.dim().1;
            region.in3(&mut out, rows).assign(&decode(scores.view(), rule));
        })?;
        Ok(out)
    }
}

impl Tiling<'_> {
    /// Full-volume scores `[C, z, y, x]`: what inference holds when the
    /// scores, not labels, are resampled onto the scan's grid.
    /// Tiles as in [`Self::labels`].
    pub fn volume_scores<F>(&self, forward: F) -> Result<Array4<f32>, String>
    where
        F: Fn(&Array3<f32>) -> TileResult + Sync,
    {
        let Tiling { volume, .. } = *self;
        let (z, y, x) = volume.dim();
        let mut out: Option<Array4<f32>> = None;
        self.scores_by_region(forward, |region, scores| {
            let (c, rows) = (scores.dim().0, scores.dim().1);
            let o = out.get_or_insert_with(|| Array4::<f32>::zeros((c, z, y, x)));
            region.in4(o, rows).assign(&scores);
        })?;
        out.ok_or_else(|| "no tiles".to_string())
    }
}

impl Tiling<'_> {
    /// Final scores `[C, z, y, x]` piece by piece, each with the region it
    /// covers: slabs of blended tiles ([`Self::blend_slabs`]) or the kept part
    /// of exact tiles ([`Self::exact_tiles`]), as the plan says.
    fn scores_by_region<F>(&self, forward: F, mut sink: impl FnMut(&Region, Array4<f32>) + Send) -> Result<(), String>
    where
        F: Fn(&Array3<f32>) -> TileResult + Sync,
    {
        if self.plan.blended {
            self.blend_slabs(forward, |z0, scores| sink(&Region::Rows(z0), scores))
        } else {
            self.exact_tiles(forward, |tile, scores| sink(&Region::of_tile(tile), scores))
        }
    }
}

/// Accumulated, weighted scores over the rows `[lo, lo + rows)` of the
/// volume that unfinished tiles can still touch.
struct Slab {
    lo: usize,
    acc: Array4<f32>,
    weight: Array3<f32>,
}

impl Slab {
    fn new(classes: usize, lo: usize, ny: usize, nx: usize) -> Slab {
        Slab {
            lo,
            acc: Array4::zeros((classes, 0, ny, nx)),
            weight: Array3::zeros((0, ny, nx)),
        }
    }

    /// Make the slab reach row `hi` (exclusive).
    fn reach(&mut self, hi: usize) {
        let (c, rows, ny, nx) = self.acc.dim();
        let need = hi.saturating_sub(self.lo);
        if need <= rows {
            return;
        }
        let mut acc = Array4::zeros((c, need, ny, nx));
        acc.slice_mut(s![.., ..rows, .., ..]).assign(&self.acc);
        let mut weight = Array3::zeros((need, ny, nx));
        weight.slice_mut(s![..rows, .., ..]).assign(&self.weight);
        self.acc = acc;
        self.weight = weight;
    }

    /// Add a tile's scores (`[C, z, y, x]`, already cut to the volume) at `start`.
    fn add(&mut self, scores: ArrayView4<f32>, weights: ArrayView3<f32>, start: [usize; 3]) {
        let (_, ez, ey, ex) = scores.dim();
        let z = start[0] - self.lo;
        let (y, x) = (start[1], start[2]);
        for (ch, src) in scores.outer_iter().enumerate() {
            let mut dst = self.acc.slice_mut(s![ch, z..z + ez, y..y + ey, x..x + ex]);
            ndarray::Zip::from(&mut dst)
                .and(&src)
                .and(&weights)
                .for_each(|d, &s, &w| *d += s * w);
        }
        let mut dw = self.weight.slice_mut(s![z..z + ez, y..y + ey, x..x + ex]);
        dw += &weights;
    }

    /// Remove and return the normalised scores of rows `[lo, until)`.
    fn take_until(&mut self, until: usize) -> Array4<f32> {
        let n = until - self.lo;
        let mut out = self.acc.slice(s![.., ..n, .., ..]).to_owned();
        let w = self.weight.slice(s![..n, .., ..]);
        for mut ch in out.outer_iter_mut() {
            ndarray::Zip::from(&mut ch)
                .and(&w)
                .for_each(|v, &w| *v = if w > 0.0 { *v / w } else { 0.0 });
        }
        self.acc = self.acc.slice(s![.., n.., .., ..]).to_owned();
        self.weight = self.weight.slice(s![n.., .., ..]).to_owned();
        self.lo = until;
        out
    }
}

impl Tiling<'_> {
    /// Gaussian-blended sliding window: calls `sink(z0, scores)` with the
    /// final, normalised scores of consecutive z-slabs `[z0, z0 + rows)`.
    /// `parallel` runs the tiles of each z-group concurrently, as many at a time
    /// as rayon has threads; they are still added in tile order, so the result
    /// is the same bit for bit.
    pub fn blend_slabs<F>(&self, forward: F, mut sink: impl FnMut(usize, Array4<f32>)) -> Result<(), String>
    where
        F: Fn(&Array3<f32>) -> TileResult + Sync,
    {
        let Tiling {
            volume,
            plan,
            pad,
            parallel,
            progress,
        } = *self;
        let (nz, ny, nx) = volume.dim();
        let weights = gaussian_map(plan.input);
        let mut z_starts: Vec<usize> = plan.tiles.iter().map(|t| t.output_start[0] as usize).collect();
        z_starts.dedup();
        let run_tile = |tile: &TilePos| -> TileResult {
            let scores = forward(&extract_input(volume, tile, plan.input, pad))?;
            let (_, z, y, x) = scores.dim();
            check_output([z, y, x], plan.output)?;
            progress();
            Ok(scores)
        };
        let mut slab: Option<Slab> = None;
        for (zi, &z0) in z_starts.iter().enumerate() {
            let group: Vec<&TilePos> = plan.tiles.iter().filter(|t| t.output_start[0] as usize == z0).collect();
            let add = |tile: &&TilePos, scores: Array4<f32>| {
                let sl = slab.get_or_insert_with(|| Slab::new(scores.dim().0, 0, ny, nx));
                sl.reach(tile.keep_end[0]);
                let start = [0, 1, 2].map(|d| tile.output_start[d] as usize);
                let ext = [0, 1, 2].map(|d| tile.keep_end[d] - start[d]);
                sl.add(
                    scores.slice(s![.., ..ext[0], ..ext[1], ..ext[2]]),
                    weights.slice(s![..ext[0], ..ext[1], ..ext[2]]),
                    start,
                );
            };
            in_tile_order(&group, parallel, |tile| run_tile(tile), add)?;
            // Rows below the next group's start are final.
            let done_to = z_starts.get(zi + 1).copied().unwrap_or(nz);
            if let Some(sl) = slab.as_mut() {
                if done_to > sl.lo {
                    let lo = sl.lo;
                    sink(lo, sl.take_until(done_to));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge_seg_models::spec::NetworkSpec;

    fn valid_spec() -> NetworkSpec {
        NetworkSpec {
            levels: 3,
            base_filters: 2,
            ..NetworkSpec::paper(3)
        }
    }

    #[test]
    fn exact_tiles_cover_each_voxel_once_on_the_pooling_grid() {
        let spec = valid_spec();
        let input = 68; // 3 levels: 68 → 28
        assert_eq!(spec.output_size(input), Some(28));
        let plan = TilePlan::new(&spec, [50, 61, 23], [input; 3], 0.5).unwrap();
        let mut count = Array3::<u8>::zeros((50, 61, 23));
        for t in &plan.tiles {
            for d in 0..3 {
                assert_eq!(t.output_start[d] % 4, 0, "tiles start on the pooling grid");
                assert_eq!(t.output_start[d] - t.input_start[d], 20);
            }
            count
                .slice_mut(s![
                    t.keep_start[0]..t.keep_end[0],
                    t.keep_start[1]..t.keep_end[1],
                    t.keep_start[2]..t.keep_end[2]
                ])
                .mapv_inplace(|v| v + 1);
        }
        assert!(count.iter().all(|&c| c == 1));
        // step 28 (multiple of 4): 50 → 2 tiles, 61 → 3, 23 → 1
        assert_eq!(plan.tiles.len(), 2 * 3 * 1);
    }

    #[test]
    fn blended_starts_follow_nnunet() {
        let spec = NetworkSpec {
            padding: Padding::Same,
            ..valid_spec()
        };
        let plan = TilePlan::new(&spec, [100, 64, 40], [32, 32, 32], 0.5).unwrap();
        // ceil((100-32)/16)+1 = 6 starts along z, 64: ceil(32/16)+1 = 3, 40: ceil(8/16)+1 = 2
        assert_eq!(plan.tiles.len(), 6 * 3 * 2);
        let zs: Vec<i64> = {
            let mut v: Vec<i64> = plan.tiles.iter().map(|t| t.output_start[0]).collect();
            v.dedup();
            v
        };
        assert_eq!(zs, vec![0, 14, 27, 41, 54, 68]);
    }

    #[test]
    fn gaussian_map_peaks_in_the_middle() {
        let g = gaussian_map([16, 16, 16]);
        assert!((g[[7, 7, 7]] - g[[8, 8, 8]]).abs() < 1e-6);
        assert!(g[[0, 0, 0]] > 0.0 && g[[0, 0, 0]] < 0.01);
        assert!(g.iter().all(|v| *v <= 1.0));
    }

    #[test]
    fn constant_predictor_blends_to_constant() {
        let spec = NetworkSpec {
            padding: Padding::Same,
            ..valid_spec()
        };
        let vol = Array3::<f32>::zeros((45, 37, 20));
        let plan = TilePlan::new(&spec, [45, 37, 20], [16, 16, 16], 0.5).unwrap();
        // Class 2 always wins with a constant score.
        let labels = Tiling::new(vol.view(), &plan, 0.0)
            .labels(Decode::Argmax, |x: &Array3<f32>| {
                let (z, y, xx) = x.dim();
                let mut s = Array4::<f32>::zeros((3, z, y, xx));
                s.slice_mut(s![2, .., .., ..]).fill(0.7);
                s.slice_mut(s![0, .., .., ..]).fill(0.2);
                Ok(s)
            })
            .unwrap();
        assert!(labels.iter().all(|&l| l == 2));
    }
}
