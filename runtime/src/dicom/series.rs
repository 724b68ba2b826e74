//! Finding DICOM image objects in folders and files and grouping their
//! frames by series. Only headers are read here (everything before the
//! pixel data); [`super::pixels`] decodes the frames of the series chosen.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use dicom_core::Tag;
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use rayon::prelude::*;

use super::elements::{first_item, floats, int, text};
use crate::volume::{Problem, VolumeError};

/// One image plane: a single-frame object, or one frame of a multi-frame
/// (enhanced) object with its per-frame functional groups resolved.
#[derive(Clone, Debug)]
pub struct Frame {
    pub file: PathBuf,
    /// The frame's index inside its object (0 for single-frame objects).
    pub frame: u32,
    /// Whether the object holds several frames (references then carry a frame number).
    pub multi_frame: bool,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    /// ImagePositionPatient: the centre of the first voxel, LPS mm.
    pub position: Option<[f64; 3]>,
    /// ImageOrientationPatient: the row direction, then the column direction (LPS).
    pub orientation: Option<[f64; 6]>,
    /// PixelSpacing: between rows, then between columns, mm.
    pub pixel_spacing: Option<[f64; 2]>,
    pub slice_thickness: Option<f64>,
    pub rows: u32,
    pub columns: u32,
    /// RescaleSlope and RescaleIntercept (1, 0 when absent).
    pub rescale: (f64, f64),
    pub samples_per_pixel: u16,
    pub photometric: String,
}

/// The frames of one series, as found.
#[derive(Clone, Debug)]
pub struct Series {
    pub uid: String,
    pub modality: String,
    pub description: String,
    pub number: Option<i64>,
    /// The folder or file the series was found under (named in messages).
    pub source: PathBuf,
    pub frames: Vec<Frame>,
    /// Patient, study and frame-of-reference attributes of the series'
    /// first object, copied into the objects derived from it.
    pub context: InMemDicomObject,
}

impl Series {
    /// Number of files holding the series' frames.
    pub fn files(&self) -> usize {
        let mut f: Vec<&Path> = self.frames.iter().map(|f| f.file.as_path()).collect();
        f.sort();
        f.dedup();
        f.len()
    }

    /// Columns, rows and frames (of the first frame's size).
    pub fn size(&self) -> [u32; 3] {
        let f = &self.frames[0];
        [f.columns, f.rows, self.frames.len() as u32]
    }

    /// One line describing the series, for listings and messages.
    pub fn describe(&self) -> String {
        let [c, r, n] = self.size();
        format!(
            "{} {}{} — {n} slice{} of {c}x{r}{}",
            self.modality,
            self.uid,
            if self.description.is_empty() {
                String::new()
            } else {
                format!(" \"{}\"", self.description)
            },
            if n == 1 { "" } else { "s" },
            match self.number {
                Some(n) => format!(", series number {n}"),
                None => String::new(),
            }
        )
    }

    /// `self.source` with the series named, for errors about it.
    pub fn error(&self, message: impl Into<String>) -> VolumeError {
        VolumeError::new(
            &self.source,
            Problem::Dicom(format!("series {}: {}", self.uid, message.into())),
        )
    }
}

/// Whether `path` is a DICOM Part 10 file (the `DICM` marker after the
/// 128-byte preamble).
pub fn is_dicom_file(path: &Path) -> bool {
    let mut head = [0u8; 132];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head[128..] == b"DICM"
}

