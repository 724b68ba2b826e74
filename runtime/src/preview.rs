//! The preview (`--preview PNG`): axial, coronal and sagittal slices
//! through the centre of the segmented structures, the scan in grey with
//! each structure's colour laid over it, and a legend of the structures
//! shown; one PNG, drawn here (no display, no Python).
//!
//! The slices are cut in the scan's nearest RAS+ orientation and drawn as a
//! radiologist reads them: the patient's right on the image's left (axial,
//! coronal), anterior on the left (sagittal), superior and anterior up,
//! with every panel scaled to square millimetres.

use std::path::Path;

use edge_seg_models::atomic::write_bytes;
use edge_seg_models::labels::label_colour;
use ndarray::{Array3, Axis};

use crate::geometry::orientation::Reorientation;
use crate::volume::{Problem, Volume, VolumeError};

/// Longest panel edge, pixels.
const PANEL_MAX: usize = 384;
/// Gap between panels and around the picture, pixels.
const GAP: usize = 8;
/// Weight of a structure's colour over the grey scan.
const OVERLAY: f32 = 0.45;
/// Pixels per font dot.
const DOT: usize = 2;

/// An RGB picture.
pub struct Picture {
    pub width: usize,
    pub height: usize,
    /// Row-major RGB.
    pub rgb: Vec<u8>,
}

impl Picture {
    fn new(width: usize, height: usize, fill: [u8; 3]) -> Picture {
        Picture {
            width,
            height,
            rgb: fill.iter().copied().cycle().take(width * height * 3).collect(),
        }
    }

    fn set(&mut self, x: usize, y: usize, c: [u8; 3]) {
        if x < self.width && y < self.height {
            let o = (y * self.width + x) * 3;
            self.rgb[o..o + 3].copy_from_slice(&c);
        }
    }

    /// The colour at `(x, y)`.
    pub fn get(&self, x: usize, y: usize) -> [u8; 3] {
        let o = (y * self.width + x) * 3;
        [self.rgb[o], self.rgb[o + 1], self.rgb[o + 2]]
    }

    /// PNG bytes.
    pub fn png(&self) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut e = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
            e.set_color(png::ColorType::Rgb);
            e.set_depth(png::BitDepth::Eight);
            let mut w = e.write_header().expect("PNG header into memory");
            w.write_image_data(&self.rgb).expect("PNG data into memory");
        }
        out
    }
}

/// Where a panel lies in the picture and which slice it shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    pub name: &'static str,
    /// Top-left corner in the picture, pixels.
    pub x0: usize,
    pub y0: usize,
    pub width: usize,
    pub height: usize,
    /// The RAS+ array index `[z, y, x]` the three slices cross at.
    pub centre: [usize; 3],
    /// Millimetres per pixel.
    pub mm_per_pixel: f64,
}

/// A rendered preview and where its panels are.
pub struct Preview {
    pub picture: Picture,
    pub panels: Vec<Panel>,
    /// RAS+ spacing `[z, y, x]`, mm.
    pub spacing: [f64; 3],
}

impl Preview {
    /// The RAS+ array index `[z, y, x]` a panel's pixel shows (the panel's
    /// fixed axis at its slice).
    pub fn voxel_at(&self, panel: &Panel, px: usize, py: usize, shape: [usize; 3]) -> [usize; 3] {
        voxel_at(panel, self.spacing, px, py, shape)
    }
}

/// [`Preview::voxel_at`], from the RAS+ `spacing` alone.
fn voxel_at(panel: &Panel, s: [f64; 3], px: usize, py: usize, shape: [usize; 3]) -> [usize; 3] {
    let at = |n: usize, mm: f64, count: usize| -> usize {
        let i = ((n as f64 + 0.5) * panel.mm_per_pixel / mm).floor() as usize;
        count - 1 - i.min(count - 1)
    };
    let [cz, cy, cx] = panel.centre;
    match panel.name {
        "axial" => [cz, at(py, s[1], shape[1]), at(px, s[2], shape[2])],
        "coronal" => [at(py, s[0], shape[0]), cy, at(px, s[2], shape[2])],
        _ => [at(py, s[0], shape[0]), at(px, s[1], shape[1]), cx],
    }
}

