//! Small phantom data sets for tests.

use std::path::{Path, PathBuf};

use edge_seg_models::card::Modality;
use edge_seg_models::labels::Task;
use edge_seg_trainer::phantom::{generate, PhantomOptions};

/// Options for a small, coarse data set (isotropic `spacing` mm).
pub fn small(dir: &Path, cases: usize, seed: u64, spacing: f64) -> PhantomOptions {
    PhantomOptions {
        out: dir.to_path_buf(),
        cases,
        seed,
        modality: Modality::CT,
        task: None,
        sparse: false,
        complete_fraction: 0.3,
        label_all: false,
        structures: Vec::new(),
        val: 0,
        test: 0,
        inplane_mm: (spacing, spacing),
        slice_mm: (spacing, spacing),
        orientations: vec!["LPS".into(), "RAS".into()],
        dataset_id: 1,
        name: None,
    }
}

/// Generate a data set and return its manifest.
pub fn write(opts: &PhantomOptions) -> PathBuf {
    generate(opts, |_, _| {}).unwrap().manifest
}

/// A small data set for a downstream task.
pub fn task(dir: &Path, task: Task, cases: usize, test: usize, spacing: f64) -> PathBuf {
    write(&PhantomOptions {
        task: Some(task),
        modality: if task == Task::Prostate {
            Modality::MR
        } else {
            Modality::CT
        },
        test,
        ..small(dir, cases, 6, spacing)
    })
}
