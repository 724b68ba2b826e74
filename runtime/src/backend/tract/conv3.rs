//! Our 3×3×3 convolution for tract, on x86-64 CPUs with AVX-512 or AVX2 and FMA.
//!
//! tract computes a convolution as a matrix product whose right-hand
//! operand it gathers voxel by voxel from the input (lazy im2col); on the
//! paper network that gathering alone took a quarter of a tile, and its
//! largest convolution ran at 114 GFLOP/s on one core where this kernel
//! runs at 238 (BENCHMARKS.md). Here no operand is gathered: for one output
//! row `(z, y)` and 32 voxels along x, every term `(c, dz, dy, dx)` of the
//! sum is a contiguous run of 32 input voxels, loaded straight from the
//! input row `(c, z + dz, y + dy)` at offset `dx`. A block of 8 output
//! channels × 32 voxels (AVX-512; with AVX2, 6 × 16) stays in vector
//! registers while the 27·C terms are added in, each a broadcast weight
//! times a loaded run; bias and a following ReLU are applied as the block
//! is stored. Planes of the output are shared among rayon's threads.
//!
//! The graph carries it as an `EdgeSegConv3` node (domain `edge-seg`):
//! inputs `x [N, C, D, H, W]`, weight `[Co, C, 3, 3, 3]` and optional bias
//! `[Co]` (both constant), attributes `pad` (0 or 1 on every side), `relu`
//! (0 or 1) and `kernel` (`avx512` or `avx2`). [`rewrite`] puts it in place of the graph's matching
//! Conv (and Relu) nodes when the CPU runs one of the kernels, and
//! [`register`] teaches tract to read it.

use std::sync::Arc;

use tract_onnx::pb::{ModelProto, NodeProto};
use tract_onnx::tract_hir::internal::*;

use super::graph_view::{plain, three_cubed_stride_one, View};
use crate::backend::graph::build::{attr_int, attr_str, f32_tensor, node_to};
use crate::backend::graph::tensor::Values;

/// The op type the rewrite writes.
pub const OP_TYPE: &str = "EdgeSegConv3";
/// The domain of that op.
pub const DOMAIN: &str = "edge-seg";

/// Output channels per block of the AVX-512 kernel (the largest block).
const MR: usize = 8;

/// Which kernel runs the blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 8 channels × 32 voxels (two 16-float vectors), 16 accumulators of 32.
    Avx512,
    /// 6 channels × 16 voxels (two 8-float vectors), 12 accumulators of 16.
    Avx2,
}

impl Kind {
    /// Output channels and voxels per block.
    fn block(self) -> (usize, usize) {
        match self {
            Kind::Avx512 => (8, 32),
            Kind::Avx2 => (6, 16),
        }
    }

    /// The kernel's name (the node's `kernel` attribute, `--conv-kernel`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Avx512 => "avx512",
            Kind::Avx2 => "avx2",
        }
    }

    /// The kernel of that name.
    pub fn from_name(name: &str) -> Option<Kind> {
        [Kind::Avx512, Kind::Avx2].into_iter().find(|k| k.name() == name)
    }

    /// Whether this CPU runs it.
    pub fn runs_here(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                Kind::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
                Kind::Avx2 => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }
}

/// The kernel this CPU runs best, if any.
pub fn best() -> Option<Kind> {
    [Kind::Avx512, Kind::Avx2].into_iter().find(|k| k.runs_here())
}

/// Whether this CPU runs one of the kernels.
pub fn available() -> bool {
    best().is_some()
}

/// Teach tract's ONNX reader the op.
pub fn register(onnx: &mut tract_onnx::Onnx) {
    onnx.op_register.insert(OP_TYPE, parse);
}

