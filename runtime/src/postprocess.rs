//! Optional clean-up of a label map, per structure: keep the largest
//! connected component, fill enclosed holes.
//!
//! Each structure is worked on inside its own bounding box (grown by one
//! voxel to fill holes), not over the whole volume: the result is the same,
//! and on a scan-resolution map where most structures are small, many times
//! faster.

use ndarray::Array3;

use crate::geometry::roi::connected_components;
use crate::geometry::BoundingBox;

/// The bounding box of every label `1..=max` present in `labels`, indexed by
/// label (`None` where absent).
fn label_boxes(labels: &Array3<u16>) -> Vec<Option<BoundingBox>> {
    let max = labels.iter().copied().max().unwrap_or(0) as usize;
    let mut boxes: Vec<Option<BoundingBox>> = vec![None; max + 1];
    for ((z, y, x), &l) in labels.indexed_iter() {
        if l != 0 {
            boxes[l as usize]
                .get_or_insert(BoundingBox::at([z, y, x]))
                .include([z, y, x]);
        }
    }
    boxes
}

/// Keep only the largest 6-connected component of every label.
pub fn largest_component(labels: &mut Array3<u16>) {
    for (c, b) in label_boxes(labels).iter().enumerate() {
        let Some(b) = b else { continue };
        let c = c as u16;
        // Every voxel of `c` lies in its box, so its components do too.
        let mut view = b.slice_mut(labels);
        let mask = view.mapv(|v| v == c);
        let (comp, sizes) = connected_components(mask.view());
        if sizes.len() <= 2 {
            continue;
        }
        let best = (1..sizes.len()).max_by_key(|&l| sizes[l]).unwrap() as u32;
        for (l, &k) in view.iter_mut().zip(comp.iter()) {
            if *l == c && k != best {
                *l = 0;
            }
        }
    }
}

/// Fill holes: background regions enclosed by one label (not touching the
/// volume border) take that label.
pub fn fill_holes(labels: &mut Array3<u16>) {
    let (nz, ny, nx) = labels.dim();
    for (c, b) in label_boxes(labels).iter().enumerate() {
        let Some(b) = b else { continue };
        let c = c as u16;
        // Every voxel outside the label's box reaches the volume border
        // without entering the box, so no hole lies outside it; grown by one
        // voxel, the box's faces are either outside the label (reaching the
        // border) or the border itself: a region not touching them is a hole.
        let g = b.grown([1, 1, 1], [nz, ny, nx]);
        let [gz, gy, gx] = g.shape();
        let mut view = g.slice_mut(labels);
        let outside = view.mapv(|v| v != c);
        let (comp, sizes) = connected_components(outside.view());
        let mut touches = vec![false; sizes.len()];
        for ((z, y, x), &k) in comp.indexed_iter() {
            if k > 0 && (z == 0 || y == 0 || x == 0 || z + 1 == gz || y + 1 == gy || x + 1 == gx) {
                touches[k as usize] = true;
            }
        }
        for (l, &k) in view.iter_mut().zip(comp.iter()) {
            // Only background holes are filled; other structures stay.
            if k > 0 && !touches[k as usize] && *l == 0 {
                *l = c;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::s;

    #[test]
    fn keeps_the_largest_piece() {
        let mut a = Array3::<u16>::zeros((10, 10, 10));
        a.slice_mut(s![1..5, 1..5, 1..5]).fill(2);
        a.slice_mut(s![7..9, 7..9, 7..9]).fill(2);
        a.slice_mut(s![7..9, 1..3, 1..3]).fill(1);
        largest_component(&mut a);
        assert_eq!(a.iter().filter(|&&v| v == 2).count(), 64);
        assert_eq!(a.iter().filter(|&&v| v == 1).count(), 8);
    }

    #[test]
    fn fills_enclosed_holes_only() {
        let mut a = Array3::<u16>::zeros((9, 9, 9));
        a.slice_mut(s![1..8, 1..8, 1..8]).fill(3);
        a[[4, 4, 4]] = 0; // enclosed hole
        a[[4, 4, 5]] = 5; // another structure inside stays
        a.slice_mut(s![0..2, 0..2, 0..2]).fill(0); // open to the border
        fill_holes(&mut a);
        assert_eq!(a[[4, 4, 4]], 3);
        assert_eq!(a[[4, 4, 5]], 5);
        assert_eq!(a[[1, 1, 1]], 0);
    }

    /// The definitions over the whole volume, one label at a time.
    fn largest_component_whole(labels: &mut Array3<u16>) {
        let max = labels.iter().copied().max().unwrap_or(0);
        for c in 1..=max {
            let (comp, sizes) = connected_components(labels.mapv(|v| v == c).view());
            if let Some(best) = (1..sizes.len()).max_by_key(|&l| sizes[l]) {
                for (l, &k) in labels.iter_mut().zip(comp.iter()) {
                    if *l == c && k != best as u32 {
                        *l = 0;
                    }
                }
            }
        }
    }

    fn fill_holes_whole(labels: &mut Array3<u16>) {
        let (nz, ny, nx) = labels.dim();
        let max = labels.iter().copied().max().unwrap_or(0);
        for c in 1..=max {
            let (comp, sizes) = connected_components(labels.mapv(|v| v != c).view());
            let mut touches = vec![false; sizes.len()];
            for ((z, y, x), &k) in comp.indexed_iter() {
                if z == 0 || y == 0 || x == 0 || z + 1 == nz || y + 1 == ny || x + 1 == nx {
                    touches[k as usize] = true;
                }
            }
            for (l, &k) in labels.iter_mut().zip(comp.iter()) {
                if k > 0 && !touches[k as usize] && *l == 0 {
                    *l = c;
                }
            }
        }
    }

    #[test]
    fn boxes_give_what_the_whole_volume_gives() {
        // Shells with holes, scattered pieces and speckle of 4 labels, some
        // touching the border.
        let mut state = 12345u64;
        let mut rand = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize
        };
        for _ in 0..6 {
            let mut a = Array3::<u16>::zeros((14, 17, 19));
            for _ in 0..6 {
                let c = (rand() % 4 + 1) as u16;
                let o = [rand() % 12, rand() % 15, rand() % 17];
                let e = [0, 1, 2].map(|d| (o[d] + 3 + rand() % 6).min([14, 17, 19][d]));
                let mut shell = a.slice_mut(s![o[0]..e[0], o[1]..e[1], o[2]..e[2]]);
                shell.fill(c);
                if e.iter().zip(o.iter()).all(|(e, o)| e - o >= 3) {
                    shell.slice_mut(s![1..-1, 1..-1, 1..-1]).fill(0);
                }
            }
            for _ in 0..60 {
                a[[rand() % 14, rand() % 17, rand() % 19]] = (rand() % 5) as u16;
            }
            let (mut x, mut y) = (a.clone(), a.clone());
            largest_component(&mut x);
            largest_component_whole(&mut y);
            assert_eq!(x, y, "largest component");
            assert!(x != a, "some piece was removed");
            let (mut x, mut y) = (a.clone(), a.clone());
            fill_holes(&mut x);
            fill_holes_whole(&mut y);
            assert_eq!(x, y, "fill holes");
            assert!(x != a, "some hole was filled");
        }
    }
}
