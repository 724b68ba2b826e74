//! The wgpu backend (on Mesa's lavapipe in CI, or any adapter) against CPU
//! references: every kernel on random inputs against tract, whole exported
//! tiny U-Nets against the tract backend (probabilities and labels, also
//! through the labels-only tiling path), tensors larger than one storage
//! binding, refusals of unsupported graphs, and `edge-seg infer --backend
//! wgpu` end to end.
//!
//! Without an adapter these tests print "skipping" and pass, except under
//! CI (`CI=true`), where they fail.

use edge_seg_export::{onnx_bytes, Checkpoint, WeightFormat};
use edge_seg_models::card::{Decode, Intensity, Modality};
use edge_seg_models::spec::{ChannelPlan, NetworkSpec, Norm, Padding, Upsampling};
use edge_seg_models::ModelCard;
use edge_seg_runtime::backend::graph::build::{attr_int, attr_ints, attr_str, f32_tensor, i64_tensor, model, node};
use edge_seg_runtime::backend::wgpu::device::adapter_infos;
use edge_seg_runtime::backend::{TileBackend, TractBackend, WgpuBackend, WgpuOptions};
use edge_seg_runtime::model::{Model, ModelSource};
use edge_seg_runtime::scores::decode;
use edge_seg_runtime::tiling::{TilePlan, Tiling};
use edge_seg_tests::{assert_clean_failure, in_ci, run, text};
use ndarray::{Array3, Array4, Array5};
use tract_onnx::pb::{ModelProto, NodeProto, TensorProto};
use tract_onnx::prelude::*;

/// Whether an adapter exists; under CI a missing one fails the test.
fn gpu_available() -> bool {
    if !adapter_infos().is_empty() {
        return true;
    }
    let msg = "no wgpu adapter found (on Linux, install Mesa's Vulkan drivers: mesa-vulkan-drivers)";
    if in_ci() {
        panic!("{msg}");
    }
    eprintln!("skipping: {msg}");
    false
}

/// Deterministic values in [-scale, scale).
fn noise(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 23) as f32 - 1.0) * scale
        })
        .collect()
}

fn random_input(c: usize, d: [usize; 3], seed: u64) -> Array4<f32> {
    Array4::from_shape_vec((c, d[0], d[1], d[2]), noise(c * d[0] * d[1] * d[2], seed, 1.0)).unwrap()
}

/// tract on `[C, D, H, W]` input, the CPU reference.
fn tract_run(proto: &ModelProto, input: &Array4<f32>) -> Array4<f32> {
    let (c, d, h, w) = input.dim();
    let plan = tract_onnx::onnx()
        .model_for_proto_model(proto)
        .and_then(|m| m.with_input_fact(0, f32::fact([1, c, d, h, w]).into()))
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .unwrap();
    let x = Array5::from_shape_vec((1, c, d, h, w), input.iter().copied().collect()).unwrap();
    let out = plan.run(tvec!(Tensor::from(x).into())).unwrap();
    let v = out[0].to_plain_array_view::<f32>().unwrap();
    let s = v.shape().to_vec();
    Array4::from_shape_vec((s[1], s[2], s[3], s[4]), v.iter().copied().collect()).unwrap()
}

fn max_diff(a: &Array4<f32>, b: &Array4<f32>) -> f32 {
    assert_eq!(a.dim(), b.dim(), "shapes differ");
    edge_seg_tests::models::max_abs_diff(a, b)
}

/// A Conv node with random weights scaled by 1/sqrt(fan-in), and its initializers.
fn conv(name: &str, x: &str, cin: usize, cout: usize, k: usize, pad: i64, bias: bool) -> (NodeProto, Vec<TensorProto>) {
    let w = format!("{name}.w");
    let b = format!("{name}.b");
    let n = cout * cin * k * k * k;
    let scale = 1.0 / ((cin * k * k * k) as f32).sqrt();
    let mut inputs = vec![x, w.as_str()];
    let mut inits = vec![f32_tensor(&w, &[cout, cin, k, k, k], &noise(n, n as u64, scale))];
    if bias {
        inputs.push(&b);
        inits.push(f32_tensor(&b, &[cout], &noise(cout, cout as u64 + 7, 0.5)));
    }
    let node = node(
        "Conv",
        name,
        &inputs,
        vec![attr_ints("kernel_shape", &[k as i64; 3]), attr_ints("pads", &[pad; 6])],
    );
    (node, inits)
}

