//! Adam and AdamW over every trained parameter at once.
//!
//! burn's optimiser updates each parameter tensor on its own, about twelve
//! tensor operations a tensor; on a GPU each is a kernel launch, and a small
//! network's step is bound by launches (BENCHMARKS.md counts 683 a step for
//! the default spec, against PyTorch's 133). Here the gradients of the
//! trained parameters are joined into one vector, the update runs once over
//! it, and the new values are cut back into the parameters' shapes as views
//! of that vector: about fourteen operations a step whatever the number of
//! tensors. The arithmetic is burn's `Adam` / `AdamW`, element for element
//! and in the same order (the tests compare the two).
//!
//! The moments are kept as two vectors laid out by parameter (visit order);
//! [`Adam::to_bytes`] writes them with that layout as safetensors, the
//! `optimizer.safetensors` of a checkpoint.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use edge_seg_export::checkpoint::{read_safetensors, safetensors_bytes_with_metadata};
use edge_seg_export::Tensor as WeightTensor;
use safetensors::SafeTensors;

use super::OptimizerKind;

const BETA_1: f32 = 0.9;
const BETA_2: f32 = 0.999;
const EPSILON: f32 = 1e-8;
/// Names this file format in the safetensors metadata.
const FORMAT: &str = "edge-seg adam 1";

/// Adam (or AdamW, decoupled weight decay) with β = (0.9, 0.999), ε = 1e-8.
pub struct Adam {
    kind: OptimizerKind,
    state: Option<Moments>,
}

struct Moments {
    /// The trained parameters and their element counts, in visit order.
    layout: Vec<(ParamId, usize)>,
    /// Steps taken.
    time: i32,
    moment_1: Moment,
    moment_2: Moment,
}

/// A moment vector: on a device, or read from a checkpoint and not yet
/// placed (it goes to the gradients' device at the next step).
enum Moment {
    On(Tensor<1>),
    Read(TensorData),
}

impl Moment {
    fn on(self, device: &Device) -> Tensor<1> {
        match self {
            Moment::On(t) => t,
            Moment::Read(d) => Tensor::from_data(d, device),
        }
    }
}

