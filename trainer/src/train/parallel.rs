//! One training step's gradients over one device or several (data
//! parallel, `--devices`): the batch is split into one share per device,
//! each share runs forward, loss and backward on a replica of the model on
//! its device (all at once, one thread per device), the gradients are moved
//! to the first device and added, and the caller takes one optimiser step
//! there. This is burn-train's `MultiDevice` pattern in our own loop, so it
//! works on every backend, and across backends (e.g. Flex beside LibTorch).
//!
//! Each share's loss terms are rescaled from their own divisors to the whole
//! batch's ([`Denominator::scales`]), so the summed gradient is the gradient
//! of the whole batch's loss: a step on N devices equals a step on one
//! device over the same batch, up to rounding, for networks without batch
//! normalisation. With batch normalisation each device normalises its own
//! share (as PyTorch's DistributedDataParallel does without SyncBatchNorm),
//! and burn averages the devices' running statistics.

use anyhow::{anyhow, bail, Result};
use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;

use crate::loss::{loss, BatchLabels, Denominator, LossKind, LossParts, LossWeights};
use crate::unet::UNet;

/// The whole batch's loss and its terms, as the optimiser sees them.
#[derive(Clone, Copy, Debug)]
pub struct StepLoss {
    pub total: f64,
    pub dice: f64,
    pub ce: f64,
}

/// A batch of patches and their labels.
pub struct Batch<'a> {
    /// `[B, 1, z, y, x]` flattened.
    pub images: &'a [f32],
    pub patch: [usize; 3],
    pub targets: &'a BatchLabels,
}

/// How many images each of `devices` devices takes from a batch of `batch`
/// (as even as possible, the first devices one more).
pub fn shares(batch: usize, devices: usize) -> Vec<usize> {
    (0..devices)
        .map(|i| batch / devices + usize::from(i < batch % devices))
        .collect()
}

/// The autodiff devices of a step: `main` (which holds the model) first,
/// then `more`.
pub fn step_devices(main: &Device, more: &[Device]) -> Vec<Device> {
    std::iter::once(main)
        .chain(more)
        .map(|d| d.clone().autodiff())
        .collect()
}

/// Refuse a batch that cannot give every one of `devices` an image.
pub fn check_split(batch: usize, devices: usize) -> Result<()> {
    if devices == 0 {
        bail!("no training device");
    }
    if devices > batch {
        bail!("a batch of {batch} cannot be split across {devices} devices: use --batch {devices} or more");
    }
    Ok(())
}

