//! Optional clean-up of a label map, per structure: keep the largest
//! connected component, fill enclosed holes.

use ndarray::Array3;

use crate::geometry::roi::connected_components;

/// Keep only the largest 6-connected component of every label.
pub fn largest_component(labels: &mut Array3<u16>) {
    let max = labels.iter().copied().max().unwrap_or(0);
    for c in 1..=max {
        let mask = labels.mapv(|v| v == c);
        let (comp, sizes) = connected_components(mask.view());
        if sizes.len() <= 2 {
            continue;
        }
        let best = (1..sizes.len()).max_by_key(|&l| sizes[l]).unwrap() as u32;
        for (l, &k) in labels.iter_mut().zip(comp.iter()) {
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
    let max = labels.iter().copied().max().unwrap_or(0);
    for c in 1..=max {
        let outside = labels.mapv(|v| v != c);
        let (comp, sizes) = connected_components(outside.view());
        let mut touches = vec![false; sizes.len()];
        for ((z, y, x), &k) in comp.indexed_iter() {
            if k > 0 && (z == 0 || y == 0 || x == 0 || z + 1 == nz || y + 1 == ny || x + 1 == nx) {
                touches[k as usize] = true;
            }
        }
        for (l, &k) in labels.iter_mut().zip(comp.iter()) {
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
}
