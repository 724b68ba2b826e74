//! Reading NIfTI-1 files (`.nii`, `.nii.gz`) into a [`Volume`].
//!
//! The `nifti` crate parses the header and converts voxel data; everything it
//! would panic on or allocate blindly is checked here first: header size and
//! magic, dimensions, datatype/bitpix agreement, the memory the data needs,
//! and the data actually present in the file.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::path::Path;

use ndarray::{Array3, ShapeBuilder};
use nifti::{IntoNdArray, NiftiHeader, NiftiType};

use super::error::{Problem, VolumeError};
use super::header_affine::{header_affine, AffineSource};
use super::Volume;

/// Size of a NIfTI-1 header.
pub const NIFTI1_HEADER_BYTES: usize = 348;

/// Limits applied while reading.
#[derive(Clone, Copy, Debug)]
pub struct ReadOptions {
    /// Refuse volumes whose f32 voxels would need more bytes than this.
    pub max_bytes: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            max_bytes: crate::memory::default_volume_limit(),
        }
    }
}

/// The parts of a file read before any voxel data: enough to describe the
/// volume and to decide whether reading the data is safe.
#[derive(Clone, Debug)]
pub struct HeaderInfo {
    pub header: NiftiHeader,
    pub datatype: NiftiType,
    /// Voxels along i, j, k.
    pub shape: [usize; 3],
    /// Volumes along dims 4..7 (1 for a 3D file).
    pub extra_volumes: u64,
    pub gzipped: bool,
    pub affine_source: AffineSource,
    pub warnings: Vec<String>,
}

fn datatype_name(code: i16) -> String {
    let known: Option<NiftiType> = num_from_i16(code);
    match known {
        Some(t) => format!("{t:?} (code {code})"),
        None => format!("code {code}"),
    }
}

fn num_from_i16(code: i16) -> Option<NiftiType> {
    use NiftiType::*;
    [
        Uint8, Int16, Int32, Float32, Complex64, Float64, Rgb24, Int8, Uint16, Uint32, Int64, Uint64, Float128,
        Complex128, Complex256, Rgba32,
    ]
    .into_iter()
    .find(|t| *t as i16 == code)
}

fn supported(t: NiftiType) -> bool {
    use NiftiType::*;
    matches!(
        t,
        Uint8 | Int8 | Uint16 | Int16 | Uint32 | Int32 | Uint64 | Int64 | Float32 | Float64
    )
}

/// Open a file (or bytes already in memory, named `path` in messages),
/// detecting gzip by its magic bytes (not its name).
fn open<'a>(path: &Path, bytes: Option<&'a [u8]>) -> Result<(Box<dyn Read + 'a>, bool, u64), VolumeError> {
    let err = |p| VolumeError::new(path, p);
    if let Some(b) = bytes {
        if b.is_empty() {
            return Err(err(Problem::Empty));
        }
        let gz = b.len() >= 2 && b[..2] == [0x1f, 0x8b];
        let reader: Box<dyn Read + 'a> = if gz {
            Box::new(flate2::read::MultiGzDecoder::new(b))
        } else {
            Box::new(b)
        };
        return Ok((reader, gz, b.len() as u64));
    }
    let meta = std::fs::metadata(path).map_err(|e| {
        err(if e.kind() == ErrorKind::NotFound {
            Problem::NotFound
        } else {
            Problem::Io(e)
        })
    })?;
    if meta.is_dir() {
        return Err(err(Problem::IsDirectory));
    }
    if meta.len() == 0 {
        return Err(err(Problem::Empty));
    }
    let mut file = BufReader::new(File::open(path).map_err(|e| err(Problem::Io(e)))?);
    let mut magic = [0u8; 2];
    let gz = match file.get_mut().read_exact(&mut magic) {
        Ok(()) => magic == [0x1f, 0x8b],
        Err(_) => false,
    };
    // Re-open so the reader starts at byte 0 either way.
    let file = BufReader::new(File::open(path).map_err(|e| err(Problem::Io(e)))?);
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    Ok((reader, gz, meta.len()))
}

