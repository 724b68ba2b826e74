//! libedge_seg: the edge-seg runtime for C and C++ (device vendors).
//!
//! Conventions, for every function:
//! - the return value is an [`EsStatus`]; on failure [`es_last_error`]
//!   gives this thread's message (valid until the thread's next call);
//! - no panic crosses the boundary (each call runs under `catch_unwind`);
//! - handles are opaque; a model may be used by several jobs on several
//!   threads at once; each handle is freed by its `_free` function.
//!
//! Voxel buffers are in NIfTI order: x (i) fastest, then y (j), then z
//! (k). Affines are 4x4, row-major, mapping voxel indices `(i, j, k, 1)` to
//! world millimetres in RAS+ (NIfTI's frame); use [`es_affine_lps_to_ras`]
//! for DICOM/ITK (LPS) affines.

#![allow(clippy::missing_safety_doc)]

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use edge_seg_runtime::backend::{TileBackend, TractBackend};
use edge_seg_runtime::builtin::{default_model_bytes, DEFAULT_MODEL};
use edge_seg_runtime::geometry::{ijk_of_dim, reversed, Affine};
use edge_seg_runtime::infer::{InferError, InferOptions, OutputResampling, Segmentation, Segmenter};
use edge_seg_runtime::model::{Model, ModelSource};
use edge_seg_runtime::outputs::{output_paths, write_outputs, OutputFormat};
use edge_seg_runtime::scan::ScanHeader;
use edge_seg_runtime::statistics::{structure_statistics, StructureReport};
use edge_seg_runtime::volume::{ReadOptions, Volume};
use ndarray::Array3;

/// Result of every call.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EsStatus {
    Ok = 0,
    /// A null pointer, a bad size or an out-of-range index.
    InvalidArgument = 1,
    /// A file could not be read or written.
    Io = 2,
    /// The model could not be loaded or does not match its card.
    Model = 3,
    /// The volume or its geometry cannot be segmented.
    Volume = 4,
    /// The job does not fit the memory budget.
    Memory = 5,
    /// The progress callback asked to stop.
    Cancelled = 6,
    /// An internal error (a bug): the message says what.
    Internal = 7,
}

/// Compute backend.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EsBackend {
    /// tract on the CPU.
    Tract = 0,
}

/// Options of a segmentation job. Fill with [`es_options_default`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EsOptions {
    /// CPU threads (0: all cores; at most 4 per core). The job's own work (resampling, softmax,
    /// blending) runs on a pool of this many threads; tract's matrix kernels'
    /// thread count is process-wide: the last job's setting applies to all.
    pub threads: u32,
    /// Memory budget in bytes (0: 75 % of the memory available).
    pub max_memory_bytes: u64,
    /// Tile edge in voxels (0: the largest that fits the budget).
    pub tile: u32,
    pub backend: EsBackend,
    /// Non-zero: average over the 8 axis mirrorings.
    pub test_time_mirroring: c_int,
    /// Non-zero: keep only the largest component of each structure.
    pub largest_component: c_int,
    /// Non-zero: fill holes enclosed by a structure.
    pub fill_holes: c_int,
    /// Non-zero: crop to the body before inference.
    pub crop_to_body: c_int,
    /// Non-zero: decode on the model grid and copy each label to the input
    /// voxels it covers (less memory, blockier boundaries); zero: interpolate
    /// the class scores to each input voxel and decode there.
    pub nearest_labels: c_int,
}

impl Default for EsOptions {
    fn default() -> Self {
        EsOptions {
            threads: 0,
            max_memory_bytes: 0,
            tile: 0,
            backend: EsBackend::Tract,
            test_time_mirroring: 0,
            largest_component: 0,
            fill_holes: 0,
            crop_to_body: 0,
            nearest_labels: 0,
        }
    }
}

/// Called after each tile with the tiles done and the total; return 0 to
/// cancel the job, non-zero to continue. May be called from worker threads.
pub type EsProgressFn = Option<unsafe extern "C" fn(user: *mut c_void, done: usize, total: usize) -> c_int>;

/// A loaded model.
pub struct EsModel {
    model: Model,
    backend: TractBackend,
    card_json: CString,
    labels: Vec<CString>,
}

