//! WGSL sources and compiled compute pipelines, built on first use and
//! cached by kernel name and constants.

use std::collections::HashMap;
use std::sync::Mutex;

const COMMON: &str = include_str!("shaders/common.wgsl");

/// A kernel's WGSL source (without the common part).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Conv,
    ConvTranspose,
    MaxPool,
    Resize,
    Relu,
    Copy,
    Softmax,
    Argmax,
}

impl Kernel {
    fn source(self) -> &'static str {
        match self {
            Kernel::Conv => include_str!("shaders/conv.wgsl"),
            Kernel::ConvTranspose => include_str!("shaders/conv_transpose.wgsl"),
            Kernel::MaxPool => include_str!("shaders/max_pool.wgsl"),
            Kernel::Resize => include_str!("shaders/resize.wgsl"),
            Kernel::Relu => include_str!("shaders/relu.wgsl"),
            Kernel::Copy => include_str!("shaders/copy.wgsl"),
            Kernel::Softmax => include_str!("shaders/softmax.wgsl"),
            Kernel::Argmax => include_str!("shaders/argmax.wgsl"),
        }
    }
}

/// A pipeline variant: the kernel and the `u32` constants prepended to it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Variant {
    pub kernel: Kernel,
    pub constants: Vec<(&'static str, u32)>,
}

impl Variant {
    pub fn plain(kernel: Kernel) -> Variant {
        Variant {
            kernel,
            constants: Vec::new(),
        }
    }

    fn source(&self) -> String {
        let mut s = String::new();
        for (name, v) in &self.constants {
            s.push_str(&format!("const {name}: u32 = {v}u;\n"));
        }
        s.push_str(COMMON);
        s.push_str(self.kernel.source());
        s
    }
}

/// Compiled pipelines of one device.
#[derive(Default)]
pub struct Pipelines {
    cache: Mutex<HashMap<Variant, wgpu::ComputePipeline>>,
}

impl Pipelines {
    /// The pipeline of `variant`, compiled on first use.
    pub fn get(&self, device: &wgpu::Device, variant: &Variant) -> wgpu::ComputePipeline {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(variant.clone())
            .or_insert_with(|| {
                let label = format!("{:?}", variant.kernel);
                let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(&label),
                    source: wgpu::ShaderSource::Wgsl(variant.source().into()),
                });
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&label),
                    layout: None,
                    module: &module,
                    entry_point: Some("main"),
                    compilation_options: Default::default(),
                    cache: None,
                })
            })
            .clone()
    }
}
