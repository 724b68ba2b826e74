//! The op set as WGSL compute kernels on one device ([`Kernels`] for the
//! graph executor).
//!
//! Every step is recorded once per input shape as dispatches with their
//! own parameters and bind groups; a tile then writes its input, records
//! all dispatches in one compute pass, copies the wanted tensor to a
//! mapped buffer and reads it back. Kernels run over z-slabs whose input
//! and output byte ranges each fit one storage binding (see [`super::slab`]),
//! and fold their workgroup counts into two dimensions within the device's
//! per-dimension limit.

use std::num::NonZeroU64;
use std::sync::{mpsc, Mutex};

use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

use super::device::{block_on, Gpu};
use super::pipelines::{Kernel, Pipelines, Variant};
use super::slab::{slabs, Planes, Window};
use crate::backend::graph::ops::{Conv, ConvTranspose, Pool};
use crate::backend::graph::{Kernels, TensorRef};

/// Threads per workgroup of every kernel.
const WORKGROUP: u64 = 64;

/// Parameters of one dispatch (`Params` in `shaders/common.wgsl`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct Params {
    src: [u32; 4],
    dst: [u32; 4],
    a: [u32; 4],
    b: [u32; 4],
    range: [u32; 4],
    grid: [u32; 4],
}

/// One compute dispatch, ready to record.
pub struct Dispatch {
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    groups: [u32; 2],
}

/// The dispatches of one step, one per z-slab.
pub struct GpuStep {
    dispatches: Vec<Dispatch>,
}

impl GpuStep {
    pub fn dispatches(&self) -> usize {
        self.dispatches.len()
    }
}

/// A convolution's weights on the device: `[cin][tap][cout / 4]` vec4s
/// (Conv) or `[tap][cin][cout / 4]` (ConvTranspose), and the bias padded to
/// a multiple of 4.
pub struct ConvWeights {
    weights: wgpu::Buffer,
    bias: wgpu::Buffer,
    kernel: usize,
    cin: usize,
    cout: usize,
}

impl ConvWeights {
    /// Output channels in groups of 4.
    fn groups(&self) -> usize {
        self.cout.div_ceil(4)
    }
}

/// The kernels on one device.
pub struct WgpuKernels {
    gpu: Gpu,
    /// The largest storage binding used, in bytes.
    binding_limit: u64,
    pipelines: Pipelines,
    /// Mapped-read buffer for results, grown as needed.
    staging: Mutex<Option<wgpu::Buffer>>,
}

fn dims_u32(d: [usize; 4]) -> [u32; 4] {
    d.map(|v| v as u32)
}

fn planes<B>(t: TensorRef<B>) -> Planes {
    Planes {
        depth: t.dims[0],
        bytes: (t.dims[1] * t.dims[2] * t.dims[3]) as u64 * 4,
    }
}