/// A finished segmentation: the label map on the input's grid.
pub struct EsJob {
    labels: Array3<u16>,
    dims: [usize; 3],
    /// Labels 1.. of the model, in order.
    structures: Vec<StructureReport>,
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::new("").unwrap());
}

fn set_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// Run `f` with panics and errors turned into a status and a message.
fn guard(f: impl FnOnce() -> Result<(), (EsStatus, String)>) -> EsStatus {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => {
            set_error("");
            EsStatus::Ok
        }
        Ok(Err((status, msg))) => {
            set_error(&msg);
            status
        }
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown".into());
            set_error(&format!("internal error: {msg}"));
            EsStatus::Internal
        }
    }
}

fn invalid(msg: &str) -> (EsStatus, String) {
    (EsStatus::InvalidArgument, msg.to_string())
}

unsafe fn path_arg(p: *const c_char, what: &str) -> Result<PathBuf, (EsStatus, String)> {
    if p.is_null() {
        return Err(invalid(&format!("{what} is null")));
    }
    let s = CStr::from_ptr(p)
        .to_str()
        .map_err(|_| invalid(&format!("{what} is not UTF-8")))?;
    Ok(PathBuf::from(s))
}

fn model_handle(model: Model) -> Box<EsModel> {
    let backend = TractBackend::new(&model.proto, model.card.classes());
    let card_json = CString::new(model.card.to_json_pretty()).unwrap_or_default();
    let labels = model
        .card
        .labels
        .iter()
        .map(|l| CString::new(l.as_str()).unwrap_or_default())
        .collect();
    Box::new(EsModel {
        model,
        backend,
        card_json,
        labels,
    })
}

/// This thread's last error message ("" after a successful call).
#[no_mangle]
pub extern "C" fn es_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// The library version, e.g. "0.1.0".
#[no_mangle]
pub extern "C" fn es_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
}

/// Default options.
#[no_mangle]
pub unsafe extern "C" fn es_options_default(out: *mut EsOptions) -> EsStatus {
    guard(|| {
        if out.is_null() {
            return Err(invalid("options pointer is null"));
        }
        *out = EsOptions::default();
        Ok(())
    })
}

/// Load a model from an ONNX file (with its card inside).
#[no_mangle]
pub unsafe extern "C" fn es_model_load(path: *const c_char, out: *mut *mut EsModel) -> EsStatus {
    guard(|| {
        if out.is_null() {
            return Err(invalid("output pointer is null"));
        }
        let p = path_arg(path, "path")?;
        let model = Model::from_file(&p, None).map_err(|e| (EsStatus::Model, e.to_string()))?;
        *out = Box::into_raw(model_handle(model));
        Ok(())
    })
}

/// Load a model from ONNX bytes in memory (copied; the buffer may be freed after).
#[no_mangle]
pub unsafe extern "C" fn es_model_load_memory(data: *const u8, len: usize, out: *mut *mut EsModel) -> EsStatus {
    guard(|| {
        if out.is_null() || data.is_null() {
            return Err(invalid("null pointer"));
        }
        let bytes = std::slice::from_raw_parts(data, len);
        let model = Model::from_bytes(bytes, ModelSource::Builtin("memory"), None)
            .map_err(|e| (EsStatus::Model, e.to_string()))?;
        *out = Box::into_raw(model_handle(model));
        Ok(())
    })
}

/// Load the model built into the library.
#[no_mangle]
pub unsafe extern "C" fn es_model_load_default(out: *mut *mut EsModel) -> EsStatus {
    guard(|| {
        if out.is_null() {
            return Err(invalid("output pointer is null"));
        }
        let bytes = default_model_bytes().ok_or((EsStatus::Model, "this build has no default model".to_string()))?;
        let model = Model::from_bytes(bytes, ModelSource::Builtin(DEFAULT_MODEL), None)
            .map_err(|e| (EsStatus::Model, e.to_string()))?;
        *out = Box::into_raw(model_handle(model));
        Ok(())
    })
}