/// The gradients of `model` (on `devices[0]`, an autodiff device) for
/// `batch`, computed on every one of `devices`.
pub fn gradients(
    model: &UNet,
    batch: &Batch,
    kind: LossKind,
    weights: LossWeights,
    devices: &[Device],
) -> Result<(GradientsParams, StepLoss)> {
    let b = batch.targets.complete.len();
    check_split(b, devices.len())?;
    let [pz, py, px] = batch.patch;
    let image = pz * py * px;
    if devices.len() == 1 {
        let x = Tensor::<5>::from_data(TensorData::new(batch.images.to_vec(), [b, 1, pz, py, px]), &devices[0]);
        let parts = loss(kind, model.forward_logits(x), batch.targets, weights);
        let grads = GradientsParams::from_grads(parts.total.backward(), model);
        let l = StepLoss {
            total: parts.total.into_scalar::<f32>() as f64,
            dice: parts.dice.into_scalar::<f32>() as f64,
            ce: parts.ce.into_scalar::<f32>() as f64,
        };
        return Ok((grads, l));
    }
    let sizes = shares(b, devices.len());
    let mut starts = vec![0];
    for s in &sizes {
        starts.push(starts.last().unwrap() + s);
    }
    // Forward and loss on every device at once.
    let forwards: Vec<(UNet, LossParts)> = std::thread::scope(|scope| {
        let handles: Vec<_> = devices
            .iter()
            .enumerate()
            .map(|(i, device)| {
                let replica = if i == 0 {
                    model.clone()
                } else {
                    model.clone().fork(device)
                };
                let (lo, hi) = (starts[i], starts[i + 1]);
                let images = batch.images[lo * image..hi * image].to_vec();
                let targets = batch.targets.images(lo..hi);
                scope.spawn(move || {
                    let x = Tensor::<5>::from_data(TensorData::new(images, [hi - lo, 1, pz, py, px]), device);
                    let parts = loss(kind, replica.forward_logits(x), &targets, weights);
                    (replica, parts)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join())
            .collect::<std::result::Result<_, _>>()
    })
    .map_err(|_| anyhow!("a training device failed during the forward pass"))?;
    let dice_dens: Vec<Denominator> = forwards.iter().map(|(_, p)| p.dice_den).collect();
    let ce_dens: Vec<Denominator> = forwards.iter().map(|(_, p)| p.ce_den).collect();
    let dice_scales = Denominator::scales(&dice_dens, Denominator::whole(&dice_dens, true));
    let ce_scales = Denominator::scales(&ce_dens, Denominator::whole(&ce_dens, false));
    // Backward on every device at once; gradients moved to the first.
    let main = &devices[0];
    let backwards: Vec<(UNet, GradientsParams, f64, f64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = forwards
            .into_iter()
            .enumerate()
            .map(|(i, (replica, parts))| {
                let (sd, sc) = (dice_scales[i], ce_scales[i]);
                scope.spawn(move || {
                    let share = parts.dice.clone() * (weights.dice * sd) + parts.ce.clone() * (weights.ce * sc);
                    let grads = GradientsParams::from_grads(share.backward(), &replica).to_device(main, &replica);
                    let dice = parts.dice.into_scalar::<f32>() as f64 * sd as f64;
                    let ce = parts.ce.into_scalar::<f32>() as f64 * sc as f64;
                    (replica, grads, dice, ce)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join())
            .collect::<std::result::Result<_, _>>()
    })
    .map_err(|_| anyhow!("a training device failed during the backward pass"))?;
    let mut sum = GradientsAccumulator::<UNet>::new();
    let (mut dice, mut ce) = (0.0, 0.0);
    for (replica, grads, d, c) in backwards {
        sum.accumulate(&replica, grads);
        dice += d;
        ce += c;
    }
    let l = StepLoss {
        total: weights.dice as f64 * dice + weights.ce as f64 * ce,
        dice,
        ce,
    };
    Ok((sum.grads(), l))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::SgdConfig;
    use edge_seg_models::spec::Norm;

    /// What one plain gradient step (SGD, rate 1) moves each weight by,
    /// with the batch's loss.
    fn step(devices: &[Device], kind: LossKind) -> (Vec<f32>, f64) {
        let spec = crate::train::tiny_spec(4, Norm::None);
        let (b, p) = (3, 16);
        let model = UNet::new(&spec, &crate::unet::initial_weights(&spec, 1), &devices[0]).unwrap();
        let images: Vec<f32> = (0..b * p * p * p)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let targets = BatchLabels {
            labels: (0..b * p * p * p).map(|i| ((i / 37) % 4) as u8).collect(),
            spatial: [p; 3],
            annotated: vec![vec![1, 2, 3], vec![2], vec![1, 3]],
            complete: vec![true, false, false],
            classes: 4,
            class_weights: vec![0.5, 1.0, 2.0, 1.5],
        };
        let batch = Batch {
            images: &images,
            patch: [p; 3],
            targets: &targets,
        };
        let before = model.valid().weights();
        let (grads, l) = gradients(&model, &batch, kind, LossWeights::default(), devices).unwrap();
        let after = SgdConfig::new().init().step(1.0, model, grads).valid().weights();
        let delta = before
            .iter()
            .flat_map(|(k, w)| w.values.iter().zip(&after[k].values).map(|(a, b)| a - b))
            .collect();
        (delta, l.total)
    }

    #[test]
    fn a_step_split_across_devices_equals_one_over_the_whole_batch() {
        let flex = Device::flex().autodiff();
        for kind in [LossKind::Masked, LossKind::Marginal] {
            let (one, l1) = step(std::slice::from_ref(&flex), kind);
            let (two, l2) = step(&[flex.clone(), flex.clone()], kind);
            let (three, l3) = step(&[flex.clone(), flex.clone(), flex.clone()], kind);
            for (split, l) in [(&two, l2), (&three, l3)] {
                assert!((l - l1).abs() <= 1e-5 * l1.abs(), "{kind:?}: loss {l} vs {l1}");
                let num: f64 = split.iter().zip(&one).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
                let den: f64 = one.iter().map(|b| (*b as f64).powi(2)).sum();
                assert!(den > 0.0);
                assert!(
                    (num / den).sqrt() < 1e-4,
                    "{kind:?}: gradients differ by {:.2e}",
                    (num / den).sqrt()
                );
            }
        }
    }

    #[test]
    fn shares_cover_the_batch_evenly() {
        assert_eq!(shares(2, 2), vec![1, 1]);
        assert_eq!(shares(5, 2), vec![3, 2]);
        assert_eq!(shares(7, 3), vec![3, 2, 2]);
        assert_eq!(shares(4, 1), vec![4]);
    }
}
