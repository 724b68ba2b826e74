//! Backends that run a model's graph on one tile: tract on the CPU.

pub mod tract;

pub use self::tract::TractBackend;
