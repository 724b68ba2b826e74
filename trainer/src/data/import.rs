//! Importers: nnU-Net v2 raw data sets and Medical Segmentation Decathlon
//! data sets become dataset manifests (fully annotated cases).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use edge_seg_models::card::Modality;
use edge_seg_models::manifest::{Case, Manifest, Source, Split, MANIFEST_FORMAT_VERSION};
use serde_json::Value;

/// Options shared by the importers.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Every n-th training case goes to validation (0: none).
    pub val_every: usize,
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", path.display()))
}

/// Modality from a channel name ("CT", "MRI", "T2", "ADC", ...).
fn modality_of(name: &str, path: &Path) -> Result<Modality> {
    let up = name.to_ascii_uppercase();
    if up.contains("CT") {
        Ok(Modality::CT)
    } else if ["MR", "T1", "T2", "FLAIR", "ADC", "DWI", "PD"]
        .iter()
        .any(|m| up.contains(m))
    {
        Ok(Modality::MR)
    } else {
        bail!(
            "{}: unknown modality {name:?} (expected CT or an MR sequence name)",
            path.display()
        )
    }
}

/// The one channel's name, refusing multi-channel data sets.
fn single_channel(channels: &Value, path: &Path, field: &str) -> Result<String> {
    let map = channels.as_object().with_context(|| {
        format!(
            "{}: \"{field}\" must be an object like {{\"0\": \"CT\"}}",
            path.display()
        )
    })?;
    if map.len() != 1 {
        bail!(
            "{}: {} input channels in \"{field}\"; edge-seg trains single-channel models",
            path.display(),
            map.len()
        );
    }
    map.values()
        .next()
        .and_then(|v| v.as_str())
        .map(|s| s.to_string())
        .with_context(|| format!("{}: \"{field}\" value must be a string", path.display()))
}

/// Vocabulary (by label value) and the value → name mapping.
fn vocabulary(labels: &BTreeMap<u32, String>, path: &Path) -> Result<(Vec<String>, BTreeMap<String, String>)> {
    if !labels.contains_key(&0) {
        bail!("{}: labels must include background = 0", path.display());
    }
    let mut vocab = vec!["background".to_string()];
    let mut mapping = BTreeMap::new();
    for (&v, name) in labels {
        if v == 0 {
            continue;
        }
        if vocab.contains(name) {
            bail!("{}: label name {name:?} is used twice", path.display());
        }
        vocab.push(name.clone());
        mapping.insert(v.to_string(), name.clone());
    }
    if vocab.len() < 2 {
        bail!("{}: no foreground labels", path.display());
    }
    Ok((vocab, mapping))
}

/// A path relative to `base` if possible.
fn relative(path: &Path, base: &Path) -> String {
    path.strip_prefix(base).unwrap_or(path).to_string_lossy().to_string()
}

/// The manifest of an imported data set: one source holding `mapping`,
/// every case fully annotated.
fn imported_manifest(
    name: &str,
    source: &str,
    dir: &Path,
    vocabulary: Vec<String>,
    mapping: BTreeMap<String, String>,
    cases: Vec<Case>,
) -> Result<Manifest> {
    let manifest = Manifest {
        format_version: MANIFEST_FORMAT_VERSION,
        name: name.to_string(),
        vocabulary,
        sources: BTreeMap::from([(
            source.to_string(),
            Source {
                labels: mapping,
                description: format!("imported from {}", dir.display()),
            },
        )]),
        cases,
    };
    manifest.validate()?;
    Ok(manifest)
}

fn split_for(n: usize, opts: &ImportOptions) -> Split {
    if opts.val_every > 0 && n % opts.val_every == opts.val_every - 1 {
        Split::Val
    } else {
        Split::Train
    }
}

