//! `edge-seg bench`: tiles per second and voxels per second of a model on a
//! backend, with random input.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use ndarray::Array3;

use edge_seg_runtime::backend::tract::{conv3, Rewrites};
use edge_seg_runtime::backend::TractBackend;

use super::model_args::ModelArgs;

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Timed tiles (after one warm-up tile).
    #[arg(long, default_value_t = 3)]
    pub tiles: usize,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// tract: run the decoder's upsampling as exported (nearest Resize,
    /// Concat, Conv) instead of the equivalent parity convolution edge-seg
    /// rewrites it to, to measure what the rewrite gains.
    #[arg(long)]
    pub exported_graph: bool,
    /// tract: run every convolution on tract's own kernels, not edge-seg's
    /// 3×3×3 kernel, to measure what it gains.
    #[arg(long, conflicts_with = "conv_kernel")]
    pub tract_convs: bool,
    /// tract: edge-seg's 3×3×3 kernel to use, `avx512` or `avx2` (default:
    /// the best this CPU runs).
    #[arg(long)]
    pub conv_kernel: Option<String>,
}

pub fn run(a: &BenchArgs) -> Result<ExitCode> {
    let mut loaded = a.model.load()?;
    let edge = {
        let spec = &loaded.model.card.network;
        let edge = a.model.tile.unwrap_or(loaded.model.card.tile.input[0]);
        *spec.legal_input_sizes(edge.max(spec.smallest_input())).last().unwrap()
    };
    let tile = [edge; 3];
    let mut upsample_rewrites = None;
    let mut convs_name = None;
    if loaded.backend.name() == "tract" {
        let convs = match a.conv_kernel.as_deref() {
            _ if a.tract_convs => None,
            None => conv3::best(),
            Some(name) => {
                let kind = conv3::Kind::from_name(name)
                    .with_context(|| format!("unknown --conv-kernel {name:?}: use avx512 or avx2"))?;
                if !kind.runs_here() {
                    bail!("--conv-kernel {name}: this CPU does not run it");
                }
                Some(kind)
            }
        };
        convs_name = convs.map(|k| k.name());
        let rewrites = Rewrites {
            upsample: !a.exported_graph,
            convs,
        };
        let tract = TractBackend::with_rewrites(&loaded.model.proto, loaded.model.card.classes(), rewrites);
        // Planned (and so rewritten) for this tile now, so the counts are known.
        tract.plan(tile).map_err(anyhow::Error::msg)?;
        upsample_rewrites = Some((tract.upsample_rewrites(), tract.own_convs()));
        loaded.backend = Box::new(tract);
    } else if a.exported_graph || a.tract_convs || a.conv_kernel.is_some() {
        bail!("--exported-graph, --tract-convs and --conv-kernel apply to the tract backend");
    }
    let spec = &loaded.model.card.network;
    let out = spec.output_shape(tile)?;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let input = Array3::from_shape_fn((edge, edge, edge), |_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    });
    let t0 = Instant::now();
    loaded.backend.run(&input).map_err(anyhow::Error::msg)?;
    let warmup = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    for _ in 0..a.tiles.max(1) {
        loaded.backend.run(&input).map_err(anyhow::Error::msg)?;
    }
    let per_tile = t1.elapsed().as_secs_f64() / a.tiles.max(1) as f64;
    let out_vox = out.iter().product::<usize>() as f64;
    let gflop = spec.forward_flops(tile)? / 1e9;
    let threads = a
        .model
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "model": loaded.model.source.to_string(), "backend": loaded.backend.name(), "threads": threads,
                "tile": tile, "output": out, "gflop_per_tile": gflop, "seconds_per_tile": per_tile,
                "first_tile_seconds": warmup, "tiles_per_second": 1.0 / per_tile,
                "output_voxels_per_second": out_vox / per_tile, "gflops": gflop / per_tile,
                "upsample_rewrites": upsample_rewrites.map(|r| r.0),
                "own_convs": upsample_rewrites.map(|r| r.1),
                "conv_kernel": upsample_rewrites.filter(|r| r.1 > 0).and(convs_name),
            })
        );
    } else {
        println!("model:        {} — {}", loaded.model.source, loaded.model.describe());
        let name = loaded.backend.name();
        if let Some((n, c)) = upsample_rewrites {
            println!(
                "backend:      {name} ({threads} threads, {n} upsampling steps as parity convolutions, \
                 {c} convolutions on edge-seg's {} kernel)",
                convs_name.unwrap_or("-")
            );
        } else {
            println!("backend:      {name}");
        }
        println!("tile:         {tile:?} → {out:?} ({gflop:.1} GFLOP)");
        println!("first tile:   {warmup:.3} s (includes plan optimisation)");
        println!("per tile:     {per_tile:.3} s over {} tiles", a.tiles.max(1));
        println!("tiles/s:      {:.3}", 1.0 / per_tile);
        println!("voxels/s:     {:.0} output voxels", out_vox / per_tile);
        println!("GFLOP/s:      {:.1}", gflop / per_tile);
    }
    Ok(ExitCode::SUCCESS)
}
