//! edge-seg's contracts: what a model is.
//!
//! - [`spec`]: the network specification and its shape arithmetic;
//! - [`card`]: the model card stored with every model;
//! - [`labels`]: label vocabularies, colours and left–right pairing;
//! - [`terminology`]: coded (SNOMED CT) names of structures for DICOM;
//! - [`weights`]: the weight-name scheme and the weight hash;
//! - [`manifest`]: the dataset manifest;
//! - [`atomic`]: atomic file writes used by every crate.
//!
//! Axis convention everywhere: network tensors are `[N, C, D, H, W]` with
//! D = z (S), H = y (A), W = x (R) after reorientation to RAS+.

pub mod atomic;
pub mod card;
pub mod labels;
pub mod manifest;
pub mod spec;
pub mod terminology;
pub mod weights;

pub use card::{ModelCard, CARD_FORMAT_VERSION, CARD_METADATA_KEY};
pub use manifest::Manifest;
pub use spec::NetworkSpec;
