//! Synthetic CT and MR phantoms that a U-Net can learn from: a random body
//! per case ([`anatomy`]), rendered on a grid in any orientation and spacing
//! ([`render`]), written as an nnU-Net-style data set with our manifest
//! ([`dataset`]), and shown as a PNG montage ([`preview`]).

pub mod anatomy;
pub mod dataset;
pub mod preview;
pub mod render;
pub mod shapes;

pub use dataset::{generate, Generated, PhantomOptions, SOURCES};
