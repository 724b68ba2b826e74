//! Constants of a graph on the host: weights, biases, scales and crop
//! bounds, decoded from ONNX initializers (f32, f16, f64, int64, int32).

use tract_onnx::pb::tensor_proto::{DataLocation, DataType};
use tract_onnx::pb::TensorProto;

/// The values of a constant.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    F32(Vec<f32>),
    /// Half-precision values, already widened to f32 (a Cast to float
    /// turns them into [`Values::F32`]).
    F16(Vec<f32>),
    I64(Vec<i64>),
}

/// A constant tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Constant {
    pub dims: Vec<usize>,
    pub values: Values,
}

/// A float tensor on the host, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub dims: Vec<usize>,
    pub data: Vec<f32>,
}

impl Constant {
    /// Decode an initializer (or a `Constant` node's value).
    pub fn from_proto(t: &TensorProto) -> Result<Constant, String> {
        if t.data_location == Some(DataLocation::External as i32) {
            return Err(format!(
                "initializer {:?} uses external data, which is not supported",
                t.name
            ));
        }
        let dims = t
            .dims
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| format!("initializer {:?} has a negative dimension", t.name)))
            .collect::<Result<Vec<usize>, String>>()?;
        let count: usize = dims.iter().product();
        let raw = &t.raw_data;
        let values = match DataType::try_from(t.data_type) {
            Ok(DataType::Float) if !raw.is_empty() => Values::F32(le_words::<4>(raw).map(f32::from_le_bytes).collect()),
            Ok(DataType::Float) => Values::F32(t.float_data.clone()),
            Ok(DataType::Double) if !raw.is_empty() => {
                Values::F32(le_words::<8>(raw).map(|b| f64::from_le_bytes(b) as f32).collect())
            }
            Ok(DataType::Double) => Values::F32(t.double_data.iter().map(|&v| v as f32).collect()),
            Ok(DataType::Float16) if !raw.is_empty() => {
                Values::F16(le_words::<2>(raw).map(|b| f16_to_f32(u16::from_le_bytes(b))).collect())
            }
            // int32_data holds one half-precision bit pattern per element.
            Ok(DataType::Float16) => Values::F16(t.int32_data.iter().map(|&v| f16_to_f32(v as u16)).collect()),
            Ok(DataType::Int64) if !raw.is_empty() => Values::I64(le_words::<8>(raw).map(i64::from_le_bytes).collect()),
            Ok(DataType::Int64) => Values::I64(t.int64_data.clone()),
            Ok(DataType::Int32) if !raw.is_empty() => {
                Values::I64(le_words::<4>(raw).map(|b| i32::from_le_bytes(b) as i64).collect())
            }
            Ok(DataType::Int32) => Values::I64(t.int32_data.iter().map(|&v| v as i64).collect()),
            Ok(other) => return Err(format!("initializer {:?} has unsupported type {other:?}", t.name)),
            Err(_) => return Err(format!("initializer {:?} has unknown type {}", t.name, t.data_type)),
        };
        let len = match &values {
            Values::F32(v) | Values::F16(v) => v.len(),
            Values::I64(v) => v.len(),
        };
        if len != count {
            return Err(format!(
                "initializer {:?} has {len} values but its shape {dims:?} needs {count}",
                t.name
            ));
        }
        Ok(Constant { dims, values })
    }

    /// The constant as f32, for a Cast to float.
    pub fn to_f32(&self) -> Constant {
        let values = match &self.values {
            Values::F32(v) | Values::F16(v) => Values::F32(v.clone()),
            Values::I64(v) => Values::F32(v.iter().map(|&x| x as f32).collect()),
        };
        Constant {
            dims: self.dims.clone(),
            values,
        }
    }

    /// The float tensor, if this constant holds f32 values.
    pub fn as_f32(&self) -> Option<HostTensor> {
        match &self.values {
            Values::F32(v) => Some(HostTensor {
                dims: self.dims.clone(),
                data: v.clone(),
            }),
            _ => None,
        }
    }

    /// The integer values, if this constant holds integers.
    pub fn as_i64(&self) -> Option<&[i64]> {
        match &self.values {
            Values::I64(v) => Some(v),
            _ => None,
        }
    }
}

/// Little-endian words of `N` bytes (a trailing partial word is dropped and
/// caught by the length check).
fn le_words<const N: usize>(raw: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
    raw.chunks_exact(N).map(|c| c.try_into().expect("chunk of N bytes"))
}

/// IEEE 754 half precision → single precision (exact).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0f32 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as u32;
    let mant = (h & 0x3ff) as u32;
    match exp {
        // Zero and subnormals: mant · 2^-24.
        0 => sign * mant as f32 * (1.0 / 16_777_216.0),
        31 => f32::from_bits(((h as u32 & 0x8000) << 16) | 0x7f80_0000 | (mant << 13)),
        _ => f32::from_bits(((h as u32 & 0x8000) << 16) | ((exp + 112) << 23) | (mant << 13)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_values() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert_eq!(f16_to_f32(0x8000), 0.0);
        assert!(f16_to_f32(0x8000).is_sign_negative());
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn decodes_raw_and_typed_fields() {
        let t = TensorProto {
            name: "w".into(),
            dims: vec![2],
            data_type: DataType::Float16 as i32,
            raw_data: vec![0x00, 0x3c, 0x00, 0xc0],
            ..Default::default()
        };
        let c = Constant::from_proto(&t).unwrap();
        assert_eq!(c.values, Values::F16(vec![1.0, -2.0]));
        assert_eq!(c.to_f32().as_f32().unwrap().data, vec![1.0, -2.0]);
        let t = TensorProto {
            name: "ends".into(),
            dims: vec![3],
            data_type: DataType::Int64 as i32,
            int64_data: vec![-4, -4, i64::MAX],
            ..Default::default()
        };
        assert_eq!(Constant::from_proto(&t).unwrap().as_i64().unwrap(), &[-4, -4, i64::MAX]);
        let bad = TensorProto {
            name: "short".into(),
            dims: vec![3],
            data_type: DataType::Float as i32,
            raw_data: vec![0; 8],
            ..Default::default()
        };
        assert!(Constant::from_proto(&bad).unwrap_err().contains("2 values"));
    }
}
