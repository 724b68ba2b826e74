//! The graph walk, shapes and buffer plan without a GPU: a plain CPU kernel
//! set runs small graphs, checked against tract.

use std::cell::RefCell;
use std::rc::Rc;

use ndarray::{Array4, Array5};
use tract_onnx::pb::{ModelProto, NodeProto, TensorProto};
use tract_onnx::prelude::*;

use super::build::{attr_int, attr_ints, attr_str, f32_tensor, i64_tensor, model, node};
use super::kernels::{Kernels, TensorRef};
use super::ops::{Conv, ConvTranspose, Crop, Op, Pool};
use super::plan::{Plan, StepKind};
use super::tensor::HostTensor;
use super::{Executor, Graph};

type Buf = Rc<RefCell<Vec<f32>>>;

/// Loop-by-loop kernels over channels-last vectors.
struct Plain;

fn at(d: [usize; 4], z: usize, y: usize, x: usize, c: usize) -> usize {
    ((z * d[1] + y) * d[2] + x) * d[3] + c
}

fn parts(t: TensorRef<Buf>) -> (Buf, [usize; 4]) {
    (t.buffer.clone(), t.dims)
}

/// A step applying `f(src, dst)` to the two tensors' values.
fn step(
    x: TensorRef<Buf>,
    y: TensorRef<Buf>,
    f: impl Fn(&[f32], [usize; 4], &mut [f32], [usize; 4]) + 'static,
) -> Box<dyn Fn()> {
    let ((xb, xd), (yb, yd)) = (parts(x), parts(y));
    Box::new(move || f(&xb.borrow(), xd, &mut yb.borrow_mut(), yd))
}

impl Kernels for Plain {
    type Buffer = Buf;
    /// Weights `[o, i, k, k, k]` (transposed: `[i, o, k, k, k]`) and bias.
    type Weights = (HostTensor, Option<Vec<f32>>);
    type Step = Box<dyn Fn()>;

    fn buffer(&self, bytes: u64) -> Result<Buf, String> {
        Ok(Rc::new(RefCell::new(vec![0.0; bytes as usize / 4])))
    }

    fn conv_weights(&self, conv: &Conv) -> Result<Self::Weights, String> {
        Ok((conv.weight.clone(), conv.bias.clone()))
    }

    fn conv_transpose_weights(&self, up: &ConvTranspose) -> Result<Self::Weights, String> {
        Ok((up.weight.clone(), up.bias.clone()))
    }

    fn conv(
        &self,
        x: TensorRef<Buf>,
        w: &Self::Weights,
        y: TensorRef<Buf>,
        pads: [usize; 3],
        relu: bool,
    ) -> Result<Self::Step, String> {
        let (w, b) = w.clone();
        Ok(step(x, y, move |src, xd, dst, yd| {
            let k = w.dims[2];
            for (z, yy, xx, o) in itertools(yd) {
                let mut acc = b.as_ref().map_or(0.0, |b| b[o]);
                for (kz, ky, kx) in cube(k) {
                    let (iz, iy, ix) = (
                        (z + kz) as i64 - pads[0] as i64,
                        (yy + ky) as i64 - pads[1] as i64,
                        (xx + kx) as i64 - pads[2] as i64,
                    );
                    if iz < 0 || iy < 0 || ix < 0 || iz >= xd[0] as i64 || iy >= xd[1] as i64 || ix >= xd[2] as i64 {
                        continue;
                    }
                    for i in 0..xd[3] {
                        let wv = w.data[(((o * xd[3] + i) * k + kz) * k + ky) * k + kx];
                        acc += wv * src[at(xd, iz as usize, iy as usize, ix as usize, i)];
                    }
                }
                dst[at(yd, z, yy, xx, o)] = if relu { acc.max(0.0) } else { acc };
            }
        }))
    }