fn parse(
    _ctx: &tract_onnx::model::ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let int = |name: &str| node.attribute.iter().find(|a| a.name == name).map(|a| a.i).unwrap_or(0);
    let pad = int("pad");
    if !(0..=1).contains(&pad) {
        bail!("{OP_TYPE}: pad {pad} (0 or 1 only)");
    }
    let name = node
        .attribute
        .iter()
        .find(|a| a.name == "kernel")
        .map(|a| String::from_utf8_lossy(&a.s).into_owned())
        .unwrap_or_default();
    let kind = Kind::from_name(&name).with_context(|| format!("{OP_TYPE}: unknown kernel {name:?}"))?;
    if !kind.runs_here() {
        bail!("{OP_TYPE}: this CPU does not run the {name} kernel");
    }
    Ok((
        expand(Conv3Expansion {
            kind,
            pad: pad as usize,
            relu: int("relu") == 1,
            has_bias: node.input.get(2).is_some_and(|b| !b.is_empty()),
        }),
        vec![],
    ))
}

#[derive(Debug, Clone, PartialEq)]
struct Conv3Expansion {
    kind: Kind,
    pad: usize,
    relu: bool,
    has_bias: bool,
}

impl Expansion for Conv3Expansion {
    fn name(&self) -> StaticName {
        OP_TYPE.into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 2 + self.has_bias as usize)?;
        check_output_arity(outputs, 1)?;
        s.equals(&outputs[0].datum_type, &inputs[0].datum_type)?;
        s.equals(&inputs[0].rank, 5)?;
        s.equals(&outputs[0].rank, 5)?;
        s.equals(&outputs[0].shape[0], &inputs[0].shape[0])?;
        s.equals(&outputs[0].shape[1], &inputs[1].shape[0])?;
        let shrink = 2 - 2 * self.pad as i64;
        for axis in 2..5 {
            s.given(&inputs[0].shape[axis], move |s, d| {
                s.equals(&outputs[0].shape[axis], d - shrink)
            })?;
        }
        Ok(())
    }

    fn wire(&self, prefix: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        let weight = model
            .outlet_fact(inputs[1])?
            .konst
            .clone()
            .with_context(|| format!("{prefix}: the weight of {OP_TYPE} must be constant"))?;
        let w = weight.cast_to::<f32>()?;
        let w_shape = w.shape().to_vec();
        let [co, ci, 3, 3, 3] = w_shape[..] else {
            bail!("{prefix}: weight shape {w_shape:?}, expected [Co, C, 3, 3, 3]");
        };
        let bias = if self.has_bias {
            let b = model
                .outlet_fact(inputs[2])?
                .konst
                .clone()
                .with_context(|| format!("{prefix}: the bias of {OP_TYPE} must be constant"))?;
            let b = b.cast_to::<f32>()?;
            let b = b.to_plain_array_view::<f32>()?;
            if b.len() != co {
                bail!("{prefix}: bias of {} values for {co} output channels", b.len());
            }
            b.iter().copied().collect()
        } else {
            vec![0.0; co]
        };
        let w = w.to_plain_array_view::<f32>()?;
        let w: Vec<f32> = w.iter().copied().collect();
        let kind = self.kind;
        let op = Conv3 {
            ci,
            co,
            pad: self.pad,
            relu: self.relu,
            kind,
            packed: Arc::new(pack(&w, co, ci, kind.block().0)),
            bias: Arc::new(bias),
        };
        model.wire_node(prefix, op, &inputs[..1])
    }
}

/// The typed op: weights packed in blocks of the kernel's output channels.
#[derive(Debug, Clone)]
pub struct Conv3 {
    ci: usize,
    co: usize,
    pad: usize,
    relu: bool,
    kind: Kind,
    /// `[co / mr rounded up][27·ci][mr]`, term `((c·3 + dz)·3 + dy)·3 + dx`.
    packed: Arc<Vec<f32>>,
    bias: Arc<Vec<f32>>,
}