/// Free a model (null is ignored). No job may be using it.
#[no_mangle]
pub unsafe extern "C" fn es_model_free(model: *mut EsModel) {
    if !model.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(model))));
    }
}

/// Number of labels, background included.
#[no_mangle]
pub unsafe extern "C" fn es_model_label_count(model: *const EsModel, out: *mut usize) -> EsStatus {
    guard(|| {
        let m = model.as_ref().ok_or_else(|| invalid("model is null"))?;
        if out.is_null() {
            return Err(invalid("output pointer is null"));
        }
        *out = m.labels.len();
        Ok(())
    })
}

/// Name of label `index` (valid while the model lives).
#[no_mangle]
pub unsafe extern "C" fn es_model_label_name(model: *const EsModel, index: usize, out: *mut *const c_char) -> EsStatus {
    guard(|| {
        let m = model.as_ref().ok_or_else(|| invalid("model is null"))?;
        if out.is_null() {
            return Err(invalid("output pointer is null"));
        }
        let l = m
            .labels
            .get(index)
            .ok_or_else(|| invalid(&format!("label index {index} out of range")))?;
        *out = l.as_ptr();
        Ok(())
    })
}

/// The model's voxel spacing `[z, y, x]` in mm, and its tile input and
/// output edges `[z, y, x]`.
#[no_mangle]
pub unsafe extern "C" fn es_model_geometry(
    model: *const EsModel,
    spacing_zyx: *mut f64,
    tile_input_zyx: *mut usize,
    tile_output_zyx: *mut usize,
) -> EsStatus {
    guard(|| {
        let m = model.as_ref().ok_or_else(|| invalid("model is null"))?;
        if spacing_zyx.is_null() || tile_input_zyx.is_null() || tile_output_zyx.is_null() {
            return Err(invalid("output pointer is null"));
        }
        let c = &m.model.card;
        for d in 0..3 {
            *spacing_zyx.add(d) = c.spacing_mm[d];
            *tile_input_zyx.add(d) = c.tile.input[d];
            *tile_output_zyx.add(d) = c.tile.output[d];
        }
        Ok(())
    })
}

/// The model card as JSON (valid while the model lives).
#[no_mangle]
pub unsafe extern "C" fn es_model_card_json(model: *const EsModel, out: *mut *const c_char) -> EsStatus {
    guard(|| {
        let m = model.as_ref().ok_or_else(|| invalid("model is null"))?;
        if out.is_null() {
            return Err(invalid("output pointer is null"));
        }
        *out = m.card_json.as_ptr();
        Ok(())
    })
}

/// The job's thread count: all cores for 0, and at most 4 per core.
fn job_threads(o: &EsOptions) -> usize {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if o.threads == 0 {
        cores
    } else {
        (o.threads as usize).min(4 * cores)
    }
}

fn infer_options(o: &EsOptions) -> InferOptions {
    edge_seg_runtime::backend::tract::set_threads(job_threads(o));
    InferOptions {
        max_memory: if o.max_memory_bytes == 0 {
            edge_seg_runtime::memory::default_budget()
        } else {
            o.max_memory_bytes
        },
        tile: if o.tile == 0 { None } else { Some(o.tile as usize) },
        roi_body: o.crop_to_body != 0,
        tta: o.test_time_mirroring != 0,
        largest_component: o.largest_component != 0,
        fill_holes: o.fill_holes != 0,
        overlap: 0.5,
        parallel_tiles: false,
        resampling: if o.nearest_labels != 0 {
            OutputResampling::Nearest
        } else {
            OutputResampling::Linear
        },
    }
}