/// Render the preview of `labels` (`[k][j][i]`, on the scan's grid) over
/// `scan`, grey from `window.0` (black) to `window.1` (white).
pub fn render(scan: &Volume, labels: &Array3<u16>, names: &[String], window: (f32, f32)) -> Preview {
    let (nk, nj, ni) = scan.data.dim();
    let r = Reorientation::new(&scan.affine, [nk, nj, ni]);
    let data = r.apply(scan.data.view());
    let lab = r.apply(labels.view());
    let ca = r.canonical_affine(&scan.affine);
    let spacing = [2, 1, 0].map(|w| {
        let c = ca.column(w);
        (c[0] * c[0] + c[1] * c[1] + c[2] * c[2]).sqrt()
    });
    let shape = [data.len_of(Axis(0)), data.len_of(Axis(1)), data.len_of(Axis(2))];
    // The centre of the structures (of the volume when there are none).
    let (mut sum, mut n) = ([0f64; 3], 0u64);
    for ((z, y, x), &l) in lab.indexed_iter() {
        if l != 0 {
            sum[0] += z as f64;
            sum[1] += y as f64;
            sum[2] += x as f64;
            n += 1;
        }
    }
    let centre = if n == 0 {
        shape.map(|s| s / 2)
    } else {
        [0, 1, 2].map(|a| ((sum[a] / n as f64).round() as usize).min(shape[a] - 1))
    };
    let extent = [0, 1, 2].map(|a| shape[a] as f64 * spacing[a]);
    let finest = spacing.iter().copied().fold(f64::INFINITY, f64::min);
    let mm_per_pixel = finest.max(extent.iter().copied().fold(0.0, f64::max) / PANEL_MAX as f64);
    let px = |a: usize| ((extent[a] / mm_per_pixel).round() as usize).max(1);
    // (name, width axis, height axis)
    let layout = [("axial", 2, 1), ("coronal", 2, 0), ("sagittal", 1, 0)];
    let mut panels = Vec::new();
    let mut x0 = GAP;
    for (name, wa, ha) in layout {
        panels.push(Panel {
            name,
            x0,
            y0: GAP,
            width: px(wa),
            height: px(ha),
            centre,
            mm_per_pixel,
        });
        x0 += px(wa) + GAP;
    }
    let panels_height = panels.iter().map(|p| p.height).max().unwrap_or(1);
    let present: Vec<usize> = {
        let mut seen = vec![false; names.len().max(1)];
        for &l in lab.iter() {
            if (l as usize) < seen.len() {
                seen[l as usize] = true;
            }
        }
        (1..names.len()).filter(|&i| seen[i]).collect()
    };
    let line = 8 * DOT + 4;
    // Legend columns as wide as the longest name needs.
    let longest = present.iter().map(|&l| names[l].chars().count()).max().unwrap_or(0);
    let column = 8 * DOT + 4 + longest * 6 * DOT + 3 * GAP;
    let width = x0.max(column + 2 * GAP);
    let columns = ((width - 2 * GAP) / column).max(1);
    let legend_height = if present.is_empty() {
        0
    } else {
        present.len().div_ceil(columns) * line + GAP
    };
    let height = GAP + panels_height + GAP + legend_height;
    let mut pic = Picture::new(width, height, [0, 0, 0]);
    let grey = |v: f32| -> f32 {
        if !v.is_finite() {
            return 0.0;
        }
        ((v - window.0) / (window.1 - window.0)).clamp(0.0, 1.0) * 255.0
    };
    let colours: Vec<[u8; 3]> = names.iter().map(|n| label_colour(n)).collect();
    for p in &panels {
        for py in 0..p.height {
            for pxl in 0..p.width {
                let [z, y, x] = voxel_at(p, spacing, pxl, py, shape);
                let g = grey(data[[z, y, x]]);
                let l = lab[[z, y, x]] as usize;
                let c = if l != 0 && l < colours.len() {
                    colours[l].map(|c| (g * (1.0 - OVERLAY) + c as f32 * OVERLAY).round() as u8)
                } else {
                    [g.round() as u8; 3]
                };
                pic.set(p.x0 + pxl, p.y0 + py, c);
            }
        }
    }
    // Legend: a colour square and the name, `columns` to a row.
    let top = GAP + panels_height + GAP;
    for (n, &l) in present.iter().enumerate() {
        let (col, row) = (n % columns, n / columns);
        let (x, y) = (GAP + col * column, top + row * line);
        for dy in 0..7 * DOT {
            for dx in 0..7 * DOT {
                pic.set(x + dx, y + dy, colours[l]);
            }
        }
        draw_text(&mut pic, x + 8 * DOT + 4, y, &names[l], [230, 230, 230]);
    }
    Preview {
        picture: pic,
        panels,
        spacing,
    }
}

/// Write `preview`'s picture to `path` as PNG (atomically).
pub fn write_png(path: &Path, picture: &Picture) -> Result<(), VolumeError> {
    write_bytes(path, &picture.png()).map_err(|e| VolumeError::new(path, Problem::Write(e.to_string())))
}

/// Draw `text` (upper-cased) in the built-in 5x7 font.
fn draw_text(pic: &mut Picture, x: usize, y: usize, text: &str, colour: [u8; 3]) {
    for (n, ch) in text.chars().enumerate() {
        let rows = glyph(ch.to_ascii_uppercase());
        let gx = x + n * 6 * DOT;
        for (r, bits) in rows.iter().enumerate() {
            for c in 0..5 {
                if bits >> (4 - c) & 1 == 1 {
                    for dy in 0..DOT {
                        for dx in 0..DOT {
                            pic.set(gx + c * DOT + dx, y + r * DOT + dy, colour);
                        }
                    }
                }
            }
        }
    }
}