/// Read up to `buf.len()` bytes; returns how many were read.
fn read_fully(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn io_problem(gz: bool, e: std::io::Error) -> Problem {
    if gz {
        Problem::Gzip(e)
    } else {
        Problem::Io(e)
    }
}

/// Parse and check the header; returns the info and the open reader,
/// positioned just after the header.
fn read_header_from<'a>(
    path: &Path,
    bytes: Option<&'a [u8]>,
) -> Result<(HeaderInfo, Box<dyn Read + 'a>, u64), VolumeError> {
    let err = |p| VolumeError::new(path, p);
    let (mut reader, gz, file_len) = open(path, bytes)?;
    let mut bytes = [0u8; NIFTI1_HEADER_BYTES];
    let got = read_fully(reader.as_mut(), &mut bytes).map_err(|e| err(io_problem(gz, e)))?;
    let sizeof_le = i32::from_le_bytes(bytes[..4].try_into().unwrap());
    let sizeof_be = i32::from_be_bytes(bytes[..4].try_into().unwrap());
    if got >= 4 && (sizeof_le == 540 || sizeof_be == 540) {
        return Err(err(Problem::Nifti2));
    }
    if got >= 4 && sizeof_le != 348 && sizeof_be != 348 {
        return Err(err(Problem::NotNifti(sizeof_le)));
    }
    if got < NIFTI1_HEADER_BYTES {
        return Err(err(Problem::TruncatedHeader { got }));
    }
    let magic = &bytes[344..348];
    if magic == b"ni1\0" {
        return Err(err(Problem::HeaderPair));
    }
    if magic != b"n+1\0" {
        return Err(err(Problem::WrongMagic(
            String::from_utf8_lossy(magic).trim_end_matches('\0').to_string(),
        )));
    }
    let header = NiftiHeader::from_reader(&bytes[..]).map_err(|e| err(Problem::Inconsistent(e.to_string())))?;
    let info = check_header(path, header, gz)?;
    Ok((info, reader, file_len))
}

/// Check a parsed header: dimensions, datatype, offset.
fn check_header(path: &Path, header: NiftiHeader, gzipped: bool) -> Result<HeaderInfo, VolumeError> {
    let err = |p| VolumeError::new(path, p);
    let mut warnings = Vec::new();
    let ndim = header.dim[0] as i16;
    if !(1..=7).contains(&ndim) {
        return Err(err(Problem::Dimensions(format!("dim[0] is {ndim}, must be 1 to 7"))));
    }
    let ndim = ndim as usize;
    for d in 1..=ndim {
        let v = header.dim[d] as i16;
        if v <= 0 {
            return Err(err(Problem::Dimensions(format!("dim[{d}] is {v}, must be positive"))));
        }
    }
    if ndim < 3 {
        return Err(err(Problem::Degenerate(format!(
            "a {ndim}D image, not a 3D volume (dim[0] = {ndim})"
        ))));
    }
    let shape = [header.dim[1] as usize, header.dim[2] as usize, header.dim[3] as usize];
    if shape.iter().any(|&s| s < 2) {
        return Err(err(Problem::Degenerate(format!(
            "degenerate volume {}x{}x{}: a 3D volume needs at least 2 voxels along each axis",
            shape[0], shape[1], shape[2]
        ))));
    }
    let extra_volumes: u64 = header.dim[4..=ndim.max(3)]
        .iter()
        .map(|&d| d as u64)
        .product::<u64>()
        .max(1);
    if extra_volumes > 1 {
        warnings.push(format!(
            "{}D file with {extra_volumes} volumes: only the first 3D volume is used",
            ndim
        ));
    }
    let datatype =
        num_from_i16(header.datatype).ok_or_else(|| err(Problem::Datatype(datatype_name(header.datatype))))?;
    if !supported(datatype) {
        return Err(err(Problem::Datatype(format!(
            "{} (supported: uint8, int8, uint16, int16, uint32, int32, uint64, int64, float32, float64)",
            datatype_name(header.datatype)
        ))));
    }
    let bits = (datatype.size_of() * 8) as i16;
    if header.bitpix != bits {
        return Err(err(Problem::Inconsistent(format!(
            "bitpix is {} but datatype {:?} has {bits} bits",
            header.bitpix, datatype
        ))));
    }
    if !header.vox_offset.is_finite() || header.vox_offset < NIFTI1_HEADER_BYTES as f32 {
        return Err(err(Problem::Inconsistent(format!(
            "vox_offset {} must be at least 348 (voxel data cannot start inside the header)",
            header.vox_offset
        ))));
    }
    let (_, affine_source, affine_warnings) = header_affine(&header, shape);
    warnings.extend(affine_warnings);
    Ok(HeaderInfo {
        header,
        datatype,
        shape,
        extra_volumes,
        gzipped,
        affine_source,
        warnings,
    })
}

/// Read and check only the header of a file.
pub fn read_header(path: &Path) -> Result<HeaderInfo, VolumeError> {
    read_header_from(path, None).map(|(info, _, _)| info)
}

/// Read a NIfTI-1 volume with the default limits.
pub fn read_volume(path: &Path) -> Result<Volume, VolumeError> {
    read_volume_with(path, ReadOptions::default())
}