/// Run a job; classify errors into statuses.
fn run_job(
    m: &EsModel,
    options: Option<&EsOptions>,
    vol: &Volume,
    name: &Path,
    progress: EsProgressFn,
    user: *mut c_void,
) -> Result<Segmentation, (EsStatus, String)> {
    let options = options.copied().unwrap_or_default();
    let backend: &dyn TileBackend = match options.backend {
        EsBackend::Tract => &m.backend,
    };
    let seg = Segmenter {
        model: &m.model,
        backend,
        options: infer_options(&options),
    };
    let user = user as usize;
    let cb = move |done: usize, total: usize| -> bool {
        match progress {
            // SAFETY: the caller gave this callback and its user pointer.
            Some(f) => unsafe { f(user as *mut c_void, done, total) != 0 },
            None => true,
        }
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(job_threads(&options))
        .build()
        .map_err(|e| (EsStatus::Internal, format!("cannot start the job's threads: {e}")))?;
    // Planned and run in the job's pool, so both see its thread count.
    pool.install(|| {
        let tile = seg
            .plan_memory_for(name, vol.shape_ijk(), &vol.affine)
            .map_err(status_of)?;
        seg.segment(vol, name, tile, &cb).map_err(status_of)
    })
}

/// The status and message of an inference error, by its kind.
fn status_of(e: InferError) -> (EsStatus, String) {
    let status = match &e {
        InferError::Memory { .. } => EsStatus::Memory,
        InferError::Cancelled { .. } => EsStatus::Cancelled,
        InferError::Volume(_) | InferError::Backend { .. } => EsStatus::Volume,
    };
    (status, e.to_string())
}

fn job_from(seg: Segmentation, vol: &Volume, card_labels: &[String]) -> Box<EsJob> {
    let dims = ijk_of_dim(seg.labels.dim());
    let structures = structure_statistics(&seg.labels, &vol.data, &vol.affine, card_labels);
    Box::new(EsJob {
        labels: seg.labels,
        dims,
        structures,
    })
}

/// Segment a volume in memory: `voxels` holds `dims[0]·dims[1]·dims[2]`
/// floats, x fastest (NIfTI order), intensities in the modality's units
/// (Hounsfield units for CT); `affine` is 4x4 row-major voxel → RAS mm.
#[no_mangle]
pub unsafe extern "C" fn es_segment_volume(
    model: *const EsModel,
    options: *const EsOptions,
    voxels: *const f32,
    dims: *const usize,
    affine: *const f64,
    progress: EsProgressFn,
    user: *mut c_void,
    out: *mut *mut EsJob,
) -> EsStatus {
    guard(|| {
        let m = model.as_ref().ok_or_else(|| invalid("model is null"))?;
        if voxels.is_null() || dims.is_null() || affine.is_null() || out.is_null() {
            return Err(invalid("null pointer"));
        }
        let d = [*dims, *dims.add(1), *dims.add(2)];
        if d.iter().any(|&v| v < 2) {
            return Err(invalid(&format!("dims {d:?}: every dimension must be at least 2")));
        }
        let n = d[0]
            .checked_mul(d[1])
            .and_then(|v| v.checked_mul(d[2]))
            .ok_or_else(|| invalid("dims overflow"))?;
        let data = std::slice::from_raw_parts(voxels, n).to_vec();
        let mut a = Affine::IDENTITY;
        for r in 0..4 {
            for c in 0..4 {
                a.0[r][c] = *affine.add(r * 4 + c);
            }
        }
        let [z, y, x] = reversed(d);
        let arr = Array3::from_shape_vec((z, y, x), data).map_err(|e| invalid(&e.to_string()))?;
        let vol = Volume::from_array(arr, a);
        let seg = run_job(m, options.as_ref(), &vol, Path::new("volume"), progress, user)?;
        *out = Box::into_raw(job_from(seg, &vol, &m.model.card.labels));
        Ok(())
    })
}

/// Segment a NIfTI file or a DICOM series (a folder holding it, searched
/// recursively, or one of its files) and write the label map to
/// `out_path`, with a colour table and a JSON report beside it, as
/// `edge-seg infer` does. The label map is a DICOM Segmentation
/// referencing the series when `out_path` ends in `.dcm` (DICOM input
/// only), NIfTI otherwise. `job` may be null when the labels are not needed
/// in memory. A folder holding several series is refused with their list:
/// use [`es_segment_series`].
#[no_mangle]
pub unsafe extern "C" fn es_segment_file(
    model: *const EsModel,
    options: *const EsOptions,
    in_path: *const c_char,
    out_path: *const c_char,
    progress: EsProgressFn,
    user: *mut c_void,
    job: *mut *mut EsJob,
) -> EsStatus {
    es_segment_series(model, options, in_path, std::ptr::null(), out_path, progress, user, job)
}

/// [`es_segment_file`] for one series of a DICOM folder: `series` is its
/// index in the folder's list (from 1, as `edge-seg info FOLDER` prints it)
/// or its SeriesInstanceUID; null when there is one series (or NIfTI input).
/// The series' modality must be the model's.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn es_segment_series(
    model: *const EsModel,
    options: *const EsOptions,
    in_path: *const c_char,
    series: *const c_char,
    out_path: *const c_char,
    progress: EsProgressFn,
    user: *mut c_void,
    job: *mut *mut EsJob,
) -> EsStatus {
    guard(|| {
        let m = model.as_ref().ok_or_else(|| invalid("model is null"))?;
        let input = path_arg(in_path, "input path")?;
        let output = path_arg(out_path, "output path")?;
        let series = if series.is_null() {
            None
        } else {
            Some(
                CStr::from_ptr(series)
                    .to_str()
                    .map_err(|_| invalid("series is not UTF-8"))?
                    .to_string(),
            )
        };
        let opts = options.as_ref().copied();
        let budget = opts
            .map(|o| o.max_memory_bytes)
            .filter(|&b| b > 0)
            .unwrap_or_else(edge_seg_runtime::memory::default_budget);
        let format = if output.extension().is_some_and(|e| e.eq_ignore_ascii_case("dcm")) {
            OutputFormat::DicomSeg
        } else {
            OutputFormat::Nifti
        };
        let paths = output_paths(&input, Some(&output), false, &m.model.card.labels, None, format);
        edge_seg_runtime::outputs::check_outputs(&input, &paths).map_err(|e| (EsStatus::Io, e.to_string()))?;
        let header = ScanHeader::open(&input, series.as_deref()).map_err(|e| (EsStatus::Volume, e.to_string()))?;
        let expected = m.model.card.modality.to_string();
        match header.modality() {
            Some(modality) if !modality.eq_ignore_ascii_case(&expected) => {
                return Err((
                    EsStatus::Volume,
                    format!(
                        "{}: the series is {modality}, the model segments {expected} scans",
                        input.display()
                    ),
                ))
            }
            None if format == OutputFormat::DicomSeg => {
                return Err(invalid(
                    "a .dcm output (DICOM Segmentation) needs a DICOM series as input",
                ))
            }
            _ => {}
        }
        let scan = header
            .read(ReadOptions { max_bytes: budget })
            .map_err(|e| (EsStatus::Volume, e.to_string()))?;
        let seg = run_job(m, opts.as_ref(), &scan.volume, &input, progress, user)?;
        write_outputs(
            &scan,
            &seg,
            &m.model,
            "tract",
            &paths,
            scan.volume.warnings.clone(),
            None,
        )
        .map_err(|e| (EsStatus::Io, e.to_string()))?;
        if !job.is_null() {
            *job = Box::into_raw(job_from(seg, &scan.volume, &m.model.card.labels));
        }
        Ok(())
    })
}

