//! Splitting a kernel's output into z-slabs whose input and output byte
//! ranges each fit one storage binding. Tensors are channels-last, so a
//! range of z-planes is one contiguous byte range; each range is bound from
//! the largest offset at or below its start that the device's offset
//! alignment allows, and the shader subtracts the element index the
//! binding starts at.

/// A bound byte range of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Byte offset of the binding (a multiple of the alignment).
    pub offset: u64,
    pub size: u64,
    /// Element index (32-bit) of `offset`.
    pub base: u32,
}

/// The window covering bytes `[start, end)`.
pub fn window(start: u64, end: u64, align: u64) -> Window {
    let offset = start / align * align;
    Window {
        offset,
        size: end - offset,
        base: (offset / 4) as u32,
    }
}

/// A tensor's z-planes: how many and how many bytes each.
#[derive(Clone, Copy, Debug)]
pub struct Planes {
    pub depth: usize,
    pub bytes: u64,
}

impl Planes {
    fn window(&self, z0: usize, z1: usize, align: u64) -> Window {
        window(z0 as u64 * self.bytes, z1 as u64 * self.bytes, align)
    }
}

/// Output planes `[z0, z1)` of one dispatch and the windows it binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slab {
    pub z0: usize,
    pub z1: usize,
    pub input: Window,
    pub output: Window,
}

/// Cover the output's planes with as few slabs as fit: `needs(z0, z1)` is
/// the input planes output planes `[z0, z1)` read; `limit` the largest
/// binding in bytes, `align` the binding offset alignment.
pub fn slabs(
    input: Planes,
    output: Planes,
    needs: impl Fn(usize, usize) -> (usize, usize),
    limit: u64,
    align: u64,
) -> Result<Vec<Slab>, String> {
    let slab = |z0: usize, z1: usize| {
        let (i0, i1) = needs(z0, z1);
        Slab {
            z0,
            z1,
            input: input.window(i0, i1.min(input.depth), align),
            output: output.window(z0, z1, align),
        }
    };
    let fits = |s: &Slab| s.input.size <= limit && s.output.size <= limit;
    let mut out = Vec::new();
    let mut z0 = 0;
    while z0 < output.depth {
        let mut best = slab(z0, z0 + 1);
        if !fits(&best) {
            return Err(format!(
                "one output z-plane needs bindings of {} and {} bytes, more than the {limit}-byte storage binding limit",
                best.input.size, best.output.size
            ));
        }
        // Grow by doubling, then settle the last step by bisection.
        let mut step = 1;
        while best.z1 < output.depth {
            let next = slab(z0, (best.z1 + step).min(output.depth));
            if fits(&next) {
                best = next;
                step *= 2;
            } else if step > 1 {
                step /= 2;
            } else {
                break;
            }
        }
        z0 = best.z1;
        out.push(best);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_slab_when_everything_fits() {
        let p = Planes { depth: 10, bytes: 400 };
        let s = slabs(p, p, |a, b| (a, b), 1 << 20, 256).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(
            s[0].input,
            Window {
                offset: 0,
                size: 4000,
                base: 0
            }
        );
    }

    #[test]
    fn slabs_cover_the_output_within_the_limit() {
        // A 3x3x3 valid conv: output plane z reads input planes z..z+3.
        let input = Planes { depth: 40, bytes: 1000 };
        let output = Planes { depth: 38, bytes: 900 };
        let limit = 8192;
        let s = slabs(input, output, |a, b| (a, b + 2), limit, 256).unwrap();
        assert!(s.len() > 1);
        let mut z = 0;
        for sl in &s {
            assert_eq!(sl.z0, z);
            z = sl.z1;
            for w in [sl.input, sl.output] {
                assert!(w.size <= limit);
                assert_eq!(w.offset % 256, 0);
                assert_eq!(w.base as u64 * 4, w.offset);
            }
            // The window covers what the slab reads and writes.
            assert!(sl.input.offset <= sl.z0 as u64 * 1000);
            assert!(sl.input.offset + sl.input.size >= (sl.z1 as u64 + 2) * 1000);
            assert!(sl.output.offset + sl.output.size == sl.z1 as u64 * 900);
        }
        assert_eq!(z, 38);
        // Slabs are as large as fit: a slab one plane larger would not.
        let first = s[0];
        let bigger = window(0, (first.z1 as u64 + 3) * 1000, 256);
        assert!(bigger.size > limit);
    }

    #[test]
    fn a_plane_too_large_is_an_error() {
        let p = Planes {
            depth: 4,
            bytes: 10_000,
        };
        let e = slabs(p, p, |a, b| (a, b), 8192, 256).unwrap_err();
        assert!(e.contains("binding limit"), "{e}");
    }
}