impl Adam {
    pub fn new(kind: OptimizerKind) -> Self {
        Adam { kind, state: None }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> i32 {
        self.state.as_ref().map_or(0, |s| s.time)
    }

    /// One update of `module`'s parameters that have a gradient in `grads`,
    /// at learning rate `lr`. Parameters without one (frozen) are left as
    /// they are. A different set of trained parameters from the last step's
    /// starts the moments over.
    pub fn step<M: Module>(&mut self, lr: f64, module: M, mut grads: GradientsParams) -> M {
        let mut gather = Gather {
            grads: &mut grads,
            layout: Vec::new(),
            grad: Vec::new(),
            value: Vec::new(),
        };
        module.visit(&mut gather);
        let Gather {
            layout, grad, value, ..
        } = gather;
        if layout.is_empty() {
            return module;
        }
        let g = Tensor::cat(grad, 0);
        let p = Tensor::cat(value, 0);
        let device = g.device();
        let (b1, b2) = (BETA_1, BETA_2);
        let (time, m, v) = match self.state.take() {
            Some(s) if s.layout == layout => (
                s.time + 1,
                s.moment_1
                    .on(&device)
                    .mul_scalar(b1)
                    .add(g.clone().mul_scalar(1.0 - b1)),
                s.moment_2
                    .on(&device)
                    .mul_scalar(b2)
                    .add(g.square().mul_scalar(1.0 - b2)),
            ),
            _ => (1, g.clone().mul_scalar(1.0 - b1), g.square().mul_scalar(1.0 - b2)),
        };
        let updated = match self.kind {
            OptimizerKind::Adam => {
                let bias_correction2_sqrt = (1.0 - b2.powi(time)).sqrt();
                let combined_factor = bias_correction2_sqrt / (1.0 - b1.powi(time));
                let delta = m
                    .clone()
                    .mul_scalar(combined_factor)
                    .div(v.clone().sqrt().add_scalar(EPSILON * bias_correction2_sqrt));
                p - delta.mul_scalar(lr)
            }
            OptimizerKind::AdamW { weight_decay } => {
                let delta = m
                    .clone()
                    .div_scalar(1.0 - b1.powi(time))
                    .div(v.clone().div_scalar(1.0 - b2.powi(time)).sqrt().add_scalar(EPSILON));
                let decay_rate = lr * weight_decay as f64;
                let decayed = if decay_rate == 0.0 {
                    p
                } else {
                    p.mul_scalar(1.0 - decay_rate)
                };
                decayed - delta.mul_scalar(lr)
            }
        };
        let mut offsets = HashMap::new();
        let mut offset = 0;
        for &(id, n) in &layout {
            offsets.insert(id, (offset, n));
            offset += n;
        }
        self.state = Some(Moments {
            layout,
            time,
            moment_1: Moment::On(m),
            moment_2: Moment::On(v),
        });
        module.map(&mut Scatter { flat: updated, offsets })
    }

    /// The state as safetensors bytes: the two moment vectors, with the
    /// step count and the parameter layout in the metadata.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut meta = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("optimizer".to_string(), serde_json::to_string(&self.kind)?),
        ]);
        let mut tensors = BTreeMap::new();
        if let Some(s) = &self.state {
            meta.insert("time".into(), s.time.to_string());
            let layout: Vec<String> = s.layout.iter().map(|(id, n)| format!("{}:{n}", id.val())).collect();
            meta.insert("layout".into(), layout.join(","));
            for (name, m) in [("moment_1", &s.moment_1), ("moment_2", &s.moment_2)] {
                let data = match m {
                    Moment::On(t) => t.to_data(),
                    Moment::Read(d) => d.clone(),
                };
                let values = data.try_to_vec::<f32>().map_err(|e| anyhow!("moment vector: {e:?}"))?;
                tensors.insert(
                    name.to_string(),
                    WeightTensor {
                        shape: vec![values.len()],
                        values,
                    },
                );
            }
        }
        Ok(safetensors_bytes_with_metadata(&tensors, Some(meta)))
    }

    /// The state written by [`Adam::to_bytes`] (read from `path`), for the
    /// same optimiser.
    pub fn from_bytes(mut self, path: &Path, bytes: &[u8]) -> Result<Self> {
        let (_, header) = SafeTensors::read_metadata(bytes).context("not a safetensors file")?;
        let meta: BTreeMap<String, String> = header.metadata().clone().unwrap_or_default().into_iter().collect();
        if meta.get("format").map(String::as_str) != Some(FORMAT) {
            bail!("not an edge-seg optimiser state (written by another version of edge-seg-train?)");
        }
        let kind: OptimizerKind = serde_json::from_str(meta.get("optimizer").map_or("", |s| s.as_str()))
            .context("no optimiser named in its metadata")?;
        if kind != self.kind {
            bail!("the state of {kind:?}, not of {:?}", self.kind);
        }
        let Some(time) = meta.get("time") else {
            self.state = None;
            return Ok(self);
        };
        let time: i32 = time.parse().context("a step count that is not a number")?;
        let layout = meta
            .get("layout")
            .ok_or_else(|| anyhow!("no parameter layout in its metadata"))?
            .split(',')
            .map(|e| {
                let (id, n) = e.split_once(':')?;
                Some((ParamId::from(id.parse::<u64>().ok()?), n.parse::<usize>().ok()?))
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| anyhow!("a parameter layout that does not parse"))?;
        let total: usize = layout.iter().map(|(_, n)| n).sum();
        let mut tensors = read_safetensors(path, bytes)?;
        let mut moment = |name: &str| -> Result<Moment> {
            match tensors.remove(name) {
                Some(t) if t.shape == [total] => Ok(Moment::Read(TensorData::new(t.values, [total]))),
                _ => bail!("{name}: expected {total} f32 values for the layout"),
            }
        };
        self.state = Some(Moments {
            layout,
            time,
            moment_1: moment("moment_1")?,
            moment_2: moment("moment_2")?,
        });
        Ok(self)
    }
}

/// The trained parameters' gradients and values, flattened, in visit order.
struct Gather<'a> {
    grads: &'a mut GradientsParams,
    layout: Vec<(ParamId, usize)>,
    grad: Vec<Tensor<1>>,
    value: Vec<Tensor<1>>,
}

impl ModuleVisitor for Gather<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            let n = g.shape().num_elements();
            self.layout.push((param.id, n));
            self.grad.push(g.reshape([n]));
            self.value.push(param.val().inner().reshape([n]));
        }
    }
}

/// Each trained parameter's new value: its range of the updated vector.
struct Scatter {
    flat: Tensor<1>,
    offsets: HashMap<ParamId, (usize, usize)>,
}

impl ModuleMapper for Scatter {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(&(offset, n)) = self.offsets.get(&param.id) else {
            return param;
        };
        let (id, tensor, mapper) = param.consume();
        let value = self.flat.clone().narrow(0, offset, n).reshape(tensor.shape());
        Param::from_mapped_value(id, Tensor::from_inner(value).require_grad(), mapper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::{loss, BatchLabels, LossKind, LossWeights};
    use crate::train::tiny_spec;
    use crate::unet::UNet;
    use burn::optim::{AdamConfig, AdamWConfig};
    use edge_seg_models::spec::Norm;

    /// The gradients of a fixed batch's loss (changing with the weights).
    fn grads(model: &UNet, device: &Device) -> GradientsParams {
        let p = 8;
        let x = Tensor::<5>::from_data(
            TensorData::new(
                (0..p * p * p)
                    .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
                    .collect::<Vec<_>>(),
                [1, 1, p, p, p],
            ),
            device,
        );
        let targets = BatchLabels {
            labels: (0..p * p * p).map(|i| ((i / 37) % 3) as u8).collect(),
            spatial: [p; 3],
            annotated: vec![vec![1, 2]],
            complete: vec![true],
            classes: 3,
            class_weights: Vec::new(),
        };
        let parts = loss(
            LossKind::Masked,
            model.forward_logits(x),
            &targets,
            LossWeights::default(),
        );
        GradientsParams::from_grads(parts.total.backward(), model)
    }

    fn flat_weights(model: &UNet) -> Vec<f32> {
        model
            .valid()
            .weights()
            .values()
            .flat_map(|w| w.values.clone())
            .collect()
    }

    fn max_relative_difference(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs() / x.abs().max(y.abs()).max(1e-3))
            .fold(0.0, f32::max)
    }