/// The label map (valid while the job lives), x fastest, and its dims.
#[no_mangle]
pub unsafe extern "C" fn es_job_labels(job: *const EsJob, labels: *mut *const u16, dims: *mut usize) -> EsStatus {
    guard(|| {
        let j = job.as_ref().ok_or_else(|| invalid("job is null"))?;
        if labels.is_null() || dims.is_null() {
            return Err(invalid("output pointer is null"));
        }
        *labels = j.labels.as_ptr();
        for d in 0..3 {
            *dims.add(d) = j.dims[d];
        }
        Ok(())
    })
}

/// Voxel count and volume (mL) of label `index`.
#[no_mangle]
pub unsafe extern "C" fn es_job_structure(
    job: *const EsJob,
    index: usize,
    voxels: *mut u64,
    volume_ml: *mut f64,
) -> EsStatus {
    guard(|| {
        let j = job.as_ref().ok_or_else(|| invalid("job is null"))?;
        if voxels.is_null() || volume_ml.is_null() {
            return Err(invalid("output pointer is null"));
        }
        let (v, ml) = match index {
            0 => (0, 0.0),
            _ => {
                let s = structure(j, index)?;
                (s.voxels, s.volume_ml)
            }
        };
        *voxels = v;
        *volume_ml = ml;
        Ok(())
    })
}