/// Every DICOM image series in `inputs` (folders searched recursively,
/// files taken as given), ordered by series number then UID. Files in
/// folders that are not DICOM are skipped; a named file that is not DICOM,
/// or any DICOM file that cannot be parsed, is an error naming it.
pub fn find_series(inputs: &[PathBuf]) -> Result<Vec<Series>, VolumeError> {
    let mut files: Vec<(PathBuf, PathBuf)> = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found = Vec::new();
            walk(input, &mut found)?;
            found.sort();
            files.extend(
                found
                    .into_iter()
                    .filter(|f| is_dicom_file(f))
                    .map(|f| (f, input.clone())),
            );
        } else if !input.exists() {
            return Err(VolumeError::new(input, Problem::NotFound));
        } else if !is_dicom_file(input) {
            return Err(VolumeError::new(
                input,
                Problem::Dicom("not a DICOM file (no \"DICM\" marker after the 128-byte preamble)".into()),
            ));
        } else {
            files.push((input.clone(), input.clone()));
        }
    }
    let headers: Vec<Option<Header>> = files
        .par_iter()
        .map(|(f, _)| read_header(f))
        .collect::<Result<_, _>>()?;
    let mut by_uid: BTreeMap<String, Series> = BTreeMap::new();
    for ((_, source), header) in files.iter().zip(headers) {
        let Some(h) = header else { continue };
        let s = by_uid.entry(h.series_uid.clone()).or_insert_with(|| Series {
            uid: h.series_uid.clone(),
            modality: h.modality.clone(),
            description: h.description.clone(),
            number: h.number,
            source: source.clone(),
            frames: Vec::new(),
            context: h.context.clone(),
        });
        s.frames.extend(h.frames);
    }
    if by_uid.is_empty() {
        let first = inputs.first().map(|p| p.as_path()).unwrap_or(Path::new(""));
        let what = if inputs.len() == 1 && first.is_dir() {
            "the directory holds no DICOM image series and no .nii or .nii.gz file"
        } else {
            "no DICOM image series in these inputs"
        };
        return Err(VolumeError::new(
            first,
            Problem::Dicom(format!("{what} ({} DICOM files looked at)", files.len())),
        ));
    }
    let mut series: Vec<Series> = by_uid.into_values().collect();
    series.sort_by(|a, b| {
        a.number
            .unwrap_or(i64::MAX)
            .cmp(&b.number.unwrap_or(i64::MAX))
            .then(a.uid.cmp(&b.uid))
    });
    Ok(series)
}

