//! `edge-seg-train bench`: time training steps (forward + backward + Adam)
//! of a spec at a patch size, on random data: once phase by phase (the
//! batch uploaded each step, the device waited for after each phase), then
//! whole steps timed as the PyTorch peer times its own (the batch on the
//! device, one wait at the end): `seconds_per_step`.

use std::time::Instant;

use anyhow::Result;
use burn::optim::GradientsParams;
use burn::prelude::*;
use clap::Args;

use crate::device::{choose_devices, set_threads};
use crate::loss::{loss, BatchLabels, LossKind, LossWeights};
use crate::train::parallel::{gradients, Batch};
use crate::unet::{initial_weights, UNet};

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub network: super::base::SpecArgs,
    /// Classes (background included).
    #[arg(long, default_value_t = 14)]
    pub classes: usize,
    /// Patch edge (a legal input size).
    #[arg(long, default_value_t = 116)]
    pub patch: usize,
    #[arg(long, default_value_t = 2)]
    pub batch: usize,
    /// Timed steps after one warm-up step (each timing runs them once).
    #[arg(long, default_value_t = 3)]
    pub steps: usize,
    /// As for `base`: cpu, torch, torch-cuda[:N], wgpu[:N], cuda[:N] or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// As for `base`: data parallel over several devices (replaces --device).
    #[arg(long, value_delimiter = ',', conflicts_with = "device")]
    pub devices: Vec<String>,
    #[arg(long)]
    pub threads: Option<usize>,
    #[arg(long)]
    pub json: bool,
}

fn sync(device: &Device) -> Result<()> {
    device.sync().map_err(|e| anyhow::anyhow!("the device failed: {e:?}"))
}

/// The process's peak resident memory so far, MiB (Linux: getrusage).
fn peak_rss_mib() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return f64::NAN;
    }
    u.ru_maxrss as f64 / 1024.0
}