    fn conv_transpose(
        &self,
        x: TensorRef<Buf>,
        w: &Self::Weights,
        y: TensorRef<Buf>,
        k: usize,
    ) -> Result<Self::Step, String> {
        let (w, b) = w.clone();
        Ok(step(x, y, move |src, xd, dst, yd| {
            for (z, yy, xx, o) in itertools(yd) {
                let mut acc = b.as_ref().map_or(0.0, |b| b[o]);
                for i in 0..xd[3] {
                    let wv = w.data[(((i * yd[3] + o) * k + z % k) * k + yy % k) * k + xx % k];
                    acc += wv * src[at(xd, z / k, yy / k, xx / k, i)];
                }
                dst[at(yd, z, yy, xx, o)] = acc;
            }
        }))
    }

    fn max_pool(&self, x: TensorRef<Buf>, y: TensorRef<Buf>, p: Pool) -> Result<Self::Step, String> {
        Ok(step(x, y, move |src, xd, dst, yd| {
            for (z, yy, xx, c) in itertools(yd) {
                let mut m = f32::NEG_INFINITY;
                for dz in 0..p.kernel[0] {
                    for dy in 0..p.kernel[1] {
                        for dx in 0..p.kernel[2] {
                            let v = src[at(
                                xd,
                                z * p.stride[0] + dz,
                                yy * p.stride[1] + dy,
                                xx * p.stride[2] + dx,
                                c,
                            )];
                            m = m.max(v);
                        }
                    }
                }
                dst[at(yd, z, yy, xx, c)] = m;
            }
        }))
    }

    fn resize_nearest(&self, x: TensorRef<Buf>, y: TensorRef<Buf>, s: [usize; 3]) -> Result<Self::Step, String> {
        Ok(step(x, y, move |src, xd, dst, yd| {
            for (z, yy, xx, c) in itertools(yd) {
                dst[at(yd, z, yy, xx, c)] = src[at(xd, z / s[0], yy / s[1], xx / s[2], c)];
            }
        }))
    }

    fn relu(&self, x: TensorRef<Buf>, y: TensorRef<Buf>) -> Result<Self::Step, String> {
        Ok(step(x, y, |src, xd, dst, _| {
            let n: usize = xd.iter().product();
            for i in 0..n {
                dst[i] = src[i].max(0.0);
            }
        }))
    }

    fn copy(&self, x: TensorRef<Buf>, start: [usize; 3], y: TensorRef<Buf>, ch: usize) -> Result<Self::Step, String> {
        Ok(step(x, y, move |src, xd, dst, yd| {
            for (z, yy, xx, c) in itertools([yd[0], yd[1], yd[2], xd[3]]) {
                dst[at(yd, z, yy, xx, ch + c)] = src[at(xd, z + start[0], yy + start[1], xx + start[2], c)];
            }
        }))
    }

    fn softmax(&self, x: TensorRef<Buf>, y: TensorRef<Buf>) -> Result<Self::Step, String> {
        Ok(step(x, y, |src, xd, dst, _| {
            let n: usize = xd.iter().product();
            for (v, lane) in src[..n].chunks(xd[3]).enumerate() {
                let m = lane.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let s: f32 = lane.iter().map(|a| (a - m).exp()).sum();
                for (c, a) in lane.iter().enumerate() {
                    dst[v * xd[3] + c] = (a - m).exp() / s;
                }
            }
        }))
    }

    fn argmax(&self, x: TensorRef<Buf>, labels: TensorRef<Buf>) -> Result<Self::Step, String> {
        Ok(step(x, labels, |src, xd, dst, _| {
            let n: usize = xd.iter().product();
            for (v, lane) in src[..n].chunks(xd[3]).enumerate() {
                let mut best = 0;
                for (c, a) in lane.iter().enumerate() {
                    if *a > lane[best] {
                        best = c;
                    }
                }
                dst[v] = f32::from_bits(best as u32);
            }
        }))
    }

    fn execute(
        &self,
        input: TensorRef<Buf>,
        data: &[f32],
        steps: &[&Self::Step],
        read: TensorRef<Buf>,
    ) -> Result<Vec<u32>, String> {
        input.buffer.borrow_mut()[..data.len()].copy_from_slice(data);
        for s in steps {
            s();
        }
        Ok(read.buffer.borrow()[..read.elements()]
            .iter()
            .map(|v| v.to_bits())
            .collect())
    }
}

/// Every `(z, y, x, c)` of a shape.
fn itertools(d: [usize; 4]) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    (0..d[0]).flat_map(move |z| {
        (0..d[1]).flat_map(move |y| (0..d[2]).flat_map(move |x| (0..d[3]).map(move |c| (z, y, x, c))))
    })
}

