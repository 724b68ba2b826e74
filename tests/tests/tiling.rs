//! Sliding-window inference through tract on tiny random-weight models:
//! exact overlap-tiling equals one whole-volume pass; Gaussian blending
//! equals a direct, loop-by-loop reference.

use edge_seg_export::{onnx_bytes, Checkpoint, WeightFormat};
use edge_seg_models::spec::{ChannelPlan, Padding, Upsampling};
use edge_seg_models::ModelCard;
use edge_seg_runtime::backend::TractBackend;
use edge_seg_runtime::model::{Model, ModelSource};
use edge_seg_runtime::tiling::{extract_input, TilePlan, TilePos, Tiling};
use edge_seg_tests::models::{max_abs_diff, tiny_card, tiny_spec};
use ndarray::{s, Array3, Array4};

fn tiny(padding: Padding, levels: usize) -> (ModelCard, Model) {
    let spec = tiny_spec(levels, 2, ChannelPlan::Doubling, padding, Upsampling::Nearest, 3);
    let card = tiny_card(spec, &["background", "a", "b"], 2.0, 1);
    let (bytes, card) = onnx_bytes(&Checkpoint::random(card, 42), WeightFormat::F32);
    let model = Model::from_bytes(&bytes, ModelSource::Builtin("test"), None).unwrap();
    (card, model)
}

fn volume(shape: (usize, usize, usize)) -> Array3<f32> {
    Array3::from_shape_fn(shape, |(z, y, x)| {
        ((z as f32 * 0.3).sin() + (y as f32 * 0.17).cos() * (x as f32 * 0.11).sin()) * 0.8
    })
}

/// Run `f` on a pool of three threads, so tiles really overlap in time.
fn in_three_threads<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn exact_tiling_equals_one_whole_volume_pass() {
    let (card, model) = tiny(Padding::Valid, 3);
    let spec = &card.network;
    let backend = TractBackend::new(&model.proto, 3);
    let vol = volume((61, 47, 38));
    let tile = [spec.smallest_input() + spec.pool_factor(); 3]; // 44 + 4 → output 8
    let plan = TilePlan::new(spec, [61, 47, 38], tile, 0.5).unwrap();
    assert!(
        plan.tiles.len() >= 3 * 3 * 3,
        "several tiles per axis: {}",
        plan.tiles.len()
    );
    let pad = -1.0;
    let tiled = Tiling::new(vol.view(), &plan, pad)
        .volume_scores(|t| backend.run(t))
        .unwrap();
    let concurrent = in_three_threads(|| {
        Tiling {
            parallel: true,
            ..Tiling::new(vol.view(), &plan, pad)
        }
        .volume_scores(|t| backend.run(t))
        .unwrap()
    });
    assert!(concurrent == tiled, "tiles run concurrently gave different scores");
    // One pass over the whole volume padded by the margin, with a legal size.
    let m = spec.margin() / 2;
    let whole_in = [61, 47, 38].map(|n: usize| (n + 2 * m..).find(|&s| spec.is_legal_input(s)).unwrap());
    let whole = TilePos {
        input_start: [-(m as i64); 3],
        output_start: [0; 3],
        keep_start: [0; 3],
        keep_end: [61, 47, 38],
    };
    let input = extract_input(vol.view(), &whole, whole_in, pad);
    let scores = backend.run(&input).unwrap();
    let reference = scores.slice(s![.., ..61, ..47, ..38]);
    let diff = max_abs_diff(&tiled, reference.iter());
    assert!(diff <= 1e-5, "tiled vs whole differ by {diff}");
    // Stepping by the output size (44 is not a multiple of 4 here: use a
    // step that breaks the pooling grid) would not be exact: check that the
    // plan's steps are multiples of the pooling factor.
    for t in &plan.tiles {
        assert!(t.output_start.iter().all(|&v| v % spec.pool_factor() as i64 == 0));
    }
}

#[test]
fn misaligned_tiles_would_differ() {
    // The reason for the pooling-grid step: a tile shifted by one voxel
    // gives different scores for the same voxels.
    let (card, model) = tiny(Padding::Valid, 3);
    let spec = &card.network;
    let backend = TractBackend::new(&model.proto, 3);
    let vol = volume((60, 60, 60));
    let tile = [spec.smallest_input() + spec.pool_factor(); 3];
    let m = (spec.margin() / 2) as i64;
    let at = |start: i64| {
        let pos = TilePos {
            input_start: [start - m; 3],
            output_start: [start; 3],
            keep_start: [0; 3],
            keep_end: [0; 3],
        };
        backend.run(&extract_input(vol.view(), &pos, tile, -1.0)).unwrap()
    };
    let a = at(8);
    let b = at(9); // voxel 9.. in b is voxel 1.. in a
    let out = a.dim().1;
    let d = max_abs_diff(
        a.slice(s![.., 1..out, 1..out, 1..out]),
        b.slice(s![.., ..out - 1, ..out - 1, ..out - 1]),
    );
    assert!(d > 1e-4, "off-grid tiles should differ, max diff {d}");
}

