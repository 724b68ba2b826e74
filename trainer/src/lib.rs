//! edge-seg trainer: synthetic phantoms, datasets, the burn 3D U-Net,
//! sparse-label losses, base training and transfer to new tasks.
//!
//! - [`phantom`]: synthetic CT/MR phantoms and their data sets;
//! - [`data`]: manifests, importers, preprocessing cache, patch sampling;
//! - [`unet`]: the burn 3D U-Net (on LibTorch, `unet_graph` records its
//!   forward pass as one LibTorch graph through `torch_graph`);
//! - [`loss`]: naive, masked and marginal sparse-label losses;
//! - [`train`]: the training loop, checkpoints and reports;
//! - [`device`]: the training backends and `--device`;
//! - [`base_model`]: the base a transfer starts from (`default` or a checkpoint);
//! - [`transfer`]: scratch, vanilla and fine-tuning transfer to a task;
//! - [`experiment`]: the transfer experiment grid and its report;
//! - [`predict`]: sliding-window prediction with a checkpoint;
//! - [`metrics`]: Dice and HD95;
//! - [`verified_export`]: ONNX export checked by tract against the burn model;
//! - [`cli`]: the `edge-seg-train` command line.

pub mod base_model;
pub mod cli;
pub mod conv;
pub mod data;
pub mod device;
pub mod experiment;
pub mod figure;
pub mod loss;
pub mod metrics;
pub mod phantom;
pub mod predict;
pub mod progress;
#[cfg(feature = "tch")]
pub mod torch_graph;
pub mod train;
pub mod transfer;
pub mod unet;
#[cfg(feature = "tch")]
pub mod unet_graph;
pub mod verified_export;
