//! A dataset manifest together with the files it names: loading, checking
//! that the files exist and agree, and reading a case with its labels
//! harmonised into the vocabulary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use edge_seg_models::manifest::{Case, Manifest};
use edge_seg_runtime::volume::{header_affine, read_header, read_volume, Volume};
use ndarray::Array3;

/// A manifest and where it lives.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub manifest: Manifest,
    pub path: PathBuf,
}

impl Dataset {
    /// Parse and validate a manifest, and check that every file it names
    /// exists and that each image and label map share shape and affine.
    pub fn load(path: &Path) -> Result<Dataset> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("{}: cannot read manifest", path.display()))?;
        let manifest = Manifest::from_json(&text).with_context(|| format!("{}: invalid manifest", path.display()))?;
        let ds = Dataset {
            manifest,
            path: path.to_path_buf(),
        };
        ds.check_files()?;
        Ok(ds)
    }

    /// Resolve a path from the manifest (relative to its directory).
    pub fn resolve(&self, rel: &str) -> PathBuf {
        let p = Path::new(rel);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.path.parent().unwrap_or(Path::new(".")).join(p)
        }
    }

    fn check_files(&self) -> Result<()> {
        let mut problems = Vec::new();
        for case in &self.manifest.cases {
            let image = self.resolve(&case.image);
            let image_header = match read_header(&image) {
                Ok(h) => Some(h),
                Err(e) => {
                    problems.push(format!("case {:?}: {e}", case.id));
                    None
                }
            };
            if let Some(label_rel) = &case.label {
                let label = self.resolve(label_rel);
                match (read_header(&label), &image_header) {
                    (Err(e), _) => problems.push(format!("case {:?}: {e}", case.id)),
                    (Ok(lh), Some(ih)) => {
                        if lh.shape != ih.shape {
                            problems.push(format!(
                                "case {:?}: image {} has shape {:?} but label map {} has {:?}",
                                case.id,
                                image.display(),
                                ih.shape,
                                label.display(),
                                lh.shape
                            ));
                        } else {
                            let (ia, _, _) = header_affine(&ih.header, ih.shape);
                            let (la, _, _) = header_affine(&lh.header, lh.shape);
                            let d = ia.max_abs_diff(&la);
                            if d > 1e-2 || d.is_nan() {
                                problems.push(format!(
                                    "case {:?}: image {} and label map {} have different affines (differ by {d:.4} mm)",
                                    case.id,
                                    image.display(),
                                    label.display()
                                ));
                            }
                        }
                    }
                    (Ok(_), None) => {}
                }
            }
        }
        if !problems.is_empty() {
            bail!(
                "{}: {} problem(s) with the files it names:\n  {}",
                self.path.display(),
                problems.len(),
                problems.join("\n  ")
            );
        }
        Ok(())
    }

    /// Read a case: the image, and its label map (if any) with values
    /// mapped from the source's numbering to vocabulary indices.
    pub fn read_case(&self, case: &Case) -> Result<(Volume, Option<Array3<u16>>)> {
        let image_path = self.resolve(&case.image);
        let image = read_volume(&image_path)?;
        let Some(label_rel) = &case.label else {
            return Ok((image, None));
        };
        let label_path = self.resolve(label_rel);
        let raw = read_volume(&label_path)?;
        if raw.data.dim() != image.data.dim() {
            bail!(
                "{}: label map shape {:?} differs from the image's {:?}",
                label_path.display(),
                raw.shape_ijk(),
                image.shape_ijk()
            );
        }
        let lut: BTreeMap<u32, u16> = self.manifest.source_lookup(&case.source).unwrap_or_default();
        let mut unknown = std::collections::BTreeSet::new();
        let labels = raw.data.mapv(|v| {
            if v == 0.0 {
                return 0;
            }
            if v < 0.0 || v.fract() != 0.0 || !v.is_finite() {
                unknown.insert(format!("{v}"));
                return 0;
            }
            match lut.get(&(v as u32)) {
                Some(&i) => i,
                None => {
                    unknown.insert(format!("{}", v as u32));
                    0
                }
            }
        });
        if !unknown.is_empty() {
            bail!(
                "{}: label values {} are not in the mapping of source {:?} (case {:?})",
                label_path.display(),
                unknown.into_iter().collect::<Vec<_>>().join(", "),
                case.source,
                case.id
            );
        }
        Ok((image, Some(labels)))
    }
}