/// Equal when every weight and bias is bit for bit the same (tract
/// compares ops to merge identical nodes).
impl PartialEq for Conv3 {
    fn eq(&self, other: &Conv3) -> bool {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
        (self.ci, self.co, self.pad, self.relu, self.kind) == (other.ci, other.co, other.pad, other.relu, other.kind)
            && bits(&self.packed) == bits(&other.packed)
            && bits(&self.bias) == bits(&other.bias)
    }
}

impl Eq for Conv3 {}

/// Weights `[co, ci, 3, 3, 3]` in blocks of `mr` output channels, each
/// `[27·ci][mr]` (missing channels of the last block zero).
fn pack(w: &[f32], co: usize, ci: usize, mr: usize) -> Vec<f32> {
    let k = 27 * ci;
    let blocks = co.div_ceil(mr);
    let mut packed = vec![0.0f32; blocks * k * mr];
    for o in 0..co {
        let (b, r) = (o / mr, o % mr);
        for t in 0..k {
            packed[(b * k + t) * mr + r] = w[o * k + t];
        }
    }
    packed
}

impl Op for Conv3 {
    fn name(&self) -> StaticName {
        OP_TYPE.into()
    }

    op_as_typed_op!();
}

impl EvalOp for Conv3 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = args_1!(inputs);
        let shape = x.shape().to_vec();
        let [n, ci, d, h, w] = shape[..] else {
            bail!("{OP_TYPE}: input of rank {}, expected 5", shape.len());
        };
        if ci != self.ci {
            bail!("{OP_TYPE}: input has {ci} channels, the weights {}", self.ci);
        }
        if d + 2 * self.pad < 3 || h + 2 * self.pad < 3 || w + 2 * self.pad < 3 {
            bail!("{OP_TYPE}: input {shape:?} is smaller than the kernel");
        }
        let out_shape = [
            n,
            self.co,
            d + 2 * self.pad - 2,
            h + 2 * self.pad - 2,
            w + 2 * self.pad - 2,
        ];
        let view = x.to_plain_array_view::<f32>()?;
        let input = view.as_slice().context("input not contiguous")?;
        let padded;
        let (src, [pd, ph, pw]) = if self.pad == 1 {
            padded = pad_one(input, [n, ci, d, h, w]);
            (&padded[..], [d + 2, h + 2, w + 2])
        } else {
            (input, [d, h, w])
        };
        let mut out = unsafe { Tensor::uninitialized::<f32>(&out_shape)? };
        {
            let mut plain = out.try_as_plain_ram_mut()?;
            let dst = plain.as_slice_mut::<f32>()?;
            self.run(src, [n, pd, ph, pw], dst, out_shape);
        }
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for Conv3 {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let s = &inputs[0].shape;
        if s.rank() != 5 {
            bail!("{OP_TYPE}: input of rank {}, expected 5", s.rank());
        }
        let shrink = 2 - 2 * self.pad as i64;
        let shape: TVec<TDim> = tvec![
            s[0].clone(),
            self.co.to_dim(),
            s[2].clone() - shrink,
            s[3].clone() - shrink,
            s[4].clone() - shrink,
        ];
        Ok(tvec!(f32::fact(shape)))
    }

    as_op!();
}

/// The input with one zero voxel around each spatial side.
fn pad_one(x: &[f32], [n, c, d, h, w]: [usize; 5]) -> Vec<f32> {
    let (pd, ph, pw) = (d + 2, h + 2, w + 2);
    let mut out = vec![0.0f32; n * c * pd * ph * pw];
    for nc in 0..n * c {
        for z in 0..d {
            for y in 0..h {
                let s = ((nc * d + z) * h + y) * w;
                let t = ((nc * pd + z + 1) * ph + y + 1) * pw + 1;
                out[t..t + w].copy_from_slice(&x[s..s + w]);
            }
        }
    }
    out
}

/// A pointer the worker threads write through, each to its own planes.
#[derive(Clone, Copy)]
struct Out(*mut f32);
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    /// The pointer (a method, so closures capture the whole `Out`).
    fn get(&self) -> *mut f32 {
        self.0
    }
}

