//! The interface between the executor and a kernel set (wgpu compute
//! shaders, or any other implementation of the op set).
//!
//! The executor calls the op methods once per input shape to build the
//! steps of a program over buffers it allocated through [`Kernels::buffer`],
//! then [`Kernels::execute`] for every tile. Tensors are channels-last
//! `[d, h, w, c]` (batch 1) arrays of 32-bit elements.

use super::ops::{Conv, ConvTranspose, Pool};

/// A tensor in a kernel set's buffer.
#[derive(Debug)]
pub struct TensorRef<'a, B> {
    pub buffer: &'a B,
    /// `[d, h, w, c]`.
    pub dims: [usize; 4],
}

impl<B> Clone for TensorRef<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B> Copy for TensorRef<'_, B> {}

impl<B> TensorRef<'_, B> {
    pub fn elements(&self) -> usize {
        self.dims.iter().product()
    }
}

/// A set of kernels for the op set.
pub trait Kernels {
    /// Storage for tensors.
    type Buffer;
    /// A convolution's weights, prepared once per model.
    type Weights;
    /// One recorded kernel call (possibly several dispatches).
    type Step;

    /// A buffer of `bytes` bytes.
    fn buffer(&self, bytes: u64) -> Result<Self::Buffer, String>;
    fn conv_weights(&self, conv: &Conv) -> Result<Self::Weights, String>;
    fn conv_transpose_weights(&self, up: &ConvTranspose) -> Result<Self::Weights, String>;

    /// `y = conv(x) + bias` (then ReLU when `relu`), zero padding `pads`
    /// before each axis.
    fn conv(
        &self,
        x: TensorRef<Self::Buffer>,
        w: &Self::Weights,
        y: TensorRef<Self::Buffer>,
        pads: [usize; 3],
        relu: bool,
    ) -> Result<Self::Step, String>;
    /// Transposed convolution with kernel = stride = `kernel`.
    fn conv_transpose(
        &self,
        x: TensorRef<Self::Buffer>,
        w: &Self::Weights,
        y: TensorRef<Self::Buffer>,
        kernel: usize,
    ) -> Result<Self::Step, String>;
    fn max_pool(
        &self,
        x: TensorRef<Self::Buffer>,
        y: TensorRef<Self::Buffer>,
        pool: Pool,
    ) -> Result<Self::Step, String>;
    /// `y[z, y, x] = x[z / s, y / s, x / s]` per axis.
    fn resize_nearest(
        &self,
        x: TensorRef<Self::Buffer>,
        y: TensorRef<Self::Buffer>,
        scale: [usize; 3],
    ) -> Result<Self::Step, String>;
    fn relu(&self, x: TensorRef<Self::Buffer>, y: TensorRef<Self::Buffer>) -> Result<Self::Step, String>;
    /// `y[z, y, x, channel + c] = x[z + start.z, y + start.y, x + start.x, c]`
    /// over `y`'s spatial shape and `x`'s channels (Slice and Concat).
    fn copy(
        &self,
        x: TensorRef<Self::Buffer>,
        start: [usize; 3],
        y: TensorRef<Self::Buffer>,
        channel: usize,
    ) -> Result<Self::Step, String>;
    /// Softmax over channels.
    fn softmax(&self, x: TensorRef<Self::Buffer>, y: TensorRef<Self::Buffer>) -> Result<Self::Step, String>;
    /// The first channel holding the largest value, as a u32 per voxel
    /// (`labels` is `[d, h, w, 1]`).
    fn argmax(&self, x: TensorRef<Self::Buffer>, labels: TensorRef<Self::Buffer>) -> Result<Self::Step, String>;

    /// Write `data` into `input`, run `steps` in order and return the 32-bit
    /// words of `read`.
    fn execute(
        &self,
        input: TensorRef<Self::Buffer>,
        data: &[f32],
        steps: &[&Self::Step],
        read: TensorRef<Self::Buffer>,
    ) -> Result<Vec<u32>, String>;
}
