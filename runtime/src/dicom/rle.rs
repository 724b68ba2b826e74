//! An RLE Lossless frame checked before the codec decodes it. The frame is
//! one fragment: a 64-byte header (the number of segments, then each
//! segment's offset) and the segments, each one byte plane of the image
//! compressed with PackBits. dicom-pixeldata's decoder trusts the header
//! and the segments' decoded lengths (it indexes past them, a panic), so
//! both are checked here first and a corrupt frame is refused with what is
//! wrong.

/// Checks `fragment`, the frame's bytes, for an image of `pixels` pixels
/// with `segments` byte planes (bytes per sample × samples per pixel).
pub fn check_frame(fragment: &[u8], segments: usize, pixels: usize) -> Result<(), String> {
    let word = |i: usize| -> Option<usize> {
        let b: [u8; 4] = fragment.get(4 * i..4 * i + 4)?.try_into().ok()?;
        Some(u32::from_le_bytes(b) as usize)
    };
    let declared =
        word(0).ok_or_else(|| format!("the RLE frame holds {} bytes, too few for its header", fragment.len()))?;
    if declared > 15 {
        return Err(format!("the RLE header declares {declared} segments (at most 15)"));
    }
    if fragment.len() < 64 {
        return Err(format!(
            "the RLE frame holds {} bytes, less than its 64-byte header",
            fragment.len()
        ));
    }
    if declared < segments {
        return Err(format!(
            "the RLE header declares {declared} segments, the image needs {segments}"
        ));
    }
    for s in 0..segments {
        let start = word(1 + s).expect("the 64-byte header holds 15 offsets");
        let end = if s + 1 < declared {
            word(2 + s).expect("the 64-byte header holds 15 offsets")
        } else {
            fragment.len()
        };
        if start < 64 || start > end || end > fragment.len() {
            return Err(format!(
                "RLE segment {} spans bytes {start}..{end} of a {}-byte frame",
                s + 1,
                fragment.len()
            ));
        }
        let decoded = packbits_length(&fragment[start..end]);
        if decoded < pixels {
            return Err(format!(
                "RLE segment {} decodes to {decoded} bytes, the image has {pixels} pixels",
                s + 1
            ));
        }
    }
    Ok(())
}

/// The number of bytes PackBits `data` decodes to (a header byte `h`:
/// 0..=127 copies the next `h + 1` bytes, -127..=-1 repeats the next byte
/// `1 - h` times, -128 does nothing; a run cut short by the end counts what
/// is there).
fn packbits_length(data: &[u8]) -> usize {
    let (mut at, mut out) = (0, 0);
    while at < data.len() {
        let h = data[at] as i8;
        at += 1;
        if h >= 0 {
            let n = (h as usize + 1).min(data.len() - at);
            out += n;
            at += n;
        } else if h != -128 {
            if at < data.len() {
                out += (1 - h as isize) as usize;
            }
            at += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(offsets: &[u32], body: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 64];
        f[..4].copy_from_slice(&(offsets.len() as u32).to_le_bytes());
        for (i, o) in offsets.iter().enumerate() {
            f[4 + 4 * i..8 + 4 * i].copy_from_slice(&o.to_le_bytes());
        }
        f.extend_from_slice(body);
        f
    }

    #[test]
    fn packbits_lengths_count_literals_and_runs() {
        assert_eq!(packbits_length(&[2, 1, 2, 3]), 3);
        assert_eq!(packbits_length(&[(-3i8) as u8, 7]), 4);
        assert_eq!(packbits_length(&[0x80, 0, 9]), 1);
        // A literal cut short by the end of the segment.
        assert_eq!(packbits_length(&[5, 1, 2]), 2);
        // A run without its byte decodes to nothing.
        assert_eq!(packbits_length(&[(-3i8) as u8]), 0);
    }

    #[test]
    fn a_whole_frame_passes() {
        // Two segments (16-bit samples) of 4 pixels each.
        let f = frame(&[64, 66], &[(-3i8) as u8, 0, 3, 1, 2, 3, 4]);
        assert_eq!(check_frame(&f, 2, 4), Ok(()));
    }

    #[test]
    fn short_headers_and_bad_offsets_are_refused() {
        assert!(check_frame(&[1, 0], 1, 4)
            .unwrap_err()
            .contains("too few for its header"));
        let mut f = frame(&[64], &[3, 1, 2, 3, 4]);
        f[..4].copy_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
        assert!(check_frame(&f, 1, 4).unwrap_err().contains("4294967295 segments"));
        assert!(check_frame(&f[..40], 1, 4).is_err());
        let f = frame(&[64], &[3, 1, 2, 3, 4]);
        assert!(check_frame(&f, 2, 4).unwrap_err().contains("needs 2"));
        let f = frame(&[64, 1000], &[3, 1, 2, 3, 4]);
        assert!(check_frame(&f, 2, 4).unwrap_err().contains("spans bytes 64..1000"));
        let f = frame(&[10], &[3, 1, 2, 3, 4]);
        assert!(check_frame(&f, 1, 4).unwrap_err().contains("spans bytes 10.."));
    }

    #[test]
    fn a_segment_that_decodes_short_is_refused() {
        let f = frame(&[64], &[1, 1, 2]);
        assert_eq!(
            check_frame(&f, 1, 4).unwrap_err(),
            "RLE segment 1 decodes to 2 bytes, the image has 4 pixels"
        );
    }
}
