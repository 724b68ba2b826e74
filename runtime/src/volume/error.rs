//! Errors about one volume file: every message names the file.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// A problem with one volume file.
#[derive(Debug, Error)]
#[error("{}: {problem}", path.display())]
pub struct VolumeError {
    pub path: PathBuf,
    pub problem: Problem,
}

impl VolumeError {
    pub fn new(path: &Path, problem: Problem) -> Self {
        VolumeError {
            path: path.to_path_buf(),
            problem,
        }
    }
}

/// What is wrong.
#[derive(Debug, Error)]
pub enum Problem {
    #[error("no such file")]
    NotFound,
    #[error("is a directory, not a NIfTI file")]
    IsDirectory,
    #[error("the file is empty")]
    Empty,
    #[error("cannot read: {0}")]
    Io(#[source] std::io::Error),
    #[error("corrupt or truncated gzip stream: {0}")]
    Gzip(#[source] std::io::Error),
    #[error("not a NIfTI file (header size field is {0}, expected 348)")]
    NotNifti(i32),
    #[error("NIfTI-2 files are not supported; convert to NIfTI-1 (e.g. with nibabel: nib.Nifti1Image(img.dataobj, img.affine, img.header))")]
    Nifti2,
    #[error("not a NIfTI file: wrong magic {0:?} (expected \"n+1\")")]
    WrongMagic(String),
    #[error("a separate header (.hdr/.img pair, magic \"ni1\") is not supported; use a single .nii or .nii.gz file")]
    HeaderPair,
    #[error("truncated header: the file ends after {got} of the 348 header bytes")]
    TruncatedHeader { got: usize },
    #[error("invalid dimensions: {0}")]
    Dimensions(String),
    #[error("{0}")]
    Degenerate(String),
    #[error("unsupported datatype {0}")]
    Datatype(String),
    #[error("header is inconsistent: {0}")]
    Inconsistent(String),
    #[error(
        "the volume needs {need_bytes} bytes in memory ({shape:?} voxels), more than the limit of {limit_bytes} bytes"
    )]
    TooLarge {
        shape: Vec<u64>,
        need_bytes: u64,
        limit_bytes: u64,
    },
    #[error("data shorter than the header says: {expected} bytes of voxel data expected from offset {offset}, only {got} present")]
    DataShort { expected: u64, offset: u64, got: u64 },
    #[error("geometry unusable: {0}")]
    Geometry(String),
    #[error("cannot write: {0}")]
    Write(String),
    #[error("the output path is the input path; refusing to overwrite the scan")]
    OutputIsInput,
    /// A DICOM file or series that cannot be read as a volume.
    #[error("{0}")]
    Dicom(String),
    #[error("{0}")]
    Other(String),
}
