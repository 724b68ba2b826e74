//! edge-seg trainer: synthetic phantoms, datasets, the burn 3D U-Net,
//! sparse-label losses, base training and transfer to new tasks.
//!
//! - [`phantom`]: synthetic CT/MR phantoms and their data sets;
//! - [`cli`]: the `edge-seg-train` command line.

pub mod cli;
pub mod phantom;