fn relu(x: &str) -> NodeProto {
    node("Relu", &format!("{x}.relu"), &[x], vec![])
}

fn pool(name: &str, x: &str) -> NodeProto {
    node(
        "MaxPool",
        name,
        &[x],
        vec![attr_ints("kernel_shape", &[2; 3]), attr_ints("strides", &[2; 3])],
    )
}

fn resize(name: &str, x: &str) -> NodeProto {
    node(
        "Resize",
        name,
        &[x, "", "scales"],
        vec![
            attr_str("mode", "nearest"),
            attr_str("coordinate_transformation_mode", "asymmetric"),
            attr_str("nearest_mode", "floor"),
        ],
    )
}

fn scales() -> TensorProto {
    f32_tensor("scales", &[5], &[1.0, 1.0, 2.0, 2.0, 2.0])
}

/// Run a single-op (or few-op) graph on the GPU and on tract.
fn check_graph(what: &str, proto: &ModelProto, input: &Array4<f32>, options: &WgpuOptions) {
    let reference = tract_run(proto, input);
    let gpu = WgpuBackend::new(proto, reference.dim().0, options).unwrap_or_else(|e| panic!("{what}: {e}"));
    let ours = gpu.run_channels(input.view()).unwrap_or_else(|e| panic!("{what}: {e}"));
    let d = max_diff(&ours, &reference);
    assert!(d <= 1e-4, "{what}: max difference {d} against tract");
}

#[test]
fn each_kernel_matches_tract() {
    if !gpu_available() {
        return;
    }
    let opts = WgpuOptions::default();
    // Conv 3x3x3, valid and same padding, channel counts that are not
    // multiples of the kernel's blocks, with and without a fused ReLU.
    for (cin, cout, pad, with_relu) in [(5, 7, 0, true), (1, 3, 1, false), (20, 18, 1, true), (6, 33, 0, false)] {
        let (c, inits) = conv("c", "x", cin, cout, 3, pad, true);
        let (nodes, out) = if with_relu {
            (vec![c, relu("c")], "c.relu")
        } else {
            (vec![c], "c")
        };
        let proto = model(nodes, inits, "x", cin, out);
        let input = random_input(cin, [9, 10, 13], cin as u64);
        check_graph(&format!("conv {cin}->{cout} pad {pad}"), &proto, &input, &opts);
    }
    // The 1x1x1 head, without bias.
    let (c, inits) = conv("head", "x", 6, 3, 1, 0, false);
    check_graph(
        "head",
        &model(vec![c], inits, "x", 6, "head"),
        &random_input(6, [5, 6, 7], 2),
        &opts,
    );
    // MaxPool on odd sizes (floor), then a standalone Relu.
    let proto = model(vec![pool("p", "x"), relu("p")], vec![], "x", 3, "p.relu");
    check_graph("max pool + relu", &proto, &random_input(3, [9, 10, 11], 3), &opts);
    // Nearest 2x upsampling.
    let proto = model(vec![resize("up", "x")], vec![scales()], "x", 3, "up");
    check_graph("resize", &proto, &random_input(3, [4, 5, 6], 4), &opts);
    // Transposed convolution, kernel 2, stride 2.
    let up = node(
        "ConvTranspose",
        "t",
        &["x", "t.w", "t.b"],
        vec![attr_ints("kernel_shape", &[2; 3]), attr_ints("strides", &[2; 3])],
    );
    let inits = vec![
        f32_tensor("t.w", &[5, 6, 2, 2, 2], &noise(240, 5, 0.4)),
        f32_tensor("t.b", &[6], &noise(6, 6, 0.5)),
    ];
    check_graph(
        "conv transpose",
        &model(vec![up], inits, "x", 5, "t"),
        &random_input(5, [4, 5, 6], 5),
        &opts,
    );
    // A Slice as the output (a plain copy).
    let s = node("Slice", "s", &["x", "st", "en", "ax"], vec![]);
    let inits = vec![
        i64_tensor("st", &[1, 0, 2]),
        i64_tensor("en", &[-1, 100, 5]),
        i64_tensor("ax", &[2, 3, 4]),
    ];
    check_graph(
        "slice",
        &model(vec![s], inits, "x", 2, "s"),
        &random_input(2, [6, 7, 8], 6),
        &opts,
    );
    // A decoder step: [upsampled, centre-cropped skip] concatenated (the
    // Slice fused into the Concat's copies), then softmax over channels.
    let (c, mut inits) = conv("c", "p", 3, 4, 3, 0, true);
    let nodes = vec![
        pool("p", "x"),
        c,
        resize("up", "c"),
        node("Slice", "crop", &["x", "st", "en", "ax"], vec![]),
        node("Concat", "cat", &["up", "crop"], vec![attr_int("axis", 1)]),
        node("Softmax", "sm", &["cat"], vec![attr_int("axis", 1)]),
    ];
    inits.extend([
        scales(),
        i64_tensor("st", &[2, 2, 2]),
        i64_tensor("en", &[-2, -2, -2]),
        i64_tensor("ax", &[2, 3, 4]),
    ]);
    let mut input = random_input(3, [12, 14, 16], 7);
    input.mapv_inplace(|v| v * 8.0);
    check_graph(
        "crop + concat + softmax",
        &model(nodes, inits, "x", 3, "sm"),
        &input,
        &opts,
    );
}

