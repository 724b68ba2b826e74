//! Reading and writing data elements: typed reads that treat a missing or
//! malformed value as absent, and the writers' shorthands (an element, a
//! sequence, a one-element item, decimal strings).

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_object::InMemDicomObject;

/// A text value, trimmed of padding; `None` when absent or empty.
pub fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let e = obj.get(tag)?;
    let s = e.to_str().ok()?;
    let s = s.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    (!s.is_empty()).then(|| s.to_string())
}

/// Every number of a (multi-valued) numeric or decimal-string element.
pub fn floats(obj: &InMemDicomObject, tag: Tag) -> Option<Vec<f64>> {
    obj.get(tag)?.to_multi_float64().ok().filter(|v| !v.is_empty())
}

pub fn int(obj: &InMemDicomObject, tag: Tag) -> Option<i64> {
    obj.get(tag)?.to_int::<i64>().ok()
}

/// The first item of a sequence.
pub fn first_item(obj: &InMemDicomObject, tag: Tag) -> Option<&InMemDicomObject> {
    obj.get(tag)?.items()?.first()
}

pub fn put(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: impl Into<PrimitiveValue>) {
    obj.put(DataElement::new(tag, vr, value.into()));
}

pub fn sequence(tag: Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
}

/// A sequence of one item holding one element (the shape of most
/// functional groups: `PlanePositionSequence > ImagePositionPatient`).
pub fn wrapped(seq: Tag, tag: Tag, vr: VR, value: impl Into<PrimitiveValue>) -> DataElement<InMemDicomObject> {
    let mut item = InMemDicomObject::new_empty();
    put(&mut item, tag, vr, value);
    sequence(seq, vec![item])
}

/// A decimal string (at most 16 characters): six decimals, trailing zeros dropped.
pub fn ds(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// A multi-valued decimal string.
pub fn ds_multi(v: &[f64]) -> String {
    v.iter().map(|&x| ds(x)).collect::<Vec<_>>().join("\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings() {
        assert_eq!(ds(2.5), "2.5");
        assert_eq!(ds(-0.0000001), "0");
        assert_eq!(ds(-1024.0), "-1024");
        assert_eq!(ds_multi(&[1.0, 0.0, 0.333333333]), "1\\0\\0.333333");
    }
}