/// Read a NIfTI-1 volume: the first 3D volume of the file, as f32 with
/// `scl_slope`/`scl_inter` applied (ignored when the slope is 0 or not
/// finite, as nibabel does).
pub fn read_volume_with(path: &Path, options: ReadOptions) -> Result<Volume, VolumeError> {
    read_volume_from(path, None, options)
}

/// Read a NIfTI-1 volume from bytes in memory (`.nii` or gzip-compressed);
/// `name` is used in messages.
pub fn read_volume_bytes(name: &Path, bytes: &[u8], options: ReadOptions) -> Result<Volume, VolumeError> {
    read_volume_from(name, Some(bytes), options)
}

fn read_volume_from(path: &Path, bytes: Option<&[u8]>, options: ReadOptions) -> Result<Volume, VolumeError> {
    let err = |p| VolumeError::new(path, p);
    let (info, mut reader, file_len) = read_header_from(path, bytes)?;
    let nvox = info.shape.iter().map(|&s| s as u64).product::<u64>();
    let elem = info.datatype.size_of() as u64;
    let data_bytes = nvox * elem;
    // The f32 array plus the raw bytes are held at once while converting.
    let need = nvox * 4 + data_bytes;
    if need > options.max_bytes {
        return Err(err(Problem::TooLarge {
            shape: info.shape.iter().map(|&s| s as u64).collect(),
            need_bytes: need,
            limit_bytes: options.max_bytes,
        }));
    }
    let offset = info.header.vox_offset as u64;
    if !info.gzipped && file_len < offset + data_bytes {
        return Err(err(Problem::DataShort {
            expected: data_bytes,
            offset,
            got: file_len.saturating_sub(offset),
        }));
    }
    // Skip extensions between the header and the voxel data.
    let skip = offset - NIFTI1_HEADER_BYTES as u64;
    let skipped = std::io::copy(&mut reader.as_mut().take(skip), &mut std::io::sink())
        .map_err(|e| err(io_problem(info.gzipped, e)))?;
    if skipped < skip {
        return Err(err(Problem::DataShort {
            expected: data_bytes,
            offset,
            got: 0,
        }));
    }
    let mut raw = vec![0u8; data_bytes as usize];
    let got = read_fully(reader.as_mut(), &mut raw).map_err(|e| err(io_problem(info.gzipped, e)))?;
    if (got as u64) < data_bytes {
        return Err(err(Problem::DataShort {
            expected: data_bytes,
            offset,
            got: got as u64,
        }));
    }
    if info.gzipped {
        // Read to the end of the stream so gzip checks its CRC: corrupted
        // data can inflate without error until then.
        std::io::copy(&mut reader, &mut std::io::sink()).map_err(|e| err(Problem::Gzip(e)))?;
    }
    let (slope, inter) = scaling(&info.header);
    let [ni, nj, nk] = info.shape;
    let raw_dim = [3, ni as u16, nj as u16, nk as u16, 1, 1, 1, 1];
    let inmem =
        nifti::InMemNiftiVolume::from_raw_fields(raw_dim, info.datatype, slope, inter, raw, info.header.endianness)
            .map_err(|e| err(Problem::Inconsistent(e.to_string())))?;
    let fortran = inmem
        .into_ndarray::<f32>()
        .map_err(|e| err(Problem::Inconsistent(e.to_string())))?;
    // Fortran-ordered [i, j, k] → C-ordered [k, j, i]: the same memory,
    // reinterpreted without copying. This is the one place where the file's
    // axis order is converted.
    let flat = fortran.into_raw_vec_and_offset().0;
    let data = Array3::from_shape_vec((nk, nj, ni).strides((nj * ni, ni, 1)), flat)
        .map_err(|e| err(Problem::Inconsistent(e.to_string())))?;
    let (affine, affine_source, _) = header_affine(&info.header, info.shape);
    Ok(Volume {
        data,
        affine,
        header: info.header,
        datatype: info.datatype,
        affine_source,
        warnings: info.warnings,
    })
}

/// The scaling nibabel applies: none when the slope is 0 or not finite.
fn scaling(h: &NiftiHeader) -> (f32, f32) {
    if h.scl_slope.is_finite() && h.scl_slope != 0.0 {
        let inter = if h.scl_inter.is_finite() { h.scl_inter } else { 0.0 };
        if h.scl_slope == 1.0 && inter == 0.0 {
            (0.0, 0.0)
        } else {
            (h.scl_slope, inter)
        }
    } else {
        (0.0, 0.0)
    }
}