fn cube(k: usize) -> impl Iterator<Item = (usize, usize, usize)> {
    (0..k).flat_map(move |z| (0..k).flat_map(move |y| (0..k).map(move |x| (z, y, x))))
}

/// Deterministic values in [-1, 1).
fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn conv_nodes(
    name: &str,
    x: &str,
    cin: usize,
    cout: usize,
    k: usize,
    pad: i64,
    seed: u64,
) -> (NodeProto, Vec<TensorProto>) {
    let w = format!("{name}.w");
    let b = format!("{name}.b");
    let n = node(
        "Conv",
        name,
        &[x, &w, &b],
        vec![attr_ints("kernel_shape", &[k as i64; 3]), attr_ints("pads", &[pad; 6])],
    );
    let inits = vec![
        f32_tensor(&w, &[cout, cin, k, k, k], &noise(cout * cin * k * k * k, seed)),
        f32_tensor(&b, &[cout], &noise(cout, seed + 1)),
    ];
    (n, inits)
}

/// A two-level U-Net in the exporter's form (even input sizes ≥ 14) (valid convs, nearest
/// upsampling, centre crop, concat, head, softmax), with f16 weights for
/// the head behind a Cast.
fn tiny_unet() -> ModelProto {
    let mut nodes = Vec::new();
    let mut inits = Vec::new();
    let mut conv = |name: &str, x: &str, cin, cout, k, relu: bool, nodes: &mut Vec<NodeProto>| {
        let (n, i) = conv_nodes(name, x, cin, cout, k, 0, name.len() as u64);
        nodes.push(n);
        inits.extend(i);
        if relu {
            let r = format!("{name}.relu");
            nodes.push(node("Relu", &r, &[name], vec![]));
            return r;
        }
        name.to_string()
    };
    let e0 = conv("enc0", "image", 1, 3, 3, true, &mut nodes);
    nodes.push(node(
        "MaxPool",
        "pool",
        &[&e0],
        vec![attr_ints("kernel_shape", &[2; 3]), attr_ints("strides", &[2; 3])],
    ));
    let e1 = conv("enc1", "pool", 3, 4, 3, true, &mut nodes);
    nodes.push(node(
        "Resize",
        "up",
        &[&e1, "", "scales"],
        vec![
            attr_str("mode", "nearest"),
            attr_str("coordinate_transformation_mode", "asymmetric"),
            attr_str("nearest_mode", "floor"),
        ],
    ));
    nodes.push(node("Slice", "crop", &[&e0, "starts", "ends", "axes"], vec![]));
    nodes.push(node("Concat", "cat", &["up", "crop"], vec![attr_int("axis", 1)]));
    let d0 = conv("dec0", "cat", 7, 3, 3, true, &mut nodes);
    let head = conv("head", &d0, 3, 3, 1, false, &mut nodes);
    nodes.push(node("Softmax", "scores", &[&head], vec![attr_int("axis", 1)]));
    let mut inits_all = std::mem::take(&mut inits);
    // The head's weight as f16 behind a Cast.
    let hw = inits_all.iter().position(|t| t.name == "head.w").unwrap();
    let t = inits_all.remove(hw);
    let values: Vec<f32> = t
        .raw_data
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    inits_all.push(TensorProto {
        name: "head.w16".into(),
        dims: t.dims.clone(),
        data_type: tract_onnx::pb::tensor_proto::DataType::Float16 as i32,
        raw_data: values.iter().flat_map(|v| half_bits(*v).to_le_bytes()).collect(),
        ..Default::default()
    });
    nodes.insert(
        0,
        NodeProto {
            op_type: "Cast".into(),
            name: "head.cast".into(),
            input: vec!["head.w16".into()],
            output: vec!["head.w".into()],
            attribute: vec![attr_int("to", 1)],
            ..Default::default()
        },
    );
    inits_all.push(f32_tensor("scales", &[5], &[1.0, 1.0, 2.0, 2.0, 2.0]));
    // Input n → enc0 n-2 → pool → enc1 → up n-6; the skip (n-2) is cropped by 2.
    inits_all.push(i64_tensor("starts", &[2, 2, 2]));
    inits_all.push(i64_tensor("ends", &[-2, -2, -2]));
    inits_all.push(i64_tensor("axes", &[2, 3, 4]));
    model(nodes, inits_all, "image", 1, "scores")
}