impl Conv3 {
    /// The convolution of `src` (already padded: `[n, ci, d, h, w]`
    /// with `dims = [n, d, h, w]`) into `dst` (`out_shape`).
    fn run(&self, src: &[f32], [_, d, h, w]: [usize; 4], dst: &mut [f32], out_shape: [usize; 5]) {
        use rayon::prelude::*;
        let [n, co, od, oh, ow] = out_shape;
        let k = 27 * self.ci;
        let plane_in = d * h * w;
        let mut offsets = Vec::with_capacity(k);
        for c in 0..self.ci {
            for dz in 0..3 {
                for dy in 0..3 {
                    for dx in 0..3 {
                        offsets.push((c * plane_in + dz * h * w + dy * w + dx) as isize);
                    }
                }
            }
        }
        let plane_out = od * oh * ow;
        assert_eq!(dst.len(), n * co * plane_out);
        assert_eq!(src.len(), n * self.ci * plane_in);
        let out = Out(dst.as_mut_ptr());
        let (mr, nr) = self.kind.block();
        (0..n * od).into_par_iter().for_each(|nz| {
            let (b, z) = (nz / od, nz % od);
            for y in 0..oh {
                let row = &src[b * self.ci * plane_in + z * h * w + y * w..];
                for block in 0..co.div_ceil(mr) {
                    let rows = mr.min(co - block * mr);
                    let weights = &self.packed[block * k * mr..(block + 1) * k * mr];
                    let bias = &self.bias[block * mr..block * mr + rows];
                    let mut x0 = 0;
                    while x0 < ow {
                        let width = nr.min(ow - x0);
                        let at = (b * co + block * mr) * plane_out + (z * oh + y) * ow + x0;
                        // SAFETY: the kernel runs here (checked when the op
                        // was made); every read stays within `src`
                        // (the last term of the last voxel is `row[offsets[k-1]
                        // + x0 + width - 1]`, inside the padded input), and
                        // this task alone writes plane z of image b.
                        unsafe {
                            let block = match self.kind {
                                Kind::Avx512 => kernel::block_avx512,
                                Kind::Avx2 => kernel::block_avx2,
                            };
                            block(
                                row.as_ptr().add(x0),
                                &offsets,
                                weights.as_ptr(),
                                out.get().add(at),
                                plane_out,
                                bias,
                                width,
                                self.relu,
                            );
                        }
                        x0 += width;
                    }
                }
            }
        });
    }
}

#[cfg(target_arch = "x86_64")]
mod kernel {
    use super::MR;
    use std::arch::x86_64::*;

    /// The inner loop of a block: for each of the K terms, the two vectors
    /// of voxels at `p` (`loads`) times each row's weight at `w`
    /// (`broadcast`), accumulated with `fmadd` into `acc[row][0..2]`. Each
    /// kernel writes it twice: plain loads for full blocks, masked loads for
    /// a row's last, narrower one.
    /// The end of a block: each row's two accumulators plus its bias, through
    /// the ReLU when fused, written by `write(o, v0, v1)` at the row's output `o`.
    macro_rules! store {
        ($acc:ident, $bias:ident, $relu:ident, $dst:ident, $stride:ident;
         $zero:expr, $set1:path, $add:path, $max:path; |$o:ident, $v0:ident, $v1:ident| $write:block) => {
            let zero = $zero;
            for (r, (acc, &b)) in $acc.iter().zip($bias).enumerate() {
                let bv = $set1(b);
                let mut $v0 = $add(acc[0], bv);
                let mut $v1 = $add(acc[1], bv);
                if $relu {
                    $v0 = $max($v0, zero);
                    $v1 = $max($v1, zero);
                }
                let $o = $dst.add(r * $stride);
                $write
            }
        };
    }

