//! `edge-seg-train import`: a manifest for an nnU-Net v2 or MSD data set.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::data::dataset::Dataset;
use crate::data::import::{import_msd, import_nnunet, ImportOptions};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// An nnU-Net v2 raw data set folder (imagesTr/, labelsTr/, dataset.json).
    #[arg(long, conflicts_with = "msd")]
    pub nnunet: Option<PathBuf>,
    /// A Medical Segmentation Decathlon task folder (dataset.json with "training").
    #[arg(long)]
    pub msd: Option<PathBuf>,
    /// Where to write the manifest (default: manifest.json in the data set folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Every N-th case goes to the validation split (0: none).
    #[arg(long, default_value_t = 5)]
    pub val_every: usize,
}

pub fn run(a: &ImportArgs) -> Result<()> {
    let opts = ImportOptions { val_every: a.val_every };
    let (dir, manifest) = match (&a.nnunet, &a.msd) {
        (Some(d), None) => (d.clone(), import_nnunet(d, &opts)?),
        (None, Some(d)) => (d.clone(), import_msd(d, &opts)?),
        _ => bail!("give --nnunet DIR or --msd DIR"),
    };
    let out = a.out.clone().unwrap_or_else(|| dir.join("manifest.json"));
    let out_dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    // Paths in the manifest are relative to the data set folder; rebase them
    // when the manifest goes elsewhere.
    let mut manifest = manifest;
    if std::fs::canonicalize(out_dir).ok() != std::fs::canonicalize(&dir).ok() {
        let abs = std::fs::canonicalize(&dir).with_context(|| format!("{}: cannot resolve", dir.display()))?;
        for c in &mut manifest.cases {
            c.image = abs.join(&c.image).display().to_string();
            if let Some(l) = &c.label {
                c.label = Some(abs.join(l).display().to_string());
            }
        }
    }
    edge_seg_models::atomic::write_bytes(&out, manifest.to_json_pretty().as_bytes())
        .with_context(|| format!("cannot write {}", out.display()))?;
    // Check that every file is there and images match their label maps.
    let ds = Dataset::load(&out)?;
    println!(
        "wrote {} ({} cases, {} labels: {})",
        out.display(),
        ds.manifest.cases.len(),
        ds.manifest.vocabulary.len() - 1,
        ds.manifest.vocabulary[1..].join(", ")
    );
    Ok(())
}
