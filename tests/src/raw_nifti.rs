//! NIfTI-1 files written byte by byte, so tests control every header field
//! (and can break any of them).

use std::io::Write;
use std::path::Path;

/// Header fields and voxel bytes of a NIfTI-1 file. Defaults describe a
/// valid 4x5x6 uint8 volume with an identity sform and qform.
#[derive(Clone, Debug)]
pub struct RawNifti {
    pub big_endian: bool,
    pub sizeof_hdr: i32,
    pub dim: [i16; 8],
    pub datatype: i16,
    pub bitpix: i16,
    pub pixdim: [f32; 8],
    pub vox_offset: f32,
    pub scl_slope: f32,
    pub scl_inter: f32,
    pub xyzt_units: u8,
    pub qform_code: i16,
    pub sform_code: i16,
    pub quatern: [f32; 6],
    pub srow: [[f32; 4]; 3],
    pub magic: [u8; 4],
    /// Voxel bytes, written after the header and 4 extension bytes (padded
    /// with zeros up to `vox_offset` when that lies further).
    pub data: Vec<u8>,
}

impl Default for RawNifti {
    fn default() -> Self {
        let dim = [3, 4, 5, 6, 1, 1, 1, 1];
        RawNifti {
            big_endian: false,
            sizeof_hdr: 348,
            dim,
            datatype: 2,
            bitpix: 8,
            pixdim: [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
            vox_offset: 352.0,
            scl_slope: 1.0,
            scl_inter: 0.0,
            xyzt_units: 2,
            qform_code: 1,
            sform_code: 1,
            quatern: [0.0; 6],
            srow: [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]],
            magic: *b"n+1\0",
            data: (0..120u32).map(|v| v as u8).collect(),
        }
    }
}

impl RawNifti {
    /// A valid float32 volume of shape (i, j, k) with the given values
    /// (i fastest).
    pub fn float32(shape: [i16; 3], values: &[f32]) -> RawNifti {
        RawNifti {
            dim: [3, shape[0], shape[1], shape[2], 1, 1, 1, 1],
            datatype: 16,
            bitpix: 32,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..RawNifti::default()
        }
    }

    /// The 348 header bytes.
    pub fn header_bytes(&self) -> Vec<u8> {
        let mut h = vec![0u8; 348];
        let be = self.big_endian;
        let put = |h: &mut Vec<u8>, off: usize, bytes: &[u8]| h[off..off + bytes.len()].copy_from_slice(bytes);
        let i32b = |v: i32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let i16b = |v: i16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let f32b = |v: f32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        put(&mut h, 0, &i32b(self.sizeof_hdr));
        h[38] = b'r';
        for (n, d) in self.dim.iter().enumerate() {
            put(&mut h, 40 + 2 * n, &i16b(*d));
        }
        put(&mut h, 70, &i16b(self.datatype));
        put(&mut h, 72, &i16b(self.bitpix));
        for (n, p) in self.pixdim.iter().enumerate() {
            put(&mut h, 76 + 4 * n, &f32b(*p));
        }
        put(&mut h, 108, &f32b(self.vox_offset));
        put(&mut h, 112, &f32b(self.scl_slope));
        put(&mut h, 116, &f32b(self.scl_inter));
        h[123] = self.xyzt_units;
        put(&mut h, 252, &i16b(self.qform_code));
        put(&mut h, 254, &i16b(self.sform_code));
        for (n, q) in self.quatern.iter().enumerate() {
            put(&mut h, 256 + 4 * n, &f32b(*q));
        }
        for (r, row) in self.srow.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                put(&mut h, 280 + 16 * r + 4 * c, &f32b(*v));
            }
        }
        put(&mut h, 344, &self.magic);
        h
    }

    /// The whole file, uncompressed.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = self.header_bytes();
        out.extend_from_slice(&[0, 0, 0, 0]);
        let offset = if self.vox_offset.is_finite() && self.vox_offset > 352.0 {
            self.vox_offset as usize
        } else {
            352
        };
        out.resize(offset.max(out.len()), 0);
        out.extend_from_slice(&self.data);
        out
    }

    /// Write to `path`, gzip-compressed when the name ends in `.gz`.
    pub fn write(&self, path: &Path) {
        let bytes = self.bytes();
        write_maybe_gz(path, &bytes);
    }
}

/// Write `bytes` to `path`, gzip-compressed when the name ends in `.gz`.
pub fn write_maybe_gz(path: &Path, bytes: &[u8]) {
    if path.to_string_lossy().ends_with(".gz") {
        std::fs::write(path, gzip(bytes)).unwrap();
    } else {
        std::fs::write(path, bytes).unwrap();
    }
}

/// Gzip-compress bytes.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}