impl WgpuKernels {
    /// Kernels on `gpu`; `max_binding_bytes` lowers the storage binding
    /// limit below the device's (to exercise the slab path).
    pub fn new(gpu: Gpu, max_binding_bytes: Option<u64>) -> WgpuKernels {
        let device_limit = gpu.limits.max_storage_buffer_binding_size;
        let binding_limit = max_binding_bytes.map_or(device_limit, |m| m.min(device_limit)) / 4 * 4;
        WgpuKernels {
            gpu,
            binding_limit,
            pipelines: Pipelines::default(),
            staging: Mutex::new(None),
        }
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    pub fn binding_limit(&self) -> u64 {
        self.binding_limit
    }

    /// Run `f` with wgpu's validation and out-of-memory errors captured.
    fn scoped<T>(&self, what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
        let device = &self.gpu.device;
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = f();
        let v = block_on(validation.pop());
        let o = block_on(oom.pop());
        match v.or(o) {
            Some(e) => Err(format!("{what}: {e}")),
            None => Ok(value),
        }
    }

    /// A read-only storage buffer holding `values`, padded to whole vec4s.
    fn constant(&self, label: &str, mut values: Vec<f32>) -> Result<wgpu::Buffer, String> {
        values.resize(values.len().div_ceil(4).max(1) * 4, 0.0);
        let bytes = values.len() as u64 * 4;
        if bytes > self.gpu.limits.max_storage_buffer_binding_size {
            return Err(format!(
                "{label} need {bytes} bytes, more than the adapter's {}-byte storage binding limit",
                self.gpu.limits.max_storage_buffer_binding_size
            ));
        }
        self.scoped(label, || {
            self.gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::cast_slice(&values),
                usage: wgpu::BufferUsages::STORAGE,
            })
        })
    }

    fn weights(
        &self,
        kernel: usize,
        cin: usize,
        cout: usize,
        packed: Vec<f32>,
        bias: &Option<Vec<f32>>,
    ) -> Result<ConvWeights, String> {
        let mut b = bias.clone().unwrap_or_else(|| vec![0.0; cout]);
        b.resize(cout.div_ceil(4) * 4, 0.0);
        Ok(ConvWeights {
            weights: self.constant("weights", packed)?,
            bias: self.constant("bias", b)?,
            kernel,
            cin,
            cout,
        })
    }

    /// Workgroups `n` as a 2D grid within the per-dimension limit.
    fn fold(&self, n: u64) -> Result<[u32; 2], String> {
        let max = self.gpu.limits.max_compute_workgroups_per_dimension.max(1) as u64;
        let x = n.clamp(1, max);
        let y = n.div_ceil(x);
        if y > max {
            return Err(format!("{n} workgroups exceed the adapter's {max} x {max} grid"));
        }
        Ok([x as u32, y as u32])
    }

    /// One dispatch of `variant` binding `params`, then `buffers` in order.
    fn dispatch(
        &self,
        variant: &Variant,
        params: &Params,
        buffers: &[(&wgpu::Buffer, Option<Window>)],
        workgroups: u64,
    ) -> Result<Dispatch, String> {
        let groups = self.fold(workgroups)?;
        let device = &self.gpu.device;
        self.scoped(&format!("preparing the {:?} kernel", variant.kernel), || {
            let pipeline = self.pipelines.get(device, variant);
            let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("params"),
                contents: bytemuck::bytes_of(params),
                usage: wgpu::BufferUsages::UNIFORM,
            });
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: uniform.as_entire_binding(),
            }];
            for (i, (buffer, window)) in buffers.iter().enumerate() {
                let resource = match window {
                    Some(w) => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer,
                        offset: w.offset,
                        size: NonZeroU64::new(w.size),
                    }),
                    None => buffer.as_entire_binding(),
                };
                entries.push(wgpu::BindGroupEntry {
                    binding: i as u32 + 1,
                    resource,
                });
            }
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &pipeline.get_bind_group_layout(0),
                entries: &entries,
            });
            Dispatch {
                pipeline,
                bind_group,
                groups,
            }
        })
    }

    /// A step over z-slabs of `y`: `needs(z0, z1)` gives the planes of `x`
    /// that output planes `[z0, z1)` read; `work(z0, z1)` the grid
    /// parameters and workgroup count of a slab. `middle` are bound whole
    /// between the input and the output (weights, bias).
    #[allow(clippy::too_many_arguments)]
    fn slabbed(
        &self,
        variant: &Variant,
        x: TensorRef<wgpu::Buffer>,
        y: TensorRef<wgpu::Buffer>,
        a: [u32; 4],
        b: [u32; 4],
        middle: &[&wgpu::Buffer],
        needs: impl Fn(usize, usize) -> (usize, usize),
        work: impl Fn(usize, usize) -> Result<([u32; 4], u64), String>,
    ) -> Result<GpuStep, String> {
        let plan = slabs(
            planes(x),
            planes(y),
            needs,
            self.binding_limit,
            self.gpu.limits.min_storage_buffer_offset_alignment as u64,
        )?;
        let dispatches = plan
            .iter()
            .map(|s| {
                let (grid, workgroups) = work(s.z0, s.z1)?;
                let params = Params {
                    src: dims_u32(x.dims),
                    dst: dims_u32(y.dims),
                    a,
                    b,
                    range: [s.input.base, s.output.base, s.z0 as u32, s.z1 as u32],
                    grid,
                };
                let mut bound = vec![(x.buffer, Some(s.input))];
                bound.extend(middle.iter().map(|&m| (m, None)));
                bound.push((y.buffer, Some(s.output)));
                self.dispatch(variant, &params, &bound, workgroups)
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(GpuStep { dispatches })
    }

    /// A one-thread-per-item kernel with `items` per output plane.
    #[allow(clippy::too_many_arguments)]
    fn flat(
        &self,
        kernel: Kernel,
        x: TensorRef<wgpu::Buffer>,
        y: TensorRef<wgpu::Buffer>,
        a: [u32; 4],
        b: [u32; 4],
        middle: &[&wgpu::Buffer],
        items: usize,
        needs: impl Fn(usize, usize) -> (usize, usize),
    ) -> Result<GpuStep, String> {
        let work = |z0: usize, z1: usize| {
            let threads = ((z1 - z0) * items) as u64;
            if threads > u32::MAX as u64 {
                return Err(format!("{threads} threads in one dispatch exceed the 32-bit index"));
            }
            Ok(([0, 0, 0, threads as u32], threads.div_ceil(WORKGROUP)))
        };
        self.slabbed(&Variant::plain(kernel), x, y, a, b, middle, needs, work)
    }

    /// The conv kernel's tiling for a kernel edge and channel counts: the
    /// output block and channels per block follow `cout`; the input chunk
    /// is the largest of 4, 2, 1 channels (not above `cin`) whose patch and
    /// weights fit the adapter's workgroup memory.
    fn conv_variant(&self, k: usize, cin: usize, cout: usize) -> Result<(Variant, [usize; 4]), String> {
        let (cob, bx, by, bz) = match cout {
            0..=4 => (4, 8, 8, 4),
            5..=8 => (8, 8, 4, 4),
            _ => (16, 4, 4, 4),
        };
        let shared = self.gpu.limits.max_compute_workgroup_storage_size as usize;
        let patch = (bx + k - 1) * (by + k - 1) * (bz + k - 1);
        let mut cic = cin.next_power_of_two().min(4);
        while (patch + k * k * k * cob) * cic * 4 > shared {
            if cic == 1 {
                return Err(format!(
                    "a {k}x{k}x{k} convolution needs more workgroup memory than the adapter's {shared} bytes"
                ));
            }
            cic /= 2;
        }
        let constants = [("K", k), ("BX", bx), ("BY", by), ("BZ", bz), ("COB", cob), ("CIC", cic)];
        Ok((
            Variant {
                kernel: Kernel::Conv,
                constants: constants.iter().map(|&(n, v)| (n, v as u32)).collect(),
            },
            [bx, by, bz, cob],
        ))
    }
}

impl Kernels for WgpuKernels {
    type Buffer = wgpu::Buffer;
    type Weights = ConvWeights;
    type Step = GpuStep;

    fn buffer(&self, bytes: u64) -> Result<wgpu::Buffer, String> {
        let max = self.gpu.limits.max_buffer_size;
        if bytes > max {
            return Err(format!(
                "a tensor needs a {bytes}-byte buffer, more than the adapter's {max}-byte limit (use a smaller tile)"
            ));
        }
        if bytes / 4 > u32::MAX as u64 {
            return Err(format!(
                "a tensor of {bytes} bytes has more elements than a 32-bit index reaches"
            ));
        }
        self.scoped("allocating a buffer", || {
            self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tensor"),
                size: bytes.max(4).div_ceil(4) * 4,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            })
        })
    }

    fn conv_weights(&self, conv: &Conv) -> Result<ConvWeights, String> {
        let (k, cin, cout) = (conv.kernel, conv.cin(), conv.cout());
        let taps = k * k * k;
        let groups = cout.div_ceil(4);
        // [cout][cin][tap] → [cin][tap][cout padded to groups·4].
        let mut packed = vec![0.0f32; cin * taps * groups * 4];
        for o in 0..cout {
            for i in 0..cin {
                for t in 0..taps {
                    packed[(i * taps + t) * groups * 4 + o] = conv.weight.data[(o * cin + i) * taps + t];
                }
            }
        }
        self.weights(k, cin, cout, packed, &conv.bias)
    }

    fn conv_transpose_weights(&self, up: &ConvTranspose) -> Result<ConvWeights, String> {
        let (k, cin, cout) = (up.kernel, up.cin(), up.cout());
        let taps = k * k * k;
        let groups = cout.div_ceil(4);
        // [cin][cout][tap] → [tap][cin][cout padded to groups·4].
        let mut packed = vec![0.0f32; taps * cin * groups * 4];
        for i in 0..cin {
            for o in 0..cout {
                for t in 0..taps {
                    packed[(t * cin + i) * groups * 4 + o] = up.weight.data[(i * cout + o) * taps + t];
                }
            }
        }
        self.weights(k, cin, cout, packed, &up.bias)
    }

    fn conv(
        &self,
        x: TensorRef<wgpu::Buffer>,
        w: &ConvWeights,
        y: TensorRef<wgpu::Buffer>,
        pads: [usize; 3],
        relu: bool,
    ) -> Result<GpuStep, String> {
        let k = w.kernel;
        let (variant, [bx, by, bz, cob]) = self.conv_variant(k, w.cin, w.cout)?;
        let depth = x.dims[0];
        let needs = |z0: usize, z1: usize| {
            let lo = z0.saturating_sub(pads[0]).min(depth - 1);
            let hi = (z1 + k - 1).saturating_sub(pads[0]).min(depth);
            (lo, hi.max(lo + 1))
        };
        let blocks = [
            y.dims[2].div_ceil(bx),
            y.dims[1].div_ceil(by),
            0,
            w.groups().div_ceil(cob / 4),
        ];
        let work = |z0: usize, z1: usize| {
            let g = [blocks[0], blocks[1], (z1 - z0).div_ceil(bz), blocks[3]];
            Ok((g.map(|v| v as u32), g.iter().map(|&v| v as u64).product()))
        };
        let a = [pads[0] as u32, pads[1] as u32, pads[2] as u32, relu as u32];
        let b = [w.groups() as u32, 0, 0, 0];
        self.slabbed(&variant, x, y, a, b, &[&w.weights, &w.bias], needs, work)
    }

    fn conv_transpose(
        &self,
        x: TensorRef<wgpu::Buffer>,
        w: &ConvWeights,
        y: TensorRef<wgpu::Buffer>,
        k: usize,
    ) -> Result<GpuStep, String> {
        let items = y.dims[1] * y.dims[2] * w.groups();
        let a = [k as u32, w.groups() as u32, 0, 0];
        let middle = [&w.weights, &w.bias];
        self.flat(Kernel::ConvTranspose, x, y, a, [0; 4], &middle, items, |z0, z1| {
            (z0 / k, (z1 - 1) / k + 1)
        })
    }

    fn max_pool(&self, x: TensorRef<wgpu::Buffer>, y: TensorRef<wgpu::Buffer>, p: Pool) -> Result<GpuStep, String> {
        let k = p.kernel.map(|v| v as u32);
        let s = p.stride.map(|v| v as u32);
        let items = y.dims[1] * y.dims[2] * y.dims[3];
        self.flat(
            Kernel::MaxPool,
            x,
            y,
            [k[0], k[1], k[2], 0],
            [s[0], s[1], s[2], 0],
            &[],
            items,
            |z0, z1| (z0 * p.stride[0], (z1 - 1) * p.stride[0] + p.kernel[0]),
        )
    }

    fn resize_nearest(
        &self,
        x: TensorRef<wgpu::Buffer>,
        y: TensorRef<wgpu::Buffer>,
        scale: [usize; 3],
    ) -> Result<GpuStep, String> {
        let items = y.dims[1] * y.dims[2] * y.dims[3];
        let s = scale.map(|v| v as u32);
        self.flat(
            Kernel::Resize,
            x,
            y,
            [s[0], s[1], s[2], 0],
            [0; 4],
            &[],
            items,
            |z0, z1| (z0 / scale[0], (z1 - 1) / scale[0] + 1),
        )
    }

    fn relu(&self, x: TensorRef<wgpu::Buffer>, y: TensorRef<wgpu::Buffer>) -> Result<GpuStep, String> {
        let items = y.dims[1] * y.dims[2] * y.dims[3];
        self.flat(Kernel::Relu, x, y, [0; 4], [0; 4], &[], items, |z0, z1| (z0, z1))
    }

    fn copy(
        &self,
        x: TensorRef<wgpu::Buffer>,
        start: [usize; 3],
        y: TensorRef<wgpu::Buffer>,
        channel: usize,
    ) -> Result<GpuStep, String> {
        let items = y.dims[1] * y.dims[2] * x.dims[3];
        let a = [start[0] as u32, start[1] as u32, start[2] as u32, channel as u32];
        self.flat(Kernel::Copy, x, y, a, [0; 4], &[], items, |z0, z1| {
            (z0 + start[0], z1 + start[0])
        })
    }

    fn softmax(&self, x: TensorRef<wgpu::Buffer>, y: TensorRef<wgpu::Buffer>) -> Result<GpuStep, String> {
        let items = y.dims[1] * y.dims[2];
        self.flat(Kernel::Softmax, x, y, [0; 4], [0; 4], &[], items, |z0, z1| (z0, z1))
    }

    fn argmax(&self, x: TensorRef<wgpu::Buffer>, labels: TensorRef<wgpu::Buffer>) -> Result<GpuStep, String> {
        let items = labels.dims[1] * labels.dims[2];
        self.flat(Kernel::Argmax, x, labels, [0; 4], [0; 4], &[], items, |z0, z1| (z0, z1))
    }

    fn execute(
        &self,
        input: TensorRef<wgpu::Buffer>,
        data: &[f32],
        steps: &[&GpuStep],
        read: TensorRef<wgpu::Buffer>,
    ) -> Result<Vec<u32>, String> {
        let bytes = read.elements() as u64 * 4;
        let mut staging = self.staging.lock().unwrap_or_else(|e| e.into_inner());
        if staging.as_ref().is_none_or(|s| s.size() < bytes) {
            *staging = None;
            *staging = Some(self.scoped("allocating the read-back buffer", || {
                self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("read-back"),
                    size: bytes,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })?);
        }
        let staging = staging.as_ref().expect("just allocated");
        let (device, queue) = (&self.gpu.device, &self.gpu.queue);
        self.scoped("running a tile", || {
            queue.write_buffer(input.buffer, 0, bytemuck::cast_slice(data));
            let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("tile") });
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("tile"),
                    timestamp_writes: None,
                });
                for d in steps.iter().flat_map(|s| &s.dispatches) {
                    pass.set_pipeline(&d.pipeline);
                    pass.set_bind_group(0, &d.bind_group, &[]);
                    pass.dispatch_workgroups(d.groups[0], d.groups[1], 1);
                }
            }
            encoder.copy_buffer_to_buffer(read.buffer, 0, staging, 0, bytes);
            queue.submit([encoder.finish()]);
        })?;
        let slice = staging.slice(..bytes);
        let (tx, rx) = mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| format!("waiting for the GPU: {e}"))?;
        rx.recv()
            .map_err(|_| "the GPU did not answer the read-back".to_string())?
            .map_err(|e| format!("reading the result back: {e}"))?;
        let words = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| format!("reading the result back: {e}"))?;
            bytemuck::cast_slice::<u8, u32>(&view).to_vec()
        };
        staging.unmap();
        Ok(words)
    }
}
