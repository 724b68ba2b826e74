//! The CPU backend: tract runs the ONNX graph, with one optimised plan per
//! tile shape, built once and reused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ndarray::{Array3, Array4};
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;

use crate::softmax::softmax_channels;

/// Set how many threads tract's matrix kernels use (process-wide). One
/// thread is tract's single-thread executor: a one-thread pool would make
/// tract fall back to rayon's global pool, which has a thread per core.
pub fn set_threads(n: usize) {
    use tract_linalg::multithread::{set_default_executor, Executor};
    set_default_executor(if n <= 1 {
        Executor::SingleThread
    } else {
        Executor::multithread(n)
    });
}

/// A model prepared for tract.
pub struct TractBackend {
    proto: ModelProto,
    plans: Mutex<HashMap<[usize; 3], Arc<TypedRunnableModel>>>,
    classes: usize,
    /// The graph's final Softmax was cut off and is applied by
    /// [`softmax_channels`] instead.
    softmax_after: bool,
}

impl TractBackend {
    pub fn new(proto: &ModelProto, classes: usize) -> TractBackend {
        let (proto, softmax_after) = match without_final_softmax(proto) {
            Some(cut) => (cut, true),
            None => (proto.clone(), false),
        };
        TractBackend {
            proto,
            plans: Mutex::new(HashMap::new()),
            classes,
            softmax_after,
        }
    }

    /// The optimised plan for a tile shape (built on first use).
    pub fn plan(&self, shape: [usize; 3]) -> Result<Arc<TypedRunnableModel>, String> {
        if let Some(p) = self.plans.lock().unwrap().get(&shape) {
            return Ok(p.clone());
        }
        let plan = tract_onnx::onnx()
            .model_for_proto_model(&self.proto)
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

/// The graph without its last node when that node is a Softmax over the
/// class axis (axis 1 of the 5-D output) producing the only output, so the
/// graph ends at the logits. tract's Softmax over a non-innermost axis walks
/// the tensor voxel by voxel, single-threaded, and took about half of a
/// whole scan's time; [`softmax_channels`] computes the same function plane
/// by plane on all threads.
fn without_final_softmax(proto: &ModelProto) -> Option<ModelProto> {
    let graph = proto.graph.as_ref()?;
    let [output] = graph.output.as_slice() else {
        return None;
    };
    let last = graph.node.last()?;
    if last.op_type != "Softmax" || last.output.as_slice() != [output.name.clone()] || last.input.len() != 1 {
        return None;
    }
    let axis = last.attribute.iter().find(|a| a.name == "axis").map(|a| a.i);
    let tract_onnx::pb::type_proto::Value::TensorType(t) = output.r#type.as_ref()?.value.as_ref()?;
    let rank = t.shape.as_ref()?.dim.len() as i64;
    // Without an axis attribute the default depends on the opset: only cut
    // when the axis is spelled out.
    if rank != 5 || !(axis == Some(1) || axis == Some(1 - rank)) {
        return None;
    }
    let logits = &last.input[0];
    let used_elsewhere = graph.node[..graph.node.len() - 1]
        .iter()
        .any(|n| n.input.iter().any(|i| i == logits));
    if used_elsewhere {
        return None;
    }
    let mut cut = proto.clone();
    let g = cut.graph.as_mut()?;
    g.node.pop();
    g.output[0].name = logits.clone();
    Some(cut)
}
