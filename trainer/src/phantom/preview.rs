//! A montage of phantoms: an axial and a coronal mid-slice of each case,
//! with the label map overlaid in the labels' colours.

use std::path::Path;

use anyhow::{anyhow, Result};
use edge_seg_models::labels::label_colour;
use edge_seg_runtime::geometry::{reversed, Reorientation};
use edge_seg_runtime::volume::read_volume;
use ndarray::{Array2, Array3, Axis};
use plotters::prelude::*;

/// One case to show.
pub struct PreviewCase<'a> {
    pub title: String,
    pub image: &'a Path,
    pub labels: &'a Path,
    pub label_names: &'a [String],
    /// Label value in the file → vocabulary index (the case's source mapping).
    pub lookup: std::collections::BTreeMap<u32, u16>,
    pub mr: bool,
}

const VIEW: u32 = 240;
const TITLE: u32 = 22;

/// Canonical (RAS, `[z][y][x]`) image, labels and spacing.
fn load(case: &PreviewCase) -> Result<(Array3<f32>, Array3<f32>, [f64; 3])> {
    let img = read_volume(case.image)?;
    let mut lab = read_volume(case.labels)?;
    lab.data
        .mapv_inplace(|v| case.lookup.get(&(v as u32)).copied().unwrap_or(0) as f32);
    let r = Reorientation::new(&img.affine, [img.data.dim().0, img.data.dim().1, img.data.dim().2]);
    let ca = r.canonical_affine(&img.affine);
    Ok((
        r.apply(img.data.view()),
        r.apply(lab.data.view()),
        reversed(ca.spacing()),
    ))
}

/// Draw `slice` (rows top to bottom) into a VIEW×VIEW cell, keeping the
/// physical aspect ratio.
fn draw_slice(
    root: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    origin: (i32, i32),
    image: &Array2<f32>,
    labels: &Array2<f32>,
    pixel_mm: (f64, f64),
    window: (f32, f32),
    names: &[String],
) -> Result<()> {
    let (rows, cols) = image.dim();
    let height_mm = rows as f64 * pixel_mm.0;
    let width_mm = cols as f64 * pixel_mm.1;
    let scale = (VIEW as f64 / height_mm).min(VIEW as f64 / width_mm);
    let colours: Vec<[u8; 3]> = (0..256)
        .map(|i| names.get(i).map(|n| label_colour(n)).unwrap_or([255, 255, 0]))
        .collect();
    for py in 0..VIEW {
        for px in 0..VIEW {
            let r = (py as f64 / scale / pixel_mm.0) as usize;
            let c = (px as f64 / scale / pixel_mm.1) as usize;
            let rgb = if r < rows && c < cols {
                let v = ((image[[r, c]] - window.0) / (window.1 - window.0)).clamp(0.0, 1.0);
                let g = (v * 255.0) as f32;
                let l = labels[[r, c]] as usize;
                if l > 0 && l < 256 {
                    let col = colours[l];
                    let a = 0.45;
                    [0, 1, 2].map(|k| (g * (1.0 - a) + col[k] as f32 * a) as u8)
                } else {
                    [g as u8; 3]
                }
            } else {
                [20, 20, 20]
            };
            root.draw_pixel(
                (origin.0 + px as i32, origin.1 + py as i32),
                &RGBColor(rgb[0], rgb[1], rgb[2]),
            )
            .map_err(|e| anyhow!("drawing failed: {e}"))?;
        }
    }
    Ok(())
}

/// Write a PNG montage: one row per case, axial, coronal and sagittal views.
pub fn write_montage(out: &Path, cases: &[PreviewCase]) -> Result<()> {
    let width = 3 * VIEW + 40;
    let height = cases.len() as u32 * (VIEW + TITLE + 8) + 8;
    crate::figure::write_png(out, (width, height), |root| {
        root.fill(&BLACK).map_err(|e| anyhow!("{e}"))?;
        for (n, case) in cases.iter().enumerate() {
            let (img, lab, sp) = load(case)?;
            let (nz, ny, nx) = img.dim();
            let window = if case.mr {
                let mut v: Vec<f32> = img.iter().copied().collect();
                v.sort_by(|a, b| a.total_cmp(b));
                (0.0, v[(v.len() as f64 * 0.99) as usize].max(1.0))
            } else {
                (-250.0, 350.0)
            };
            // Radiological display: the patient's right (+x) on the screen's
            // left; anterior (axial) or superior (coronal) at the top.
            let flip = |a: Array2<f32>| {
                let mut a = a;
                a.invert_axis(Axis(0));
                a.invert_axis(Axis(1));
                a
            };
            let axial_img = flip(img.index_axis(Axis(0), nz / 2).to_owned());
            let axial_lab = flip(lab.index_axis(Axis(0), nz / 2).to_owned());
            let cor_img = flip(img.index_axis(Axis(1), ny / 2).to_owned());
            let cor_lab = flip(lab.index_axis(Axis(1), ny / 2).to_owned());
            // Sagittal at mid x: superior at the top, anterior on the left.
            let sag_img = flip(img.index_axis(Axis(2), nx / 2).to_owned());
            let sag_lab = flip(lab.index_axis(Axis(2), nx / 2).to_owned());
            let y0 = 8 + n as i32 * (VIEW + TITLE + 8) as i32;
            root.draw_text(&case.title, &("sans-serif", 16).into_font().color(&WHITE), (10, y0))
                .map_err(|e| anyhow!("{e}"))?;
            let top = y0 + TITLE as i32;
            draw_slice(
                root,
                (10, top),
                &axial_img,
                &axial_lab,
                (sp[1], sp[2]),
                window,
                case.label_names,
            )?;
            draw_slice(
                root,
                (20 + VIEW as i32, top),
                &cor_img,
                &cor_lab,
                (sp[0], sp[2]),
                window,
                case.label_names,
            )?;
            draw_slice(
                root,
                (30 + 2 * VIEW as i32, top),
                &sag_img,
                &sag_lab,
                (sp[0], sp[1]),
                window,
                case.label_names,
            )?;
        }
        Ok(())
    })
}