/// f32 → the nearest f16 bit pattern for values of moderate size (tests only).
fn half_bits(v: f32) -> u16 {
    if v == 0.0 {
        return 0;
    }
    let sign = if v < 0.0 { 0x8000 } else { 0 };
    let a = v.abs();
    let e = a.log2().floor() as i32;
    let m = ((a / 2f32.powi(e) - 1.0) * 1024.0).round() as u16;
    let (e, m) = if m == 1024 { (e + 1, 0) } else { (e, m) };
    sign | (((e + 15) as u16) << 10) | m
}

fn tract_run(proto: &ModelProto, input: &Array4<f32>) -> Array4<f32> {
    let (c, d, h, w) = input.dim();
    let plan = tract_onnx::onnx()
        .model_for_proto_model(proto)
        .unwrap()
        .with_input_fact(0, f32::fact([1, c, d, h, w]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let x = Array5::from_shape_vec((1, c, d, h, w), input.iter().copied().collect()).unwrap();
    let out = plan.run(tvec!(Tensor::from(x).into())).unwrap();
    let v = out[0].to_plain_array_view::<f32>().unwrap();
    let s = v.shape().to_vec();
    Array4::from_shape_vec((s[1], s[2], s[3], s[4]), v.iter().copied().collect()).unwrap()
}

/// Run on the plain kernels: `[C, D, H, W]` in and out.
fn plain_run(proto: &ModelProto, input: &Array4<f32>) -> Array4<f32> {
    let mut ex = Executor::new(Graph::from_proto(proto).unwrap(), Plain).unwrap();
    let (c, d, h, w) = input.dim();
    let data: Vec<f32> = input.view().permuted_axes([1, 2, 3, 0]).iter().copied().collect();
    let (out, o) = ex.run([d, h, w, c], &data).unwrap();
    Array4::from_shape_vec((o[0], o[1], o[2], o[3]), out)
        .unwrap()
        .permuted_axes([3, 0, 1, 2])
        .as_standard_layout()
        .to_owned()
}

fn max_diff(a: &Array4<f32>, b: &Array4<f32>) -> f32 {
    assert_eq!(a.dim(), b.dim());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn input(c: usize, d: usize, seed: u64) -> Array4<f32> {
    Array4::from_shape_vec((c, d, d + 2, d + 4), noise(c * d * (d + 2) * (d + 4), seed)).unwrap()
}

#[test]
fn exporter_form_is_fused_and_planned() {
    let g = Graph::from_proto(&tiny_unet()).unwrap();
    let ops: Vec<&str> = g.nodes.iter().map(|n| n.op.name()).collect();
    assert_eq!(
        ops,
        ["Conv", "MaxPool", "Conv", "Resize", "Concat", "Conv", "Conv", "Softmax"],
        "Relu fused into Conv, Slice into Concat, Cast folded"
    );
    let relus: Vec<bool> = g
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::Conv(c) => Some(c.relu),
            _ => None,
        })
        .collect();
    assert_eq!(relus, [true, true, true, false]);
    let Op::Concat { crops } = &g.nodes[4].op else { panic!() };
    assert_eq!(
        crops,
        &[
            None,
            Some(Crop {
                starts: [2; 3],
                ends: [-2; 3]
            })
        ]
    );
    let plan = Plan::new(&g, [16, 18, 20, 1]).unwrap();
    let out = &plan.tensors[plan.output];
    assert_eq!(out.dims, [8, 10, 12, 3]);
    assert_eq!(plan.tensors[plan.labels].dims, [8, 10, 12, 1]);
    let copies: Vec<StepKind> = plan
        .steps
        .iter()
        .filter(|s| matches!(s.kind, StepKind::Copy { .. }))
        .map(|s| s.kind)
        .collect();
    assert_eq!(
        copies,
        [
            StepKind::Copy {
                start: [0; 3],
                channel: 0
            },
            StepKind::Copy {
                start: [2; 3],
                channel: 4
            }
        ]
    );
    assert!(
        plan.slots.len() < plan.tensors.len(),
        "slots are reused: {:?}",
        plan.slots
    );
    check_slots(&plan);
}

/// No two tensors live at the same step share a slot, and every tensor fits its slot.
fn check_slots(plan: &Plan) {
    let n = plan.tensors.len();
    let mut first = vec![usize::MAX; n];
    let mut last = vec![0; n];
    first[plan.input] = 0;
    for (i, s) in plan.steps.iter().enumerate() {
        first[s.output] = first[s.output].min(i);
        for t in [s.input, s.output] {
            last[t] = last[t].max(i);
        }
    }
    last[plan.output] = plan.steps.len();
    last[plan.labels] = plan.steps.len();
    for a in 0..n {
        assert!(plan.tensors[a].bytes() <= plan.slots[plan.tensors[a].slot]);
        for b in a + 1..n {
            let overlap = first[a] <= last[b] && first[b] <= last[a];
            if overlap {
                assert_ne!(
                    plan.tensors[a].slot, plan.tensors[b].slot,
                    "{} and {} are live together",
                    plan.tensors[a].name, plan.tensors[b].name
                );
            }
        }
    }
}

#[test]
fn plain_kernels_match_tract_on_a_small_unet() {
    let proto = tiny_unet();
    let x = input(1, 16, 7);
    let ours = plain_run(&proto, &x);
    let reference = tract_run(&proto, &x);
    let d = max_diff(&ours, &reference);
    assert!(d < 1e-4, "max difference {d}");
    // Labels: the argmax of the probabilities.
    let mut ex = Executor::new(Graph::from_proto(&proto).unwrap(), Plain).unwrap();
    let data: Vec<f32> = x.iter().copied().collect();
    let (labels, dims) = ex.run_labels([16, 18, 20, 1], &data).unwrap();
    assert_eq!(dims, [8, 10, 12]);
    let mut i = 0;
    for z in 0..8 {
        for y in 0..10 {
            for xx in 0..12 {
                let lane: Vec<f32> = (0..3).map(|c| reference[[c, z, y, xx]]).collect();
                let best = (0..3).fold(0, |b, c| if lane[c] > lane[b] { c } else { b });
                assert_eq!(labels[i], best as u32);
                i += 1;
            }
        }
    }
    // A second shape rebuilds the program.
    let y = input(1, 20, 8);
    let d = max_diff(&plain_run(&proto, &y), &tract_run(&proto, &y));
    assert!(d < 1e-4, "max difference {d}");
}

#[test]
fn single_ops_match_tract() {
    let mut cases: Vec<(ModelProto, usize)> = Vec::new();
    // Same-padded conv, standalone relu after a pool, transposed conv.
    let (c, i) = conv_nodes("c", "x", 3, 5, 3, 1, 3);
    cases.push((model(vec![c], i, "x", 3, "c"), 3));
    let pool = node(
        "MaxPool",
        "p",
        &["x"],
        vec![attr_ints("kernel_shape", &[2; 3]), attr_ints("strides", &[2; 3])],
    );
    cases.push((
        model(vec![pool, node("Relu", "r", &["p"], vec![])], vec![], "x", 2, "r"),
        2,
    ));
    let up = node(
        "ConvTranspose",
        "t",
        &["x", "t.w", "t.b"],
        vec![attr_ints("kernel_shape", &[2; 3]), attr_ints("strides", &[2; 3])],
    );
    let inits = vec![
        f32_tensor("t.w", &[3, 4, 2, 2, 2], &noise(96, 5)),
        f32_tensor("t.b", &[4], &noise(4, 6)),
    ];
    cases.push((model(vec![up], inits, "x", 3, "t"), 3));
    // A Slice that is the output (not fused).
    let s = node("Slice", "s", &["x", "st", "en"], vec![]);
    let inits = vec![
        i64_tensor("st", &[0, 0, 1, 0, 2]),
        i64_tensor("en", &[1, 9, -1, 100, 5]),
    ];
    // Axes 0 and 1 given explicitly are refused; use axes instead.
    let s2 = node("Slice", "s", &["x", "st", "en", "ax"], vec![]);
    let inits2 = vec![
        i64_tensor("st", &[1, 0, 2]),
        i64_tensor("en", &[-1, 100, 5]),
        i64_tensor("ax", &[2, 3, -1]),
    ];
    assert!(Graph::from_proto(&model(vec![s], inits, "x", 2, "s"))
        .unwrap_err()
        .contains("axis 0"));
    cases.push((model(vec![s2], inits2, "x", 2, "s"), 2));
    for (k, (proto, c)) in cases.iter().enumerate() {
        let x = input(*c, 8, k as u64);
        let d = max_diff(&plain_run(proto, &x), &tract_run(proto, &x));
        assert!(d < 1e-5, "case {k}: max difference {d}");
    }
}

#[test]
fn refusals_name_the_op_or_attribute() {
    let gemm = model(vec![node("Gemm", "xyz", &["x", "x"], vec![])], vec![], "x", 1, "xyz");
    assert_eq!(
        Graph::from_proto(&gemm).unwrap_err(),
        "unsupported ONNX op Gemm (node \"xyz\")"
    );
    let (mut c, i) = conv_nodes("c", "x", 1, 2, 3, 0, 1);
    c.attribute.push(attr_ints("strides", &[2; 3]));
    let e = Graph::from_proto(&model(vec![c], i, "x", 1, "c")).unwrap_err();
    assert!(e.contains("Conv node \"c\"") && e.contains("strides"), "{e}");
    let sm = node("Softmax", "s", &["x"], vec![]);
    let e = Graph::from_proto(&model(vec![sm], vec![], "x", 1, "s")).unwrap_err();
    assert!(e.contains("axis -1"), "{e}");
    let r = node("Resize", "r", &["x", "", "sc"], vec![attr_str("mode", "linear")]);
    let e = Graph::from_proto(&model(
        vec![r],
        vec![f32_tensor("sc", &[5], &[1., 1., 2., 2., 2.])],
        "x",
        1,
        "r",
    ))
    .unwrap_err();
    assert!(e.contains("linear"), "{e}");
    let cast = NodeProto {
        op_type: "Cast".into(),
        name: "k".into(),
        input: vec!["x".into()],
        output: vec!["k".into()],
        attribute: vec![attr_int("to", 1)],
        ..Default::default()
    };
    let e = Graph::from_proto(&model(vec![cast], vec![], "x", 1, "k")).unwrap_err();
    assert!(e.contains("only constants"), "{e}");
    // Too small an input for the kernel: the node is named.
    let (c, i) = conv_nodes("small", "x", 1, 2, 3, 0, 1);
    let g = Graph::from_proto(&model(vec![c], i, "x", 1, "small")).unwrap();
    let e = Plan::new(&g, [2, 5, 5, 1]).unwrap_err();
    assert!(e.contains("Conv node \"small\""), "{e}");
    let e = Plan::new(&g, [5, 5, 5, 2]).unwrap_err();
    assert!(e.contains("1 input channels"), "{e}");
}

#[test]
fn crops_follow_onnx_bounds() {
    let c = Crop {
        starts: [1, -3, 0],
        ends: [-1, i64::MAX, 100],
    };
    assert_eq!(c.resolve([10, 10, 4]).unwrap(), ([1, 7, 0], [8, 3, 4]));
    assert!(c.resolve([2, 10, 4]).unwrap_err().contains("empty"));
}

#[test]
fn chains_ping_pong_between_two_slots() {
    let mut nodes = Vec::new();
    let mut inits = Vec::new();
    let mut x = "x".to_string();
    for l in 0..5 {
        let name = format!("c{l}");
        let (n, i) = conv_nodes(&name, &x, 2, 2, 3, 1, l);
        nodes.push(n);
        inits.extend(i);
        x = name;
    }
    let g = Graph::from_proto(&model(nodes, inits, "x", 2, &x)).unwrap();
    let plan = Plan::new(&g, [6, 6, 6, 2]).unwrap();
    // Each conv reads one slot and writes the other; the labels take the
    // slot freed by the last conv's input.
    assert_eq!(plan.slots.len(), 2, "{:?}", plan.tensors);
    check_slots(&plan);
}
