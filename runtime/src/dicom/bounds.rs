//! A cheap walk over a DICOM file's elements before it is parsed: every
//! declared value length must fit in the bytes that remain. The parser
//! allocates a value's declared length before reading it, so a corrupt
//! length (up to 4 GiB) in a file of a few bytes would otherwise cost that
//! much memory before failing.
//!
//! The walk descends into sequences and items (explicit VR says which
//! elements are sequences; for implicit VR the standard dictionary does) and
//! skips the fragments of encapsulated pixel data. It stops (accepting the
//! rest) where it cannot follow the encoding: a deflated data set, or an
//! undefined-length UN element; it leaves every other malformation to the
//! parser, which reports it.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

const UNDEFINED: u32 = 0xFFFF_FFFF;

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    big_endian: bool,
}

impl Cursor<'_> {
    fn u16(&mut self) -> Option<u16> {
        let b: [u8; 2] = self.bytes.get(self.pos..self.pos + 2)?.try_into().ok()?;
        self.pos += 2;
        Some(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn u32(&mut self) -> Option<u32> {
        let b: [u8; 4] = self.bytes.get(self.pos..self.pos + 4)?.try_into().ok()?;
        self.pos += 4;
        Some(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn vr(&mut self) -> Option<[u8; 2]> {
        let b: [u8; 2] = self.bytes.get(self.pos..self.pos + 2)?.try_into().ok()?;
        self.pos += 2;
        Some(b)
    }

    /// An explicit VR and its length (2 bytes, or 2 reserved and 4).
    fn explicit_vr_and_length(&mut self) -> Option<([u8; 2], u32)> {
        let vr = self.vr()?;
        let len = if long_length(vr) {
            self.pos += 2;
            self.u32()?
        } else {
            u32::from(self.u16()?)
        };
        Some((vr, len))
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }
}

/// Whether an explicit VR has a 4-byte length: every VR but those with a
/// 2-byte one, unknown codes included (the parser reads those as UN).
fn long_length(vr: [u8; 2]) -> bool {
    !matches!(
        &vr,
        b"AE"
            | b"AS"
            | b"AT"
            | b"CS"
            | b"DA"
            | b"DS"
            | b"DT"
            | b"FL"
            | b"FD"
            | b"IS"
            | b"LO"
            | b"LT"
            | b"PN"
            | b"SH"
            | b"SL"
            | b"SS"
            | b"ST"
            | b"TM"
            | b"UI"
            | b"UL"
            | b"US"
    )
}

/// Check the declared lengths of a whole Part 10 file (preamble included).
pub fn check_lengths(file: &[u8]) -> Result<(), String> {
    if file.len() < 132 || &file[128..132] != b"DICM" {
        return Ok(()); // not ours to judge: the reader says what it is not
    }
    // The file meta group: explicit VR little endian, group 0002.
    let mut c = Cursor {
        bytes: file,
        pos: 132,
        big_endian: false,
    };
    let mut transfer_syntax = String::new();
    // As the parser does: after the group length (0002,0000), elements are
    // read whole until that many bytes are consumed, whatever their group.
    let mut group_end: Option<usize> = None;
    loop {
        let start = c.pos;
        if group_end.is_some_and(|end| start >= end) {
            break;
        }
        let Some(group) = c.u16() else { return Ok(()) };
        if group != 0x0002 && group_end.is_none() {
            c.pos = start;
            break;
        }
        let Some(element) = c.u16() else { return Ok(()) };
        let Some((_, len)) = c.explicit_vr_and_length() else {
            return Ok(());
        };
        if len == UNDEFINED {
            return Ok(()); // not valid in the meta group: the parser refuses it
        }
        check(len, &c, Tag(group, element))?;
        if (group, element) == (0x0002, 0x0000) && len == 4 && group_end.is_none() {
            let value = u32::from_le_bytes(file[c.pos..c.pos + 4].try_into().expect("4 bytes checked"));
            group_end = Some(c.pos + 4 + value as usize);
        }
        if (group, element) == (0x0002, 0x0010) {
            transfer_syntax = String::from_utf8_lossy(&file[c.pos..c.pos + len as usize])
                .trim_end_matches(['\0', ' '])
                .to_string();
        }
        c.pos += len as usize;
    }
    let (explicit, big_endian) = match transfer_syntax.as_str() {
        "1.2.840.10008.1.2" => (false, false),
        "1.2.840.10008.1.2.2" => (true, true),
        // Deflated: the data set is compressed; the parser inflates it.
        "1.2.840.10008.1.2.1.99" => return Ok(()),
        _ => (true, false),
    };
    c.big_endian = big_endian;
    walk(&mut c, explicit)
}

fn check(len: u32, c: &Cursor, tag: Tag) -> Result<(), String> {
    if len != UNDEFINED && len as usize > c.remaining() {
        return Err(format!(
            "element ({:04X},{:04X}) declares {len} bytes, but only {} remain in the file (corrupt or truncated)",
            tag.0,
            tag.1,
            c.remaining()
        ));
    }
    Ok(())
}

fn walk(c: &mut Cursor, explicit: bool) -> Result<(), String> {
    let dictionary = StandardDataDictionary;
    // Inside encapsulated pixel data, items are fragments to skip.
    let mut fragments = false;
    // Ends of the defined-length sequences and items entered: as the parser
    // does, reading resumes at such an end whatever the content said.
    let mut ends: Vec<usize> = Vec::new();
    loop {
        while let Some(&end) = ends.last() {
            if c.pos < end {
                break;
            }
            c.pos = end;
            ends.pop();
        }
        if c.remaining() == 0 {
            return Ok(());
        }
        let (Some(group), Some(element)) = (c.u16(), c.u16()) else {
            return Ok(());
        };
        let tag = Tag(group, element);
        if group == 0xFFFE {
            // Items and delimiters: always a 4-byte length, no VR.
            let Some(len) = c.u32() else { return Ok(()) };
            check(len, c, tag)?;
            match element {
                0xE000 if fragments && len != UNDEFINED => c.pos += len as usize,
                0xE000 if len != UNDEFINED => ends.push(c.pos + len as usize),
                0xE0DD => fragments = false,
                _ => {} // an item's content is elements: read on
            }
            continue;
        }
        let (is_sequence, len) = if explicit {
            let Some((vr, len)) = c.explicit_vr_and_length() else {
                return Ok(());
            };
            if &vr == b"UN" && len == UNDEFINED {
                return Ok(()); // implicit VR inside: not followed
            }
            (&vr == b"SQ", len)
        } else {
            let Some(len) = c.u32() else { return Ok(()) };
            let vr = dictionary.by_tag(tag).map(|e| e.vr().relaxed());
            (
                vr == Some(VR::SQ) || (len == UNDEFINED && tag != dicom_dictionary_std::tags::PIXEL_DATA),
                len,
            )
        };
        check(len, c, tag)?;
        if is_sequence {
            if len != UNDEFINED {
                ends.push(c.pos + len as usize);
            }
            continue; // its items follow
        }
        if len == UNDEFINED {
            // Only encapsulated pixel data has an undefined length outside sequences.
            fragments = true;
            continue;
        }
        c.pos += len as usize;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file: preamble, meta group with a transfer syntax, then `body`.
    fn file(ts: &str, body: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 128];
        f.extend_from_slice(b"DICM");
        let mut ts = ts.as_bytes().to_vec();
        if ts.len() % 2 == 1 {
            ts.push(0);
        }
        f.extend_from_slice(&[0x02, 0x00, 0x10, 0x00, b'U', b'I']);
        f.extend_from_slice(&(ts.len() as u16).to_le_bytes());
        f.extend_from_slice(&ts);
        f.extend_from_slice(body);
        f
    }

    #[test]
    fn lengths_beyond_the_file_are_refused_at_any_depth() {
        let explicit = "1.2.840.10008.1.2.1";
        // (0010,0010) PN of 4 bytes: fine.
        let ok = [0x10, 0x00, 0x10, 0x00, b'P', b'N', 4, 0, b'A', b'^', b'B', b' '];
        assert!(check_lengths(&file(explicit, &ok)).is_ok());
        // An OB element declaring 600 MB.
        let big = [0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 0x00, 0x00, 0xC0, 0x23];
        let e = check_lengths(&file(explicit, &big)).unwrap_err();
        assert!(e.contains("(7FE0,0010)"), "{e}");
        // The same inside an item of an undefined-length sequence.
        let mut nested = vec![0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF];
        nested.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        nested.extend_from_slice(&[0x08, 0x00, 0x55, 0x11, b'U', b'T', 0, 0, 0, 0, 0, 0x40]);
        let e = check_lengths(&file(explicit, &nested)).unwrap_err();
        assert!(e.contains("(0008,1155)"), "{e}");
        // Implicit VR: a sequence known from the dictionary is entered.
        let mut implicit = vec![0x08, 0x00, 0x15, 0x11, 0xFF, 0xFF, 0xFF, 0xFF];
        implicit.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        implicit.extend_from_slice(&[0x08, 0x00, 0x50, 0x11, 0, 0, 0, 0x10]);
        let e = check_lengths(&file("1.2.840.10008.1.2", &implicit)).unwrap_err();
        assert!(e.contains("(0008,1150)"), "{e}");
    }
}