/// The series asked for: `choice` is a 1-based index into `series` or a
/// SeriesInstanceUID; without a choice there must be exactly one.
pub fn select_series<'a>(series: &'a [Series], choice: Option<&str>, source: &Path) -> Result<&'a Series, VolumeError> {
    let listing = || {
        series
            .iter()
            .enumerate()
            .map(|(i, s)| format!("\n  {}: {}", i + 1, s.describe()))
            .collect::<String>()
    };
    match choice {
        None if series.len() == 1 => Ok(&series[0]),
        None => Err(VolumeError::new(
            source,
            Problem::Dicom(format!(
                "{} image series found; choose one with --series INDEX or --series UID:{}",
                series.len(),
                listing()
            )),
        )),
        Some(c) => {
            let by_index = c
                .parse::<usize>()
                .ok()
                .filter(|&i| i >= 1 && i <= series.len())
                .map(|i| &series[i - 1]);
            by_index.or_else(|| series.iter().find(|s| s.uid == c)).ok_or_else(|| {
                VolumeError::new(
                    source,
                    Problem::Dicom(format!("--series {c}: no such series; found:{}", listing())),
                )
            })
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), VolumeError> {
    let rd = std::fs::read_dir(dir).map_err(|e| VolumeError::new(dir, Problem::Io(e)))?;
    for entry in rd {
        let entry = entry.map_err(|e| VolumeError::new(dir, Problem::Io(e)))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| VolumeError::new(&path, Problem::Io(e)))?;
        if kind.is_dir() {
            walk(&path, out)?;
        } else if path.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

/// What one file contributes.
struct Header {
    series_uid: String,
    modality: String,
    description: String,
    number: Option<i64>,
    frames: Vec<Frame>,
    context: InMemDicomObject,
}

/// Attributes copied from the source into derived objects.
const CONTEXT_TAGS: [Tag; 13] = [
    tags::SPECIFIC_CHARACTER_SET,
    tags::PATIENT_NAME,
    tags::PATIENT_ID,
    tags::PATIENT_BIRTH_DATE,
    tags::PATIENT_SEX,
    tags::STUDY_INSTANCE_UID,
    tags::STUDY_DATE,
    tags::STUDY_TIME,
    tags::REFERRING_PHYSICIAN_NAME,
    tags::STUDY_ID,
    tags::ACCESSION_NUMBER,
    tags::FRAME_OF_REFERENCE_UID,
    tags::POSITION_REFERENCE_INDICATOR,
];

/// Modalities whose objects are not images to segment.
const NON_IMAGE_MODALITIES: [&str; 8] = ["SEG", "RTSTRUCT", "SR", "PR", "KO", "RTPLAN", "REG", "RTDOSE"];

fn array<const N: usize>(v: Option<Vec<f64>>) -> Option<[f64; N]> {
    let v = v?;
    (v.len() == N && v.iter().all(|x| x.is_finite())).then(|| std::array::from_fn(|i| v[i]))
}

/// The header of one file (`None` for objects that are not images).
fn read_header(path: &Path) -> Result<Option<Header>, VolumeError> {
    let fail = |m: String| VolumeError::new(path, Problem::Dicom(m));
    let obj = super::open_checked(path, Some(tags::PIXEL_DATA))?;
    let sop_class = obj
        .meta()
        .media_storage_sop_class_uid()
        .trim_end_matches('\0')
        .to_string();
    let modality = text(&obj, tags::MODALITY).unwrap_or_default();
    if sop_class == uids::SEGMENTATION_STORAGE
        || NON_IMAGE_MODALITIES.contains(&modality.as_str())
        || obj.get(tags::ROWS).is_none()
        || obj.get(tags::COLUMNS).is_none()
    {
        return Ok(None);
    }
    let series_uid = text(&obj, tags::SERIES_INSTANCE_UID).ok_or_else(|| fail("no SeriesInstanceUID".into()))?;
    let sop_instance = text(&obj, tags::SOP_INSTANCE_UID).unwrap_or_else(|| {
        obj.meta()
            .media_storage_sop_instance_uid()
            .trim_end_matches('\0')
            .to_string()
    });
    let rows = int(&obj, tags::ROWS)
        .filter(|&r| r > 0)
        .ok_or_else(|| fail("Rows is missing or 0".into()))? as u32;
    let columns = int(&obj, tags::COLUMNS)
        .filter(|&c| c > 0)
        .ok_or_else(|| fail("Columns is missing or 0".into()))? as u32;
    let samples_per_pixel = int(&obj, tags::SAMPLES_PER_PIXEL).unwrap_or(1) as u16;
    let photometric = text(&obj, tags::PHOTOMETRIC_INTERPRETATION).unwrap_or_default();
    let n_frames = int(&obj, tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1) as u32;
    let shared = first_item(&obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE);
    let per_frame = obj
        .get(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .and_then(|e| e.items());
    let multi_frame = n_frames > 1 || per_frame.is_some();
    if let Some(items) = per_frame {
        if items.len() != n_frames as usize {
            return Err(fail(format!(
                "NumberOfFrames is {n_frames} but the per-frame functional groups hold {} items",
                items.len()
            )));
        }
    }
    // An attribute of frame `f`: its per-frame group, the shared group, then the top level.
    let lookup = |f: usize, group: Tag, tag: Tag| -> Option<Vec<f64>> {
        let in_group = |g: Option<&InMemDicomObject>| g.and_then(|g| first_item(g, group)).and_then(|m| floats(m, tag));
        in_group(per_frame.and_then(|p| p.get(f)))
            .or_else(|| in_group(shared))
            .or_else(|| floats(&obj, tag))
    };
    let mut frames = Vec::with_capacity(n_frames as usize);
    for f in 0..n_frames as usize {
        let slope = lookup(f, tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE, tags::RESCALE_SLOPE)
            .and_then(|v| v.first().copied())
            .filter(|s| s.is_finite() && *s != 0.0)
            .unwrap_or(1.0);
        let intercept = lookup(f, tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE, tags::RESCALE_INTERCEPT)
            .and_then(|v| v.first().copied())
            .filter(|s| s.is_finite())
            .unwrap_or(0.0);
        frames.push(Frame {
            file: path.to_path_buf(),
            frame: f as u32,
            multi_frame,
            sop_class_uid: sop_class.clone(),
            sop_instance_uid: sop_instance.clone(),
            position: array(lookup(f, tags::PLANE_POSITION_SEQUENCE, tags::IMAGE_POSITION_PATIENT)),
            orientation: array(lookup(
                f,
                tags::PLANE_ORIENTATION_SEQUENCE,
                tags::IMAGE_ORIENTATION_PATIENT,
            )),
            pixel_spacing: array(lookup(f, tags::PIXEL_MEASURES_SEQUENCE, tags::PIXEL_SPACING)),
            slice_thickness: lookup(f, tags::PIXEL_MEASURES_SEQUENCE, tags::SLICE_THICKNESS)
                .and_then(|v| v.first().copied())
                .filter(|t| t.is_finite() && *t > 0.0),
            rows,
            columns,
            rescale: (slope, intercept),
            samples_per_pixel,
            photometric: photometric.clone(),
        });
    }
    let mut context = InMemDicomObject::new_empty();
    for tag in CONTEXT_TAGS {
        if let Some(e) = obj.get(tag) {
            context.put(e.clone());
        }
    }
    Ok(Some(Header {
        series_uid,
        modality,
        description: text(&obj, tags::SERIES_DESCRIPTION).unwrap_or_default(),
        number: int(&obj, tags::SERIES_NUMBER),
        frames,
        context,
    }))
}