/// Straightforward blending: every tile's scores times its Gaussian weights,
/// summed over tiles, divided by the summed weights.
fn reference_blend(
    vol: &Array3<f32>,
    plan: &TilePlan,
    pad: f32,
    run: impl Fn(&Array3<f32>) -> Array4<f32>,
) -> Array4<f32> {
    let (z, y, x) = vol.dim();
    let t = plan.input;
    let sigma = [0, 1, 2].map(|d| t[d] as f64 / 8.0);
    let mut w = Array3::<f64>::zeros((t[0], t[1], t[2]));
    for ((a, b, c), v) in w.indexed_iter_mut() {
        let g = |i: usize, d: usize| {
            let centre = (t[d] as f64 - 1.0) / 2.0;
            (-(i as f64 - centre).powi(2) / (2.0 * sigma[d] * sigma[d])).exp()
        };
        *v = g(a, 0) * g(b, 1) * g(c, 2);
    }
    let max = w.iter().cloned().fold(0.0, f64::max);
    w.mapv_inplace(|v| v / max);
    let mut acc: Option<Array4<f64>> = None;
    let mut wsum = Array3::<f64>::zeros((z, y, x));
    for tile in &plan.tiles {
        let scores = run(&extract_input(vol.view(), tile, t, pad));
        let a = acc.get_or_insert_with(|| Array4::zeros((scores.dim().0, z, y, x)));
        for c in 0..scores.dim().0 {
            for i in 0..t[0] {
                for j in 0..t[1] {
                    for k in 0..t[2] {
                        let (vz, vy, vx) = (
                            tile.output_start[0] as usize + i,
                            tile.output_start[1] as usize + j,
                            tile.output_start[2] as usize + k,
                        );
                        if vz < z && vy < y && vx < x {
                            a[[c, vz, vy, vx]] += scores[[c, i, j, k]] as f64 * w[[i, j, k]];
                            if c == 0 {
                                wsum[[vz, vy, vx]] += w[[i, j, k]];
                            }
                        }
                    }
                }
            }
        }
    }
    let mut a = acc.unwrap();
    for mut ch in a.outer_iter_mut() {
        ch.zip_mut_with(&wsum, |v, &w| *v /= w);
    }
    a.mapv(|v| v as f32)
}

#[test]
fn gaussian_blending_equals_a_direct_reference() {
    let (card, model) = tiny(Padding::Same, 2);
    let backend = TractBackend::new(&model.proto, 3);
    let vol = volume((37, 29, 20));
    let plan = TilePlan::new(&card.network, [37, 29, 20], [16, 16, 16], 0.5).unwrap();
    assert!(plan.blended && plan.tiles.len() > 8);
    let ours = Tiling::new(vol.view(), &plan, 0.0)
        .volume_scores(|t| backend.run(t))
        .unwrap();
    // Tiles run concurrently are still added in tile order: the same bits.
    let concurrent = in_three_threads(|| {
        Tiling {
            parallel: true,
            ..Tiling::new(vol.view(), &plan, 0.0)
        }
        .volume_scores(|t| backend.run(t))
        .unwrap()
    });
    assert!(concurrent == ours, "tiles blended concurrently gave different scores");
    let reference = reference_blend(&vol, &plan, 0.0, |t| backend.run(t).unwrap());
    let diff = max_abs_diff(&ours, &reference);
    assert!(diff <= 1e-5, "blended vs reference differ by {diff}");
}

#[test]
fn tract_backend_softmax_equals_the_graphs_own() {
    // The backend cuts the graph's final Softmax and applies its own: the
    // probabilities must match tract running the whole graph.
    use tract_onnx::prelude::*;
    let (_, model) = tiny(Padding::Same, 2);
    let input = volume((16, 24, 20));
    let backend = TractBackend::new(&model.proto, 3);
    assert!(backend.computes_softmax(), "the exported graph's Softmax should be cut");
    let ours = backend.run(&input).unwrap();
    let whole = tract_onnx::onnx()
        .model_for_proto_model(&model.proto)
        .unwrap()
        .with_input_fact(0, f32::fact([1, 1, 16, 24, 20]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let t = tract_ndarray::Array5::from_shape_vec((1, 1, 16, 24, 20), input.iter().copied().collect()).unwrap();
    let out = whole.run(tvec!(Tensor::from(t).into())).unwrap();
    let want = out[0].to_plain_array_view::<f32>().unwrap();
    assert_eq!(want.shape(), &[1, 3, 16, 24, 20]);
    assert_eq!(ours.dim(), (3, 16, 24, 20));
    let diff = max_abs_diff(&ours, want.iter());
    assert!(diff <= 1e-6, "backend vs whole graph differ by {diff}");
    // They are probabilities, not logits.
    for lane in ours.lanes(ndarray::Axis(0)) {
        assert!((lane.sum() - 1.0).abs() < 1e-5);
    }
}