pub fn run(a: &BenchArgs) -> Result<()> {
    if let Some(t) = a.threads {
        set_threads(t)?;
    }
    let (chosen, parallel_devices) = choose_devices(&a.device, &a.devices)?;
    let device = chosen.device.clone();
    let spec = super::network_spec(&a.network, a.classes)?;
    let patch = [a.patch; 3];
    let out = spec.output_shape(patch)?;
    let ad = device.clone().autodiff();
    let step_devices = crate::train::parallel::step_devices(&device, &parallel_devices);
    crate::train::parallel::check_split(a.batch, step_devices.len())?;
    let mut model = UNet::new(&spec, &initial_weights(&spec, 0), &ad)?;
    let mut optim = crate::train::Adam::new(crate::train::OptimizerKind::Adam);
    let n_in: usize = a.batch * patch.iter().product::<usize>();
    let n_out: usize = a.batch * out.iter().product::<usize>();
    let images: Vec<f32> = (0..n_in).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
    let labels: Vec<u8> = (0..n_out).map(|i| ((i / 97) % a.classes) as u8).collect();
    let targets = BatchLabels {
        labels,
        spatial: out,
        annotated: vec![(1..a.classes).collect(); a.batch],
        complete: vec![true; a.batch],
        classes: a.classes,
        class_weights: Vec::new(),
    };
    // The batch as a tensor on the training device (an upload).
    let input = || {
        Tensor::<5>::from_data(
            TensorData::new(images.clone(), [a.batch, 1, patch[0], patch[1], patch[2]]),
            &ad,
        )
    };
    let mut times = Vec::new();
    let (mut t_fwd, mut t_bwd, mut t_step) = (0.0, 0.0, 0.0);
    for step in 0..=a.steps {
        let t0 = Instant::now();
        let (value, t1, grads) = if parallel_devices.is_empty() {
            let logits = model.forward_logits(input());
            let parts = loss(LossKind::Masked, logits, &targets, LossWeights::default());
            let value = parts.total.clone().into_scalar::<f32>();
            let t1 = Instant::now();
            (value, t1, GradientsParams::from_grads(parts.total.backward(), &model))
        } else {
            // Data parallel: forward and backward overlap across devices,
            // so the step is not split (backward counts as 0).
            let batch = Batch {
                images: &images,
                patch,
                targets: &targets,
            };
            let (grads, l) = gradients(&model, &batch, LossKind::Masked, LossWeights::default(), &step_devices)?;
            (l.total as f32, Instant::now(), grads)
        };
        // GPU backends run kernels asynchronously: wait for each phase.
        sync(&device)?;
        let t2 = Instant::now();
        model = optim.step(1e-4, model, grads);
        sync(&device)?;
        let t3 = Instant::now();
        if step > 0 {
            times.push(t3.duration_since(t0).as_secs_f64());
            t_fwd += t1.duration_since(t0).as_secs_f64();
            t_bwd += t2.duration_since(t1).as_secs_f64();
            t_step += t3.duration_since(t2).as_secs_f64();
        }
        if !value.is_finite() {
            anyhow::bail!("non-finite loss in the benchmark");
        }
    }
    let n = a.steps.max(1) as f64;
    let phased_per_step = times.iter().sum::<f64>() / n;
    // The same steps timed as the PyTorch peer times its own
    // (scripts/bench/train_step_torch.py): the batch already on the device,
    // nothing waited for or read back until the last step. On a GPU the
    // phase split above waits for the device three times a step.
    let per_step = if parallel_devices.is_empty() {
        let x = input();
        sync(&device)?;
        let t0 = Instant::now();
        let mut losses = Vec::new();
        for _ in 0..a.steps {
            let parts = loss(
                LossKind::Masked,
                model.forward_logits(x.clone()),
                &targets,
                LossWeights::default(),
            );
            losses.push(parts.total.clone().detach());
            let grads = GradientsParams::from_grads(parts.total.backward(), &model);
            model = optim.step(1e-4, model, grads);
        }
        if !losses.is_empty() {
            let values = Tensor::cat(losses, 0).into_data().convert::<f32>().try_to_vec::<f32>();
            if !values.map_or(false, |v| v.iter().all(|x| x.is_finite())) {
                anyhow::bail!("non-finite loss in the benchmark");
            }
        }
        sync(&device)?;
        t0.elapsed().as_secs_f64() / n
    } else {
        phased_per_step
    };
    let fwd_flops = spec.forward_flops(patch)? * a.batch as f64;
    // Backward costs about twice the forward.
    let step_gflop = 3.0 * fwd_flops / 1e9;
    let voxels = n_out as f64 / per_step;
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "spec": spec, "patch": patch, "batch": a.batch, "device": chosen.name,
                "peak_rss_mib": peak_rss_mib(),
                "seconds_per_step": per_step, "phased_seconds_per_step": phased_per_step,
                "forward_seconds": t_fwd / n, "backward_seconds": t_bwd / n,
                "optimizer_seconds": t_step / n, "output_voxels_per_second": voxels,
                "input_voxels_per_second": n_in as f64 / per_step,
                "gflop_per_step": step_gflop, "gflops": step_gflop / per_step,
            })
        );
    } else {
        println!(
            "spec:       {} levels, {} filters, {:?}, {} parameters",
            spec.levels,
            spec.base_filters,
            spec.channel_plan,
            spec.parameter_count()
        );
        println!("patch:      {patch:?} → {out:?}, batch {}", a.batch);
        println!(
            "step:       {per_step:.3} s; timed by phase {phased_per_step:.3} s (forward+loss {:.3}, backward {:.3}, Adam {:.3})",
            t_fwd / n,
            t_bwd / n,
            t_step / n
        );
        println!("voxels/s:   {voxels:.0} output, {:.0} input", n_in as f64 / per_step);
        println!("device:     {}; peak RSS {:.0} MiB", chosen.name, peak_rss_mib());
        println!(
            "GFLOP/s:    {:.1} (≈{step_gflop:.1} GFLOP per step, backward counted as 2x forward)",
            step_gflop / per_step
        );
    }
    Ok(())
}