    macro_rules! accumulate {
        ($acc:ident, $src:ident, $offsets:ident, $a:ident, $rows:expr;
         |$p:ident| ($load0:expr, $load1:expr); |$w:ident| $broadcast:expr; $fmadd:path) => {
            for (t, &off) in $offsets.iter().enumerate() {
                let $p = $src.offset(off);
                let b0 = $load0;
                let b1 = $load1;
                let w = $a.add(t * $rows);
                for (r, acc) in $acc.iter_mut().enumerate() {
                    let $w = w.add(r);
                    let av = $broadcast;
                    acc[0] = $fmadd(av, b0, acc[0]);
                    acc[1] = $fmadd(av, b1, acc[1]);
                }
            }
        };
    }

    /// One block: `rows` (≤ MR) output channels × `width` (≤ 32) voxels of
    /// one output row. `src` is the input at the block's first voxel of
    /// channel 0, row (z, y); `offsets` the K terms; `a` the block's
    /// packed weights `[K][MR]`; `dst` the first output voxel of the first
    /// channel, channels `stride` apart.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn block_avx512(
        src: *const f32,
        offsets: &[isize],
        a: *const f32,
        dst: *mut f32,
        stride: usize,
        bias: &[f32],
        width: usize,
        relu: bool,
    ) {
        let m0: __mmask16 = if width >= 16 {
            0xFFFF
        } else {
            (1u32 << width) as u16 - 1
        };
        let m1: __mmask16 = if width >= 32 {
            0xFFFF
        } else if width > 16 {
            (1u32 << (width - 16)) as u16 - 1
        } else {
            0
        };
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        if width == 32 {
            accumulate!(acc, src, offsets, a, MR; |p| (_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16)));
                |w| _mm512_set1_ps(*w); _mm512_fmadd_ps);
        } else {
            accumulate!(acc, src, offsets, a, MR; |p| (_mm512_maskz_loadu_ps(m0, p), _mm512_maskz_loadu_ps(m1, p.add(16)));
                |w| _mm512_set1_ps(*w); _mm512_fmadd_ps);
        }
        store!(acc, bias, relu, dst, stride; _mm512_setzero_ps(), _mm512_set1_ps, _mm512_add_ps, _mm512_max_ps;
            |o, v0, v1| { _mm512_mask_storeu_ps(o, m0, v0); _mm512_mask_storeu_ps(o.add(16), m1, v1); });
    }

    /// One block of the AVX2 kernel: `rows` (≤ 6) output channels ×
    /// `width` (≤ 16) voxels, arguments as [`block_avx512`]'s, weights
    /// packed `[K][6]`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn block_avx2(
        src: *const f32,
        offsets: &[isize],
        a: *const f32,
        dst: *mut f32,
        stride: usize,
        bias: &[f32],
        width: usize,
        relu: bool,
    ) {
        const R: usize = 6;
        let lane = |i: usize| if i < width { -1i32 } else { 0 };
        let m0 = _mm256_setr_epi32(lane(0), lane(1), lane(2), lane(3), lane(4), lane(5), lane(6), lane(7));
        let m1 = _mm256_setr_epi32(
            lane(8),
            lane(9),
            lane(10),
            lane(11),
            lane(12),
            lane(13),
            lane(14),
            lane(15),
        );
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        if width == 16 {
            accumulate!(acc, src, offsets, a, R; |p| (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8)));
                |w| _mm256_broadcast_ss(&*w); _mm256_fmadd_ps);
        } else {
            accumulate!(acc, src, offsets, a, R; |p| (_mm256_maskload_ps(p, m0), _mm256_maskload_ps(p.add(8), m1));
                |w| _mm256_broadcast_ss(&*w); _mm256_fmadd_ps);
        }
        store!(acc, bias, relu, dst, stride; _mm256_setzero_ps(), _mm256_set1_ps, _mm256_add_ps, _mm256_max_ps;
            |o, v0, v1| { _mm256_maskstore_ps(o, m0, v0); _mm256_maskstore_ps(o.add(8), m1, v1); });
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod kernel {
    /// Never called: no kernel runs off x86-64 ([`super::best`] is None).
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn block_avx512(
        _src: *const f32,
        _offsets: &[isize],
        _a: *const f32,
        _dst: *mut f32,
        _stride: usize,
        _bias: &[f32],
        _width: usize,
        _relu: bool,
    ) {
        unreachable!("the 3×3×3 kernels need x86-64")
    }

    pub use block_avx512 as block_avx2;
}