/// A tiny random-weight U-Net exported as our exporter writes it.
fn tiny_unet(padding: Padding, upsampling: Upsampling, format: WeightFormat, filters: usize) -> (ModelCard, Model) {
    let spec = NetworkSpec {
        levels: 3,
        base_filters: filters,
        channel_plan: ChannelPlan::Doubling,
        padding,
        upsampling,
        in_channels: 1,
        classes: 4,
        norm: Norm::None,
    };
    let tile = match padding {
        Padding::Valid => spec.smallest_input() + 2 * spec.pool_factor(),
        Padding::Same => 32,
    };
    let card = ModelCard::new(
        "t",
        Modality::CT,
        &["background", "a", "b", "c"],
        spec,
        [2.0; 3],
        Intensity::ct_default(),
        [tile; 3],
    )
    .unwrap();
    let (bytes, card) = onnx_bytes(&Checkpoint::random(card, 11), format);
    let model = Model::from_bytes(&bytes, ModelSource::Builtin("test"), None).unwrap();
    (card, model)
}

/// Fraction of voxels whose labels differ.
fn label_mismatch(a: &Array3<u16>, b: &Array3<u16>) -> f64 {
    assert_eq!(a.dim(), b.dim());
    a.iter().zip(b).filter(|(x, y)| x != y).count() as f64 / a.len() as f64
}

fn volume(shape: (usize, usize, usize)) -> Array3<f32> {
    Array3::from_shape_fn(shape, |(z, y, x)| {
        ((z as f32 * 0.3).sin() + (y as f32 * 0.17).cos() * (x as f32 * 0.11).sin()) * 0.8
    })
}

#[test]
fn exported_unets_match_tract() {
    if !gpu_available() {
        return;
    }
    let configs = [
        (Padding::Valid, Upsampling::Nearest, WeightFormat::F32, 4),
        (Padding::Valid, Upsampling::Transposed, WeightFormat::F16, 3),
        (Padding::Same, Upsampling::Nearest, WeightFormat::F16, 3),
        (Padding::Same, Upsampling::Transposed, WeightFormat::F32, 4),
    ];
    for (padding, up, format, filters) in configs {
        let what = format!("{padding:?} {up:?} {format:?}");
        let (card, model) = tiny_unet(padding, up, format, filters);
        let tract = TractBackend::new(&model.proto, 4);
        let gpu = WgpuBackend::new(&model.proto, 4, &WgpuOptions::default()).unwrap();
        let tile = card.tile.input;
        let input = Array3::from_shape_vec((tile[0], tile[1], tile[2]), noise(tile.iter().product(), 9, 1.0)).unwrap();
        let reference = tract.run(&input).unwrap();
        let scores = TileBackend::run(&gpu, &input).unwrap();
        let d = max_diff(&scores, &reference);
        assert!(d <= 1e-4, "{what}: probabilities differ by {d}");
        let want = decode(reference.view(), Decode::Argmax);
        let labels = gpu.run_labels(&input).unwrap().unwrap();
        let m = label_mismatch(&labels, &want);
        assert!(m <= 1e-4, "{what}: {:.4} % of GPU labels differ", m * 100.0);
        // The labels must not be trivial for the comparison to mean much.
        let distinct: std::collections::BTreeSet<u16> = want.iter().copied().collect();
        assert!(distinct.len() > 1, "{what}: every voxel has label {distinct:?}");
    }
}