/// A 5x7 glyph: seven rows, the five low bits of each, leftmost first.
fn glyph(c: char) -> [u8; 7] {
    match c {
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        '_' | ' ' | '-' => {
            if c == '-' {
                [0, 0, 0, 0x1F, 0, 0, 0]
            } else {
                [0, 0, 0, 0, 0, 0, 0]
            }
        }
        '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
        _ => [0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Affine;

    #[test]
    fn overlay_colours_sit_where_the_labels_are() {
        // An LPS scan (flipped x and y) with anisotropic voxels, a block of
        // label 1 in one corner of the body and label 2 elsewhere.
        let (nk, nj, ni) = (20, 30, 40);
        let mut data = Array3::<f32>::from_elem((nk, nj, ni), 40.0);
        let mut labels = Array3::<u16>::zeros((nk, nj, ni));
        for ((k, j, i), l) in labels.indexed_iter_mut() {
            if (5..12).contains(&k) && (3..10).contains(&j) && (4..14).contains(&i) {
                *l = 1;
                data[[k, j, i]] = 100.0;
            }
            if (8..15).contains(&k) && (6..13).contains(&j) && (25..35).contains(&i) {
                *l = 2;
            }
        }
        let affine = Affine([
            [-1.5, 0.0, 0.0, 30.0],
            [0.0, -1.5, 0.0, 20.0],
            [0.0, 0.0, 4.0, -10.0],
            [0.0, 0.0, 0.0, 1.0],
        ]);
        let scan = Volume::from_array(data, affine);
        let names: Vec<String> = ["background", "liver", "spleen"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = render(&scan, &labels, &names, (-100.0, 200.0));
        // Through the PNG and back.
        let png = p.picture.png();
        let mut reader = png::Decoder::new(std::io::Cursor::new(png)).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(
            (info.width as usize, info.height as usize),
            (p.picture.width, p.picture.height)
        );
        let r = Reorientation::new(&scan.affine, [nk, nj, ni]);
        let lab = r.apply(labels.view());
        let shape = [lab.len_of(Axis(0)), lab.len_of(Axis(1)), lab.len_of(Axis(2))];
        let colour = |l: usize| label_colour(&names[l]);
        let (mut tinted, mut grey) = (0, 0);
        for panel in &p.panels {
            for py in 0..panel.height {
                for px in 0..panel.width {
                    let v = p.voxel_at(panel, px, py, shape);
                    let o = ((panel.y0 + py) * info.width as usize + panel.x0 + px) * 3;
                    let c = [buf[o], buf[o + 1], buf[o + 2]];
                    let l = lab[v] as usize;
                    if l == 0 {
                        assert!(
                            c[0] == c[1] && c[1] == c[2],
                            "{} {px},{py}: grey expected, {c:?}",
                            panel.name
                        );
                        grey += 1;
                    } else {
                        // Grey blended towards the label's colour: the channel
                        // order of the colour shows through.
                        let k = colour(l);
                        for ch in 0..3 {
                            for ch2 in 0..3 {
                                if k[ch] > k[ch2] + 20 {
                                    assert!(c[ch] > c[ch2], "{} {px},{py}: {c:?} not tinted by {k:?}", panel.name);
                                }
                            }
                        }
                        tinted += 1;
                    }
                }
            }
        }
        assert!(tinted > 100 && grey > 1000, "{tinted} tinted, {grey} grey");
        // Radiological view, judged by colour alone: label 1 lies on the
        // patient's right (x = 30 − 1.5 i > 0 for its i), label 2 on the
        // left, so in the axial and coronal panels liver-tinted pixels are in
        // the left half, spleen-tinted ones in the right half.
        let liver = colour(1);
        for panel in &p.panels[..2] {
            let (mut l1, mut l2) = (Vec::new(), Vec::new());
            for py in 0..panel.height {
                for px in 0..panel.width {
                    let o = ((panel.y0 + py) * info.width as usize + panel.x0 + px) * 3;
                    let c = [buf[o], buf[o + 1], buf[o + 2]];
                    if c[0] == c[1] && c[1] == c[2] {
                        continue;
                    }
                    // Liver's colour is red over blue, spleen's blue over green.
                    if (c[0] > c[2]) == (liver[0] > liver[2]) {
                        l1.push(px);
                    } else {
                        l2.push(px);
                    }
                }
            }
            assert!(!l1.is_empty() && !l2.is_empty(), "{}", panel.name);
            assert!(
                l1.iter().all(|&x| x < panel.width / 2),
                "{}: liver not on the left",
                panel.name
            );
            assert!(
                l2.iter().all(|&x| x >= panel.width / 2),
                "{}: spleen not on the right",
                panel.name
            );
        }
    }
}
