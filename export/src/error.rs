//! Export errors: each names the file concerned.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ExportError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {problem}", path.display())]
    Checkpoint { path: PathBuf, problem: String },
    #[error("{}: {source}", path.display())]
    Card {
        path: PathBuf,
        #[source]
        source: edge_seg_models::card::CardError,
    },
    #[error("{}: the weights do not match the card's network:\n  {}", path.display(), problems.join("\n  "))]
    Weights { path: PathBuf, problems: Vec<String> },
    #[error("{}: verification of the written model failed: {problem}", path.display())]
    Verify { path: PathBuf, problem: String },
    #[error("{}: {problem}", path.display())]
    Output { path: PathBuf, problem: String },
}