#[test]
fn labels_only_tiling_matches_tract_segmentation() {
    if !gpu_available() {
        return;
    }
    let (card, model) = tiny_unet(Padding::Valid, Upsampling::Nearest, WeightFormat::F16, 2);
    let tract = TractBackend::new(&model.proto, 4);
    let gpu = WgpuBackend::new(&model.proto, 4, &WgpuOptions::default()).unwrap();
    let vol = volume((30, 27, 22));
    let plan = TilePlan::new(&card.network, [30, 27, 22], card.tile.input, 0.5).unwrap();
    assert!(plan.tiles.len() >= 8, "several tiles: {}", plan.tiles.len());
    let reference = Tiling::new(vol.view(), &plan, -1.0)
        .labels(Decode::Argmax, |t| tract.run(t))
        .unwrap();
    let ours = Tiling::new(vol.view(), &plan, -1.0)
        .labels_of_label_tiles(|t| gpu.labels(t))
        .unwrap();
    let m = label_mismatch(&ours, &reference);
    assert!(m <= 1e-4, "{:.4} % of labels differ", m * 100.0);
}

#[test]
fn tensors_larger_than_one_binding_give_the_same_result() {
    if !gpu_available() {
        return;
    }
    let (card, model) = tiny_unet(Padding::Valid, Upsampling::Transposed, WeightFormat::F32, 4);
    let tile = card.tile.input;
    let input = Array3::from_shape_vec((tile[0], tile[1], tile[2]), noise(tile.iter().product(), 3, 1.0)).unwrap();
    let whole = WgpuBackend::new(&model.proto, 4, &WgpuOptions::default()).unwrap();
    let limit = 256 << 10;
    let split = WgpuBackend::new(
        &model.proto,
        4,
        &WgpuOptions {
            max_binding_bytes: Some(limit),
            ..Default::default()
        },
    )
    .unwrap();
    let a = whole.plan_summary(tile).unwrap();
    let b = split.plan_summary(tile).unwrap();
    assert_eq!(b.binding_limit, limit);
    assert!(
        b.largest_tensor_bytes > 4 * limit,
        "the largest tensor ({} bytes) spans several bindings",
        b.largest_tensor_bytes
    );
    assert!(b.dispatches > a.dispatches, "split into slabs: {a:?} vs {b:?}");
    let x = TileBackend::run(&whole, &input).unwrap();
    let y = TileBackend::run(&split, &input).unwrap();
    assert_eq!(max_diff(&x, &y), 0.0, "the slab path changes results");
    assert_eq!(whole.labels(&input).unwrap(), split.labels(&input).unwrap());
    // A binding too small for one plane of a convolution's input is a clear error.
    let tiny = WgpuBackend::new(
        &model.proto,
        4,
        &WgpuOptions {
            max_binding_bytes: Some(4096),
            ..Default::default()
        },
    )
    .unwrap();
    let e = TileBackend::run(&tiny, &input).unwrap_err();
    assert!(e.contains("binding limit") && e.contains("node"), "{e}");
}

#[test]
fn unsupported_graphs_are_refused_by_name() {
    // Refusals come from reading the graph, before any adapter is opened.
    let gemm = model(vec![node("Gemm", "xyz", &["x", "x"], vec![])], vec![], "x", 1, "xyz");
    let e = WgpuBackend::new(&gemm, 1, &WgpuOptions::default()).err().unwrap();
    assert_eq!(e, "unsupported ONNX op Gemm (node \"xyz\")");
    let (mut c, inits) = conv("grouped", "x", 2, 2, 3, 0, true);
    c.attribute.push(attr_int("group", 2));
    let e = WgpuBackend::new(&model(vec![c], inits, "x", 2, "grouped"), 2, &WgpuOptions::default())
        .err()
        .unwrap();
    assert!(e.contains("Conv node \"grouped\"") && e.contains("group"), "{e}");
}

