//! The CPU backend: tract runs the ONNX graph, with one optimised plan per
//! tile shape, built once and reused. Exactly equivalent rewrites of the
//! graph come first, each cutting what tract does slowly:
//!
//! - [`final_softmax`]: the final class Softmax is computed by edge-seg;
//! - [`upsample_conv`]: nearest upsampling, concatenation and convolution
//!   become a convolution of the low resolution computing the 8 output
//!   parities, interleaved, plus a convolution of the skip;
//! - [`conv3`]: 3×3×3 convolutions (with a following ReLU) run on our own
//!   kernel where the CPU has AVX-512.
//!
//! [`graph_view`] indexes a graph for them.

pub mod conv3;
pub mod final_softmax;
pub mod graph_view;
pub mod upsample_conv;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ndarray::{Array3, Array4};
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;

use self::final_softmax::without_final_softmax;
use crate::scores::softmax_channels;

/// Set how many threads tract's matrix kernels use (process-wide). One
/// thread is tract's single-thread executor: a one-thread pool would make
/// tract fall back to rayon's global pool.
pub fn set_threads(n: usize) {
    use tract_linalg::multithread::{set_default_executor, Executor};
    set_default_executor(if n <= 1 {
        Executor::SingleThread
    } else {
        Executor::multithread(n)
    });
}

/// Which rewrites [`TractBackend::with_rewrites`] makes.
#[derive(Debug, Clone, Copy)]
pub struct Rewrites {
    /// Decoder upsampling as parity convolutions ([`upsample_conv`]).
    pub upsample: bool,
    /// 3×3×3 convolutions on this kernel ([`conv3`]); None: tract's.
    pub convs: Option<conv3::Kind>,
}

impl Default for Rewrites {
    /// Every rewrite, with the best kernel this CPU runs.
    fn default() -> Rewrites {
        Rewrites {
            upsample: true,
            convs: conv3::best(),
        }
    }
}

/// The graph [`TractBackend::plan`] hands tract for a tile shape (after the
/// final Softmax cut): the decoder rewrite, then the convolution rewrite
/// (to `rewrites.convs`, which must run here for the plan to be built), with
/// how many steps and convolutions each rewrote. Any graph comes back
/// rewritten or unchanged, never a panic (fuzzed: `fuzz/fuzz_targets/rewrites.rs`).
pub fn rewrite_for_tile(proto: &ModelProto, tile: [usize; 3], rewrites: Rewrites) -> (ModelProto, usize, usize) {
    let (proto, upsampled) = if rewrites.upsample {
        upsample_conv::rewrite(proto, &upsample_conv::low_res_sizes(proto, tile))
    } else {
        (proto.clone(), 0)
    };
    let (proto, convs) = match rewrites.convs {
        Some(kind) => conv3::rewrite(&proto, kind),
        None => (proto, 0),
    };
    (proto, upsampled, convs)
}

/// A model prepared for tract.
pub struct TractBackend {
    /// The graph as read, less a final Softmax; the rewrites are made for
    /// each tile shape in [`TractBackend::plan`].
    proto: ModelProto,
    rewrites: Rewrites,
    plans: Mutex<HashMap<[usize; 3], Arc<TypedRunnableModel>>>,
    classes: usize,
    /// The graph's final Softmax was cut off and is applied by
    /// [`softmax_channels`] instead.
    softmax_after: bool,
    /// Decoder steps [`upsample_conv`] rewrote and convolutions on
    /// [`conv3`]'s kernel, in the last plan built.
    rewritten: Mutex<(usize, usize)>,
}

impl TractBackend {
    pub fn new(proto: &ModelProto, classes: usize) -> TractBackend {
        Self::with_rewrites(proto, classes, Rewrites::default())
    }

    /// With the rewrites `rewrites` asks for (all by default; fewer to
    /// measure what each gains).
    pub fn with_rewrites(proto: &ModelProto, classes: usize, rewrites: Rewrites) -> TractBackend {
        let (proto, softmax_after) = match without_final_softmax(proto) {
            Some(cut) => (cut, true),
            None => (proto.clone(), false),
        };
        TractBackend {
            proto,
            rewrites: Rewrites {
                upsample: rewrites.upsample,
                convs: rewrites.convs.filter(|k| k.runs_here()),
            },
            plans: Mutex::new(HashMap::new()),
            classes,
            softmax_after,
            rewritten: Mutex::new((0, 0)),
        }
    }

    /// How many decoder upsampling steps run as parity convolutions
    /// ([`upsample_conv`]) in the last plan built (0 before the first tile).
    pub fn upsample_rewrites(&self) -> usize {
        self.rewritten.lock().unwrap().0
    }

    /// How many convolutions run on our own kernel ([`conv3`]) in the last
    /// plan built (0 before the first tile).
    pub fn own_convs(&self) -> usize {
        self.rewritten.lock().unwrap().1
    }

    /// The graph rewritten for a tile shape.
    fn rewritten_for(&self, shape: [usize; 3]) -> ModelProto {
        let (proto, upsampled, convs) = rewrite_for_tile(&self.proto, shape, self.rewrites);
        *self.rewritten.lock().unwrap() = (upsampled, convs);
        proto
    }

    /// Whether the graph's final Softmax was cut off and is computed by
    /// [`softmax_channels`] after tract's run.
    pub fn computes_softmax(&self) -> bool {
        self.softmax_after
    }

    /// The optimised plan for a tile shape (built on first use).
    pub fn plan(&self, shape: [usize; 3]) -> Result<Arc<TypedRunnableModel>, String> {
        if let Some(p) = self.plans.lock().unwrap().get(&shape) {
            return Ok(p.clone());
        }
        let proto = self.rewritten_for(shape);
        let mut onnx = tract_onnx::onnx();
        conv3::register(&mut onnx);
        let plan = onnx
            .model_for_proto_model(&proto)
            .and_then(|m| m.with_input_fact(0, f32::fact([1, 1, shape[0], shape[1], shape[2]]).into()))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| format!("tract cannot prepare the model for a {shape:?} tile: {e:#}"))?;
        self.plans.lock().unwrap().insert(shape, plan.clone());
        Ok(plan)
    }

    /// Run one tile: `[z, y, x]` → scores `[C, z', y', x']`.
    pub fn run(&self, input: &Array3<f32>) -> Result<Array4<f32>, String> {
        let (z, y, x) = input.dim();
        let plan = self.plan([z, y, x])?;
        let data = input.as_standard_layout().iter().copied().collect::<Vec<f32>>();
        let t = tract_ndarray::Array5::from_shape_vec((1, 1, z, y, x), data).map_err(|e| e.to_string())?;
        let out = plan
            .run(tvec!(Tensor::from(t).into()))
            .map_err(|e| format!("tract failed on a tile: {e:#}"))?;
        let view = out[0]
            .to_plain_array_view::<f32>()
            .map_err(|e| format!("unexpected output type: {e}"))?;
        let s = view.shape().to_vec();
        if s.len() != 5 || s[0] != 1 || s[1] != self.classes {
            return Err(format!(
                "the model returned shape {s:?}, expected [1, {}, d, h, w]",
                self.classes
            ));
        }
        let values: Vec<f32> = view.iter().copied().collect();
        let mut scores = Array4::from_shape_vec((s[1], s[2], s[3], s[4]), values).map_err(|e| e.to_string())?;
        if self.softmax_after {
            softmax_channels(&mut scores);
        }
        Ok(scores)
    }
}