/// `model` with every 3×3×3 Conv (stride 1, no dilation, one group,
/// padding 0 or 1, constant weights and bias) replaced by [`OP_TYPE`],
/// fused with a Relu that alone reads it, to run on `kind`'s kernel (which
/// must run here); and how many were replaced.
pub fn rewrite(model: &ModelProto, kind: Kind) -> (ModelProto, usize) {
    let mut out = model.clone();
    let Some(g) = out.graph.as_mut() else {
        return (out, 0);
    };
    let view = View::new(g);
    let mut replaced: Vec<(usize, Option<usize>, NodeProto, Vec<tract_onnx::pb::TensorProto>)> = Vec::new();
    for (i, n) in g.node.iter().enumerate() {
        if !plain(n) || n.op_type != "Conv" || n.output.len() != 1 {
            continue;
        }
        let Some(pad) = three_cubed_stride_one(n) else {
            continue;
        };
        let Some(w) = n.input.get(1).and_then(|w| view.constant(w)) else {
            continue;
        };
        let (Values::F32(weights), [_, _, 3, 3, 3]) = (&w.values, &w.dims[..]) else {
            continue;
        };
        let bias = n.input.get(2).filter(|b| !b.is_empty());
        if bias.is_some_and(|b| view.constant(b).is_none()) {
            continue;
        }
        let out_name = &n.output[0];
        // A Relu that alone reads the output is done as the block is stored.
        let relu = view
            .single_use(out_name)
            .then(|| view.consumer(out_name))
            .flatten()
            .filter(|&j| {
                let r = &g.node[j];
                plain(r) && r.op_type == "Relu" && r.input.len() == 1 && r.output.len() == 1
            });
        let output = relu
            .map(|j| g.node[j].output[0].clone())
            .unwrap_or_else(|| out_name.clone());
        let weight_name = format!("{out_name}.{OP_TYPE}.weight");
        if view.names.contains(weight_name.as_str()) {
            continue;
        }
        let mut inputs = vec![n.input[0].as_str(), weight_name.as_str()];
        let bias_name = bias.map(|b| b.to_string());
        if let Some(b) = &bias_name {
            inputs.push(b);
        }
        let mut node = node_to(
            OP_TYPE,
            &n.name,
            &inputs,
            &output,
            vec![
                attr_int("pad", pad),
                attr_int("relu", relu.is_some() as i64),
                attr_str("kernel", kind.name()),
            ],
        );
        node.domain = DOMAIN.into();
        let mut bias_init = Vec::new();
        // A bias behind a Cast is written as f32 too.
        if let Some(b) = &bias_name {
            if !view.initializers.contains_key(b.as_str()) {
                let c = view.constant(b).expect("checked above");
                let Values::F32(v) = &c.values else { continue };
                let name = format!("{out_name}.{OP_TYPE}.bias");
                node.input[2] = name.clone();
                bias_init.push(f32_tensor(&name, &c.dims, v));
            }
        }
        let mut inits = vec![f32_tensor(&weight_name, &w.dims, weights)];
        inits.extend(bias_init);
        replaced.push((i, relu, node, inits));
    }
    let count = replaced.len();
    if count == 0 {
        return (out, 0);
    }
    let mut drop = std::collections::HashSet::new();
    let mut at = std::collections::HashMap::new();
    for (i, relu, node, inits) in replaced {
        if let Some(j) = relu {
            drop.insert(j);
        }
        at.insert(i, node);
        g.initializer.extend(inits);
    }
    let nodes = std::mem::take(&mut g.node);
    for (i, n) in nodes.into_iter().enumerate() {
        if let Some(node) = at.remove(&i) {
            g.node.push(node);
        } else if !drop.contains(&i) {
            g.node.push(n);
        }
    }
    super::graph_view::drop_unused_initializers(g);
    if !out.opset_import.iter().any(|o| o.domain == DOMAIN) {
        out.opset_import.push(tract_onnx::pb::OperatorSetIdProto {
            domain: DOMAIN.into(),
            version: 1,
        });
    }
    (out, count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::graph::build::{attr_ints, model};

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }

    /// Conv(ci → co, 3³, pad) [+ Relu] on `[n, ci, d, h, w]`.
    fn conv(ci: usize, co: usize, pad: i64, relu: bool, bias: bool) -> ModelProto {
        let mut inputs = vec!["x", "w"];
        if bias {
            inputs.push("b");
        }
        let mut nodes = vec![node_to(
            "Conv",
            "conv",
            &inputs,
            "conv",
            vec![attr_ints("kernel_shape", &[3; 3]), attr_ints("pads", &[pad; 6])],
        )];
        let mut out = "conv";
        if relu {
            nodes.push(node_to("Relu", "relu", &["conv"], "relu", vec![]));
            out = "relu";
        }
        let mut inits = vec![f32_tensor("w", &[co, ci, 3, 3, 3], &values(co * ci * 27, 5))];
        if bias {
            inits.push(f32_tensor("b", &[co], &values(co, 9)));
        }
        model(nodes, inits, "x", ci, out)
    }

    fn run(m: &ModelProto, shape: [usize; 5]) -> (Vec<usize>, Vec<f32>) {
        let mut onnx = tract_onnx::onnx();
        register(&mut onnx);
        let plan = onnx
            .model_for_proto_model(m)
            .and_then(|m| m.with_input_fact(0, f32::fact(shape).into()))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .unwrap();
        let x = tract_ndarray::ArrayD::from_shape_vec(shape.to_vec(), values(shape.iter().product(), 1)).unwrap();
        let out = plan.run(tvec!(Tensor::from(x).into())).unwrap();
        let v = out[0].to_plain_array_view::<f32>().unwrap();
        (v.shape().to_vec(), v.iter().copied().collect())
    }

    #[test]
    fn packing_puts_each_output_channel_in_its_block_row() {
        // co = 9: two blocks, the second with one channel and 7 zero rows.
        let (co, ci) = (9, 2);
        let w: Vec<f32> = (0..co * ci * 27).map(|i| i as f32).collect();
        let p = pack(&w, co, ci, MR);
        assert_eq!(p.len(), 2 * 54 * MR);
        // channel 3, term 10 → block 0, row 3
        assert_eq!(p[10 * MR + 3], (3 * 54 + 10) as f32);
        // channel 8, term 53 → block 1, row 0
        assert_eq!(p[(54 + 53) * MR], (8 * 54 + 53) as f32);
        assert_eq!(p[(54 + 53) * MR + 1], 0.0);
    }

    /// The op with `kind`'s kernel run directly on the test input.
    fn direct(kind: Kind, ci: usize, co: usize, pad: usize, relu: bool, bias: bool, shape: [usize; 5]) -> Vec<f32> {
        let op = Conv3 {
            ci,
            co,
            pad,
            relu,
            kind,
            packed: Arc::new(pack(&values(co * ci * 27, 5), co, ci, kind.block().0)),
            bias: Arc::new(if bias { values(co, 9) } else { vec![0.0; co] }),
        };
        let x = tract_ndarray::ArrayD::from_shape_vec(shape.to_vec(), values(shape.iter().product(), 1)).unwrap();
        let out = op
            .eval(&EvalContext::out_of_plan(), tvec!(Tensor::from(x).into_tvalue()))
            .unwrap();
        out[0].to_plain_array_view::<f32>().unwrap().iter().copied().collect()
    }

    /// Channel counts off the block sizes, widths with a partial block or
    /// below one vector and over two blocks, both paddings, with and without
    /// bias and ReLU, a batch of two.
    const CASES: [(usize, usize, usize, bool, bool, [usize; 5]); 6] = [
        (3, 11, 1, true, true, [1, 3, 7, 9, 37]),
        (1, 8, 0, false, true, [1, 1, 6, 5, 34]),
        (5, 16, 1, false, false, [2, 5, 4, 6, 5]),
        (4, 3, 0, true, false, [1, 4, 5, 4, 66]),
        (2, 9, 1, true, true, [1, 2, 3, 3, 16]),
        (2, 13, 1, false, true, [1, 2, 3, 4, 23]),
    ];

    #[test]
    fn each_kernel_computes_tracts_convolution() {
        let kinds: Vec<Kind> = [Kind::Avx512, Kind::Avx2]
            .into_iter()
            .filter(|k| k.runs_here())
            .collect();
        if kinds.is_empty() {
            // Without a kernel the rewrite must leave the graph alone.
            assert!(best().is_none());
            eprintln!("no AVX2 or AVX-512 here: the kernels are not exercised");
            return;
        }
        for (ci, co, pad, relu, bias, shape) in CASES {
            let (_, expected) = run(&conv(ci, co, pad as i64, relu, bias), shape);
            for &kind in &kinds {
                let got = direct(kind, ci, co, pad, relu, bias, shape);
                assert_eq!(got.len(), expected.len());
                let worst = got
                    .iter()
                    .zip(&expected)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f32::max);
                assert!(
                    worst < 1e-4,
                    "{kind:?}, {ci}→{co}, pad {pad}, {shape:?}: largest difference {worst}"
                );
                if relu {
                    assert!(got.iter().all(|&v| v >= 0.0));
                }
            }
        }
    }

    #[test]
    fn the_rewritten_graph_computes_the_same_scores() {
        if !available() {
            return; // each_kernel_computes_tracts_convolution checks the rewrite is skipped
        }
        for (ci, co, pad, relu, bias, shape) in CASES {
            let m = conv(ci, co, pad as i64, relu, bias);
            let (r, count) = rewrite(&m, best().unwrap());
            assert_eq!(count, 1);
            let ops: Vec<&str> = r
                .graph
                .as_ref()
                .unwrap()
                .node
                .iter()
                .map(|n| n.op_type.as_str())
                .collect();
            assert_eq!(ops, [OP_TYPE], "the Relu is fused");
            let (s1, a) = run(&m, shape);
            let (s2, b) = run(&r, shape);
            assert_eq!(s1, s2);
            let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
            assert!(
                worst < 1e-4,
                "{ci}→{co}, pad {pad}, {shape:?}: largest difference {worst}"
            );
        }
    }

    #[test]
    fn other_convolutions_are_left_to_tract() {
        for (name, v) in [
            ("strides", vec![2i64; 3]),
            ("pads", vec![2; 6]),
            ("dilations", vec![2; 3]),
            ("kernel_shape", vec![1; 3]),
        ] {
            let mut m = conv(2, 3, 1, false, true);
            let c = &mut m.graph.as_mut().unwrap().node[0];
            c.attribute.retain(|a| a.name != name);
            c.attribute.push(attr_ints(name, &v));
            assert_eq!(rewrite(&m, Kind::Avx2).1, 0, "{name}");
        }
        // A Relu reading a conv whose output is also a graph output stays.
        let mut m = conv(2, 3, 1, true, true);
        let g = m.graph.as_mut().unwrap();
        g.output.push(g.output[0].clone());
        g.output[1].name = "conv".into();
        let (r, count) = rewrite(&m, Kind::Avx2);
        assert_eq!(count, 1);
        let ops: Vec<&str> = r
            .graph
            .as_ref()
            .unwrap()
            .node
            .iter()
            .map(|n| n.op_type.as_str())
            .collect();
        assert_eq!(ops, [OP_TYPE, "Relu"]);
    }
}