/// A small scan and a valid model on disk, as `edge-seg infer` reads them.
fn write_case(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (_, model) = tiny_unet(Padding::Valid, Upsampling::Nearest, WeightFormat::F32, 4);
    let model_path = dir.join("m.onnx");
    std::fs::write(&model_path, prost::Message::encode_to_vec(&model.proto)).unwrap();
    let mut data = Array3::<f32>::from_elem((20, 40, 36), -1000.0);
    for ((k, j, i), v) in data.indexed_iter_mut() {
        let (y, x) = (j as f32 - 20.0, i as f32 - 18.0);
        if y * y / 300.0 + x * x / 250.0 < 1.0 {
            *v = 40.0 + ((k * 7 + j * 3 + i) % 11) as f32 * 30.0;
        }
    }
    let affine = edge_seg_runtime::geometry::Affine([
        [-2.0, 0.0, 0.0, 60.0],
        [0.0, -2.0, 0.0, 45.0],
        [0.0, 0.0, 3.0, -30.0],
        [0.0, 0.0, 0.0, 1.0],
    ]);
    let scan = dir.join("scan.nii.gz");
    edge_seg_runtime::volume::Volume::from_array(data, affine)
        .write_float(&scan)
        .unwrap();
    (scan, model_path)
}

fn label_map(path: &str) -> edge_seg_runtime::volume::Volume {
    edge_seg_runtime::volume::read_volume(std::path::Path::new(path)).unwrap()
}

/// The share of voxels on which two label maps agree.
fn agreement(a: &edge_seg_runtime::volume::Volume, b: &edge_seg_runtime::volume::Volume) -> f64 {
    let same = a.data.iter().zip(b.data.iter()).filter(|(x, y)| x == y).count();
    same as f64 / a.data.len() as f64
}

#[test]
fn infer_cli_on_wgpu_matches_tract() {
    if !gpu_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (scan, model) = write_case(dir.path());
    let (scan, model) = (scan.to_str().unwrap(), model.to_str().unwrap());
    let out = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    // `edge-seg infer` on the case with the given flags, written to `path`.
    let infer = |flags: &[&str], path: &str| {
        let mut args = vec!["infer", scan, "--model", model];
        args.extend_from_slice(flags);
        args.extend(["-o", path]);
        run("edge-seg", &args)
    };
    let (a, b) = (out("tract.nii.gz"), out("wgpu.nii.gz"));
    let o = infer(&["--quiet"], &a);
    assert!(o.status.success(), "{}", text(&o));
    let o = infer(&["--backend", "wgpu", "--gpu", "0", "-v"], &b);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("backend: wgpu ("), "verbose output names the adapter: {t}");
    let (ta, tb) = (label_map(&a), label_map(&b));
    let share = agreement(&ta, &tb);
    assert!(share >= 0.9999, "only {:.4} % of labels agree", share * 100.0);
    assert!(ta.data.iter().any(|&v| v > 0.0), "the tract map labels something");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("wgpu.json")).unwrap()).unwrap();
    let backend = report["provenance"]["backend"].as_str().unwrap();
    assert!(backend.starts_with("wgpu ("), "{backend}");
    // Labels copied back from the model grid: the GPU returns labels only
    // (exact tiles of a probability model), and agrees with tract's.
    let (na, nb) = (out("tract-nearest.nii.gz"), out("wgpu-nearest.nii.gz"));
    for (backend, path) in [("tract", &na), ("wgpu", &nb)] {
        let o = infer(&["--backend", backend, "--resampling", "nearest", "--quiet"], path);
        assert!(o.status.success(), "{backend}: {}", text(&o));
    }
    let (na, nb) = (label_map(&na), label_map(&nb));
    let share = agreement(&na, &nb);
    assert!(share >= 0.9999, "nearest: only {:.4} % of labels agree", share * 100.0);
    assert!(na.data.iter().any(|&v| v > 0.0), "the nearest map labels something");
    // `auto` runs (on wgpu, or on tract with a note), with the same labels.
    let c = out("auto.nii.gz");
    let o = infer(&["--backend", "auto", "--quiet"], &c);
    assert!(o.status.success(), "{}", text(&o));
    let share = agreement(&ta, &label_map(&c));
    assert!(share >= 0.9999, "auto: only {:.4} % of labels agree", share * 100.0);
    // An unknown adapter is a clean error listing the adapters.
    let o = infer(&["--backend", "wgpu", "--gpu", "nosuchgpu"], &out("x.nii.gz"));
    assert_clean_failure(&o, "nosuchgpu");
    assert!(text(&o).contains("available adapters: 0: "), "{}", text(&o));
    let o = run(
        "edge-seg",
        &["bench", "--model", model, "--backend", "wgpu", "--tiles", "1"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("backend:      wgpu ("), "{}", text(&o));
}