fn structure(j: &EsJob, index: usize) -> Result<&StructureReport, (EsStatus, String)> {
    index
        .checked_sub(1)
        .and_then(|n| j.structures.get(n))
        .ok_or_else(|| invalid(&format!("label index {index} out of range")))
}

/// Statistics of one structure (label `index` ≥ 1) of a job, as in the JSON
/// report: intensity in the scan's units, centroid and box in mm (RAS+ and
/// LPS+), and whether it touches the scan's border (its volume is then a
/// lower bound). For a structure with no voxels `voxels` is 0 and the other
/// fields are NaN (`touches_border` 0).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EsStructureStats {
    pub voxels: u64,
    pub volume_ml: f64,
    pub mean: f64,
    pub median: f64,
    pub sd: f64,
    pub min: f64,
    pub max: f64,
    pub centroid_ras_mm: [f64; 3],
    pub centroid_lps_mm: [f64; 3],
    pub bbox_ras_min_mm: [f64; 3],
    pub bbox_ras_max_mm: [f64; 3],
    pub bbox_lps_min_mm: [f64; 3],
    pub bbox_lps_max_mm: [f64; 3],
    pub touches_border: i32,
}

/// Fill `out` with the statistics of label `index` (1 to the model's label count − 1).
#[no_mangle]
pub unsafe extern "C" fn es_job_structure_stats(
    job: *const EsJob,
    index: usize,
    out: *mut EsStructureStats,
) -> EsStatus {
    guard(|| {
        let j = job.as_ref().ok_or_else(|| invalid("job is null"))?;
        if out.is_null() {
            return Err(invalid("output pointer is null"));
        }
        let s = structure(j, index)?;
        let nan3 = [f64::NAN; 3];
        let i = s.intensity.as_ref();
        let pick = |f: fn(&edge_seg_runtime::statistics::Intensity) -> f64| i.map(f).unwrap_or(f64::NAN);
        *out = EsStructureStats {
            voxels: s.voxels,
            volume_ml: s.volume_ml,
            mean: pick(|i| i.mean),
            median: pick(|i| i.median),
            sd: pick(|i| i.sd),
            min: pick(|i| i.min),
            max: pick(|i| i.max),
            centroid_ras_mm: s.centroid_ras_mm.unwrap_or(nan3),
            centroid_lps_mm: s.centroid_lps_mm.unwrap_or(nan3),
            bbox_ras_min_mm: s.bbox_ras_mm.map(|b| b[0]).unwrap_or(nan3),
            bbox_ras_max_mm: s.bbox_ras_mm.map(|b| b[1]).unwrap_or(nan3),
            bbox_lps_min_mm: s.bbox_lps_mm.map(|b| b[0]).unwrap_or(nan3),
            bbox_lps_max_mm: s.bbox_lps_mm.map(|b| b[1]).unwrap_or(nan3),
            touches_border: i32::from(s.touches_border),
        };
        Ok(())
    })
}

/// Free a job (null is ignored).
#[no_mangle]
pub unsafe extern "C" fn es_job_free(job: *mut EsJob) {
    if !job.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(job))));
    }
}

/// Convert a voxel → LPS affine (DICOM, ITK) to voxel → RAS (NIfTI): the
/// first two rows change sign. `lps` and `ras` may be the same buffer.
#[no_mangle]
pub unsafe extern "C" fn es_affine_lps_to_ras(lps: *const f64, ras: *mut f64) -> EsStatus {
    guard(|| {
        if lps.is_null() || ras.is_null() {
            return Err(invalid("null pointer"));
        }
        for i in 0..16 {
            let v = *lps.add(i);
            *ras.add(i) = if i < 8 { -v } else { v };
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_labels_selects_copying_labels_back() {
        let mut o = EsOptions::default();
        assert_eq!(infer_options(&o).resampling, OutputResampling::Linear);
        o.nearest_labels = 1;
        assert_eq!(infer_options(&o).resampling, OutputResampling::Nearest);
    }
}
