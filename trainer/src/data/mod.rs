//! Training data: manifests with their files ([`dataset`]), importers for
//! nnU-Net and MSD layouts ([`import`]), preprocessed cases cached on disk
//! ([`cache`]) and the patch sampler ([`sampler`]).

pub mod cache;
pub mod dataset;
pub mod import;
pub mod sampler;

pub use cache::{prepare_cases, PreparedCase};
pub use dataset::Dataset;
pub use sampler::{Augmentation, Batch, Sampler, SamplerConfig, SamplerState};