    /// Five steps with varying rates of this optimiser and of burn's, from
    /// the same weights: the same weights after each.
    fn compare(kind: OptimizerKind, norm: Norm) {
        let device = Device::flex().autodiff();
        let s = tiny_spec(3, norm);
        let start = UNet::new(&s, &crate::unet::initial_weights(&s, 3), &device).unwrap();
        let mut burn_optim = match kind {
            OptimizerKind::Adam => AdamConfig::new().with_epsilon(EPSILON).init(),
            OptimizerKind::AdamW { weight_decay } => AdamWConfig::new()
                .with_epsilon(EPSILON)
                .with_weight_decay(weight_decay)
                .init(),
        };
        let mut ours = Adam::new(kind);
        let initial = flat_weights(&start);
        let (mut a, mut b) = (start.clone(), start);
        for step in 0..5 {
            let lr = 1e-2 / (1 + step) as f64;
            let ga = grads(&a, &device);
            let gb = grads(&b, &device);
            a = burn_optim.step(lr, a, ga);
            b = ours.step(lr, b, gb);
            let d = max_relative_difference(&flat_weights(&a), &flat_weights(&b));
            assert!(d < 1e-5, "{kind:?} {norm:?}: step {step}: weights differ by {d:e}");
        }
        assert_eq!(ours.steps(), 5);
        // And the weights did move.
        let moved = max_relative_difference(&flat_weights(&b), &initial);
        assert!(moved > 1e-3, "{kind:?} {norm:?}: the weights moved by {moved:e} only");
    }

    #[test]
    fn adam_matches_burns_adam() {
        compare(OptimizerKind::Adam, Norm::None);
        compare(OptimizerKind::Adam, Norm::Batch);
    }

    #[test]
    fn adamw_matches_burns_adamw() {
        compare(OptimizerKind::AdamW { weight_decay: 0.05 }, Norm::None);
    }

    #[test]
    fn weights_move_and_frozen_parameters_stay() {
        let device = Device::flex().autodiff();
        let s = tiny_spec(3, Norm::None);
        let model = UNet::new(&s, &crate::unet::initial_weights(&s, 3), &device).unwrap();
        let trainable = super::super::Trainable::Tail { layers: 1 };
        let model = super::super::apply_trainable(model, &s, &trainable);
        let before = model.valid().weights();
        let g = grads(&model, &device);
        let after = Adam::new(OptimizerKind::Adam).step(1e-2, model, g).valid().weights();
        let changed: Vec<&String> = before
            .keys()
            .filter(|k| before[*k].values != after[*k].values)
            .collect();
        assert!(!changed.is_empty(), "nothing trained");
        for k in &changed {
            assert!(k.starts_with("head."), "{k} is frozen but changed");
        }
    }

    #[test]
    fn a_state_written_and_read_continues_the_same() {
        let device = Device::flex().autodiff();
        let s = tiny_spec(3, Norm::None);
        let start = UNet::new(&s, &crate::unet::initial_weights(&s, 5), &device).unwrap();
        let kind = OptimizerKind::Adam;
        let mut one = Adam::new(kind);
        let mut model = start;
        for _ in 0..2 {
            let g = grads(&model, &device);
            model = one.step(1e-2, model, g);
        }
        let bytes = one.to_bytes().unwrap();
        let path = Path::new("optimizer.safetensors");
        let mut two = Adam::new(kind).from_bytes(path, &bytes).unwrap();
        assert_eq!(two.steps(), 2);
        let g1 = grads(&model, &device);
        let g2 = grads(&model, &device);
        let a = one.step(1e-2, model.clone(), g1);
        let b = two.step(1e-2, model, g2);
        assert_eq!(flat_weights(&a), flat_weights(&b));
        // Another optimiser's state, and something else, are refused.
        let adamw = Adam::new(OptimizerKind::AdamW { weight_decay: 0.1 }).from_bytes(path, &bytes);
        let e = adamw.err().expect("AdamW refuses Adam's state");
        assert!(e.to_string().contains("not of AdamW"), "{e}");
        let junk = Adam::new(kind).from_bytes(path, b"not a state");
        assert!(junk.is_err());
        // A fresh optimiser's state reads back as fresh.
        let empty = Adam::new(kind).to_bytes().unwrap();
        assert_eq!(Adam::new(kind).from_bytes(path, &empty).unwrap().steps(), 0);
    }
}