/// Import an nnU-Net v2 raw data set (`imagesTr/`, `labelsTr/`,
/// `dataset.json` with `channel_names`, `labels`, `file_ending`). Paths in
/// the manifest are relative to `dir`, where the manifest is meant to live.
pub fn import_nnunet(dir: &Path, opts: &ImportOptions) -> Result<Manifest> {
    let json_path = dir.join("dataset.json");
    let j = read_json(&json_path)?;
    let channel = single_channel(&j["channel_names"], &json_path, "channel_names")?;
    let modality = modality_of(&channel, &json_path)?;
    let labels_obj = j["labels"]
        .as_object()
        .with_context(|| format!("{}: \"labels\" must be an object of name → value", json_path.display()))?;
    let mut labels = BTreeMap::new();
    for (name, v) in labels_obj {
        let value = v.as_u64().with_context(|| {
            format!(
                "{}: label {name:?} has value {v}; region-based labels (lists) are not supported",
                json_path.display()
            )
        })?;
        labels.insert(value as u32, name.clone());
    }
    let (vocab, mapping) = vocabulary(&labels, &json_path)?;
    let ending = j["file_ending"]
        .as_str()
        .with_context(|| format!("{}: \"file_ending\" missing", json_path.display()))?
        .to_string();
    if ending != ".nii.gz" && ending != ".nii" {
        bail!("{}: file_ending {ending:?} is not NIfTI", json_path.display());
    }
    let images_dir = dir.join("imagesTr");
    let mut ids: Vec<String> = std::fs::read_dir(&images_dir)
        .with_context(|| format!("{}: cannot list", images_dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.strip_suffix(&format!("_0000{ending}")).map(|s| s.to_string())
        })
        .collect();
    ids.sort();
    if ids.is_empty() {
        bail!("{}: no images named CASE_0000{ending}", images_dir.display());
    }
    let source = "nnunet".to_string();
    let annotated: Vec<String> = vocab[1..].to_vec();
    let mut cases = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        let image = images_dir.join(format!("{id}_0000{ending}"));
        let label = dir.join("labelsTr").join(format!("{id}{ending}"));
        if !label.exists() {
            bail!("{}: label map for case {id:?} missing", label.display());
        }
        cases.push(Case {
            id: id.clone(),
            image: relative(&image, dir),
            label: Some(relative(&label, dir)),
            annotated: annotated.clone(),
            modality,
            source: source.clone(),
            split: split_for(n, opts),
        });
    }
    imported_manifest(
        j["name"].as_str().unwrap_or("nnunet"),
        &source,
        dir,
        vocab,
        mapping,
        cases,
    )
}

/// Import a Medical Segmentation Decathlon data set (`dataset.json` with
/// `modality`, `labels`, `training`).
pub fn import_msd(dir: &Path, opts: &ImportOptions) -> Result<Manifest> {
    let json_path = dir.join("dataset.json");
    let j = read_json(&json_path)?;
    let channel = single_channel(&j["modality"], &json_path, "modality")?;
    let modality = modality_of(&channel, &json_path)?;
    let labels_obj = j["labels"]
        .as_object()
        .with_context(|| format!("{}: \"labels\" must be an object of value → name", json_path.display()))?;
    let mut labels = BTreeMap::new();
    for (value, name) in labels_obj {
        let v: u32 = value
            .parse()
            .with_context(|| format!("{}: label key {value:?} is not an integer", json_path.display()))?;
        let name = name
            .as_str()
            .with_context(|| format!("{}: label {value} name must be a string", json_path.display()))?;
        labels.insert(v, name.to_string());
    }
    let (vocab, mapping) = vocabulary(&labels, &json_path)?;
    let training = j["training"]
        .as_array()
        .with_context(|| format!("{}: \"training\" must be a list", json_path.display()))?;
    let annotated: Vec<String> = vocab[1..].to_vec();
    let source = "msd".to_string();
    let mut cases = Vec::new();
    for (n, entry) in training.iter().enumerate() {
        let get = |k: &str| -> Result<PathBuf> {
            let rel = entry[k]
                .as_str()
                .with_context(|| format!("{}: training entry {n} has no \"{k}\"", json_path.display()))?;
            Ok(dir.join(rel.trim_start_matches("./")))
        };
        let image = get("image")?;
        let label = get("label")?;
        let id = image
            .file_name()
            .map(|f| {
                f.to_string_lossy()
                    .trim_end_matches(".gz")
                    .trim_end_matches(".nii")
                    .to_string()
            })
            .unwrap_or_else(|| format!("case{n}"));
        cases.push(Case {
            id,
            image: relative(&image, dir),
            label: Some(relative(&label, dir)),
            annotated: annotated.clone(),
            modality,
            source: source.clone(),
            split: split_for(n, opts),
        });
    }
    if cases.is_empty() {
        bail!("{}: no training cases", json_path.display());
    }
    imported_manifest(j["name"].as_str().unwrap_or("msd"), &source, dir, vocab, mapping, cases)
}
