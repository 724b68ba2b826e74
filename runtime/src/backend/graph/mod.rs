//! A backend-agnostic executor for the ONNX graphs our exporter writes, and
//! any graph limited to the same op set: read the graph and its
//! initializers, infer shapes for an input tile, plan buffers, and run the
//! steps on a [`Kernels`] set (the wgpu compute shaders, or another).
//!
//! - [`tensor`]: constants decoded from initializers (f32, f16, int64);
//! - [`ops`]: the op set, read from ONNX nodes with their attributes checked;
//! - [`parse`]: ONNX model → [`Graph`], with weight casts folded and
//!   Conv+Relu, Slice+Concat fused;
//! - [`shape`]: the shape of every value for an input shape;
//! - [`plan`]: steps, tensors and reusable buffer slots;
//! - [`kernels`]: what a kernel set implements;
//! - [`executor`]: runs a graph on a kernel set;
//! - [`build`]: builders for small ONNX graphs in the op set.

pub mod build;
pub mod executor;
pub mod kernels;
pub mod ops;
pub mod parse;
pub mod plan;
pub mod shape;
pub mod tensor;

#[cfg(test)]
mod tests;

pub use self::executor::Executor;
pub use self::kernels::{Kernels, TensorRef};
pub use self::parse::Graph;
pub use self::plan::Plan;
