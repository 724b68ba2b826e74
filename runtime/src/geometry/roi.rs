//! Cropping to the body: threshold, keep the largest 6-connected component,
//! take its bounding box with a margin; and the inverse (pad back).

use ndarray::{s, Array3, ArrayView3, ArrayViewMut3};

/// A box in array coordinates: `start` inclusive, `end` exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoundingBox {
    pub start: [usize; 3],
    pub end: [usize; 3],
}

impl BoundingBox {
    /// The one-voxel box at `p`.
    pub fn at(p: [usize; 3]) -> BoundingBox {
        BoundingBox {
            start: p,
            end: p.map(|v| v + 1),
        }
    }

    /// Grow the box to hold voxel `p`.
    pub fn include(&mut self, p: [usize; 3]) {
        for d in 0..3 {
            self.start[d] = self.start[d].min(p[d]);
            self.end[d] = self.end[d].max(p[d] + 1);
        }
    }

    pub fn full(shape: [usize; 3]) -> BoundingBox {
        BoundingBox {
            start: [0; 3],
            end: shape,
        }
    }

    pub fn shape(&self) -> [usize; 3] {
        [0, 1, 2].map(|d| self.end[d] - self.start[d])
    }

    pub fn voxels(&self) -> usize {
        self.shape().iter().product()
    }

    /// Grow by `margin` voxels per side, within `shape`.
    pub fn grown(&self, margin: [usize; 3], shape: [usize; 3]) -> BoundingBox {
        BoundingBox {
            start: [0, 1, 2].map(|d| self.start[d].saturating_sub(margin[d])),
            end: [0, 1, 2].map(|d| (self.end[d] + margin[d]).min(shape[d])),
        }
    }

    /// The part of `a` inside the box.
    pub fn crop<T: Clone>(&self, a: ArrayView3<T>) -> Array3<T> {
        a.slice(s![
            self.start[0]..self.end[0],
            self.start[1]..self.end[1],
            self.start[2]..self.end[2]
        ])
        .to_owned()
    }

    /// The part of `a` inside the box, to change in place.
    pub fn slice_mut<'a, T>(&self, a: &'a mut Array3<T>) -> ArrayViewMut3<'a, T> {
        a.slice_mut(s![
            self.start[0]..self.end[0],
            self.start[1]..self.end[1],
            self.start[2]..self.end[2]
        ])
    }

    /// Place `inner` (the box's content) into an array of `shape` filled
    /// with `fill`: the inverse of [`BoundingBox::crop`].
    pub fn uncrop<T: Clone>(&self, inner: ArrayView3<T>, shape: [usize; 3], fill: T) -> Array3<T> {
        let mut out = Array3::from_elem(shape, fill);
        self.slice_mut(&mut out).assign(&inner);
        out
    }
}

/// The bounding box of the largest 6-connected component of voxels above
/// `threshold`, or `None` when no voxel is above it.
pub fn largest_component_box(data: ArrayView3<f32>, threshold: f32) -> Option<BoundingBox> {
    let mask = data.mapv(|v| v > threshold);
    let (labels, sizes) = connected_components(mask.view());
    let best = (1..sizes.len()).max_by_key(|&l| sizes[l])?;
    let mut found: Option<BoundingBox> = None;
    for ((z, y, x), &l) in labels.indexed_iter() {
        if l as usize == best {
            found.get_or_insert(BoundingBox::at([z, y, x])).include([z, y, x]);
        }
    }
    found
}

/// 6-connected components of a mask: a label per voxel (0 = outside) and the
/// size of each label (`sizes[0]` unused).
pub fn connected_components(mask: ArrayView3<bool>) -> (Array3<u32>, Vec<usize>) {
    let (nz, ny, nx) = mask.dim();
    let mut labels = Array3::<u32>::zeros((nz, ny, nx));
    let mut sizes = vec![0usize];
    let mut stack = Vec::new();
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                if !mask[[z, y, x]] || labels[[z, y, x]] != 0 {
                    continue;
                }
                let label = sizes.len() as u32;
                let mut size = 0;
                labels[[z, y, x]] = label;
                stack.push((z, y, x));
                while let Some((cz, cy, cx)) = stack.pop() {
                    size += 1;
                    let mut visit = |p: (usize, usize, usize)| {
                        if mask[[p.0, p.1, p.2]] && labels[[p.0, p.1, p.2]] == 0 {
                            labels[[p.0, p.1, p.2]] = label;
                            stack.push(p);
                        }
                    };
                    if cz > 0 {
                        visit((cz - 1, cy, cx));
                    }
                    if cz + 1 < nz {
                        visit((cz + 1, cy, cx));
                    }
                    if cy > 0 {
                        visit((cz, cy - 1, cx));
                    }
                    if cy + 1 < ny {
                        visit((cz, cy + 1, cx));
                    }
                    if cx > 0 {
                        visit((cz, cy, cx - 1));
                    }
                    if cx + 1 < nx {
                        visit((cz, cy, cx + 1));
                    }
                }
                sizes.push(size);
            }
        }
    }
    (labels, sizes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_largest_blob_and_uncrops_exactly() {
        let mut a = Array3::<f32>::from_elem((20, 20, 20), -1000.0);
        a.slice_mut(s![2..15, 3..12, 4..18]).fill(40.0); // body
        a.slice_mut(s![17..19, 17..19, 17..19]).fill(40.0); // small table part
        let b = largest_component_box(a.view(), -500.0).unwrap();
        assert_eq!(
            b,
            BoundingBox {
                start: [2, 3, 4],
                end: [15, 12, 18]
            }
        );
        let g = b.grown([3, 3, 3], [20, 20, 20]);
        assert_eq!(g.start, [0, 0, 1]);
        assert_eq!(g.end, [18, 15, 20]);
        let c = g.crop(a.view());
        assert_eq!(c.shape(), &g.shape());
        let back = g.uncrop(c.view(), [20, 20, 20], -1000.0);
        let inside_equal = back
            .indexed_iter()
            .filter(|((z, y, x), _)| *z < 18 && *y < 15 && *x >= 1)
            .all(|(i, v)| *v == a[i]);
        assert!(inside_equal);
    }

    #[test]
    fn empty_mask_has_no_box() {
        let a = Array3::<f32>::zeros((4, 4, 4));
        assert_eq!(largest_component_box(a.view(), 1.0), None);
    }

    #[test]
    fn components_are_six_connected() {
        let mut m = Array3::from_elem((3, 3, 3), false);
        m[[0, 0, 0]] = true;
        m[[1, 1, 1]] = true; // diagonal neighbour: separate
        m[[1, 1, 2]] = true;
        let (_, sizes) = connected_components(m.view());
        assert_eq!(sizes[1..], [1, 2]);
    }
}
