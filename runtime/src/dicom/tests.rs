//! Series written by [`super::synthetic`] read back: values, geometry in
//! several orientations, multi-frame objects, series selection, refusals,
//! and a Segmentation decoded back onto the series grid.

use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use dicom_object::open_file;
use ndarray::Array3;

use super::layout::layout;
use super::series::{find_series, select_series};
use super::synthetic::{write_series, SeriesOptions};
use super::{read_series, write_seg, SegOptions};
use crate::geometry::Affine;
use crate::volume::{ReadOptions, Volume};

/// A small volume of integer HU values on `affine`.
fn volume(affine: Affine) -> Volume {
    let data = Array3::from_shape_fn((5, 4, 3), |(k, j, i)| (k * 100 + j * 10 + i) as f32 - 1000.0);
    Volume::from_array(data, affine)
}

/// An oblique affine: rotated about z by 30°, a left-right flip, 0.8 x 0.6 x 2.5 mm.
fn oblique() -> Affine {
    let (c, s) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
    Affine([
        [-0.8 * c, -0.6 * s, 0.0, 12.5],
        [-0.8 * s, 0.6 * c, 0.0, -40.0],
        [0.0, 0.0, 2.5, 100.0],
        [0.0, 0.0, 0.0, 1.0],
    ])
}

fn read_dir(dir: &Path) -> Volume {
    let all = find_series(&[dir.to_path_buf()]).unwrap();
    let s = select_series(&all, None, dir).unwrap();
    let l = layout(s).unwrap();
    read_series(s, &l, ReadOptions::default()).unwrap()
}

/// `v` with its slices in ITK's order: ascending along the normal of the
/// image plane (in LPS), i.e. reversed when its k axis points the other way.
fn as_itk_orders(v: &Volume) -> Volume {
    let lps = |c: usize| {
        let a = v.affine.column(c);
        [-a[0], -a[1], a[2]]
    };
    let (r, c, k) = (lps(0), lps(1), lps(2));
    let normal = [
        r[1] * c[2] - r[2] * c[1],
        r[2] * c[0] - r[0] * c[2],
        r[0] * c[1] - r[1] * c[0],
    ];
    if normal[0] * k[0] + normal[1] * k[1] + normal[2] * k[2] > 0.0 {
        return v.clone();
    }
    let nk = v.data.dim().0;
    let mut data = v.data.clone();
    data.invert_axis(ndarray::Axis(0));
    let mut affine = v.affine;
    let last = v.affine.apply([0.0, 0.0, (nk - 1) as f64]);
    for row in 0..3 {
        affine.0[row][2] = -affine.0[row][2];
        affine.0[row][3] = last[row];
    }
    Volume::from_array(data.as_standard_layout().to_owned(), affine)
}

#[test]
fn series_round_trip_in_any_orientation() {
    let affines = [
        Affine::from_spacing([0.7, 0.7, 2.0], [-50.0, 20.0, 5.0]),
        oblique(),
        // Sagittal slices: i → -y (posterior in RAS is -A), j → -z, k → x.
        Affine([
            [0.0, 0.0, 1.5, -30.0],
            [-0.9, 0.0, 0.0, 60.0],
            [0.0, -0.9, 0.0, 80.0],
            [0.0, 0.0, 0.0, 1.0],
        ]),
    ];
    for (n, affine) in affines.iter().enumerate() {
        for multi_frame in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let original = volume(*affine);
            let options = SeriesOptions {
                multi_frame,
                ..Default::default()
            };
            write_series(&original, dir.path(), &options).unwrap();
            let back = read_dir(dir.path());
            let expected = as_itk_orders(&original);
            assert_eq!(back.data, expected.data, "affine {n}, multi-frame {multi_frame}");
            let diff = back.affine.max_abs_diff(&expected.affine);
            assert!(
                diff < 1e-5,
                "affine {n}, multi-frame {multi_frame}: {diff}\n{:?}\n{:?}",
                back.affine,
                expected.affine
            );
            assert!(back.warnings.is_empty(), "{:?}", back.warnings);
        }
    }
}

#[test]
fn several_series_are_listed_and_chosen() {
    let dir = tempfile::tempdir().unwrap();
    let a = volume(Affine::from_spacing([1.0, 1.0, 2.0], [0.0; 3]));
    for (number, sub) in [(3, "b"), (2, "a")] {
        let options = SeriesOptions {
            series_number: number,
            description: format!("series {sub}"),
            ..Default::default()
        };
        write_series(&a, &dir.path().join(sub), &options).unwrap();
    }
    // A stray file that is not DICOM is passed over.
    std::fs::write(dir.path().join("README.txt"), "notes").unwrap();
    let all = find_series(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].number, Some(2), "ordered by series number");
    let e = select_series(&all, None, dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("2 image series found") && e.contains(&all[1].uid) && e.contains("--series"),
        "{e}"
    );
    assert_eq!(select_series(&all, Some("2"), dir.path()).unwrap().uid, all[1].uid);
    assert_eq!(
        select_series(&all, Some(&all[0].uid), dir.path()).unwrap().description,
        "series a"
    );
    let e = select_series(&all, Some("7"), dir.path()).unwrap_err().to_string();
    assert!(e.contains("--series 7: no such series"), "{e}");
}

#[test]
fn broken_series_are_refused_by_name() {
    let affine = Affine::from_spacing([1.0, 1.0, 2.0], [0.0; 3]);
    let write = |dir: &Path| -> Vec<PathBuf> { write_series(&volume(affine), dir, &SeriesOptions::default()).unwrap() };
    // A missing slice.
    let dir = tempfile::tempdir().unwrap();
    let files = write(dir.path());
    std::fs::remove_file(&files[2]).unwrap();
    let all = find_series(&[dir.path().to_path_buf()]).unwrap();
    let e = layout(&all[0]).unwrap_err().to_string();
    assert!(
        e.contains("missing slices") && e.contains(&dir.path().display().to_string()),
        "{e}"
    );
    // A truncated file.
    let dir = tempfile::tempdir().unwrap();
    let files = write(dir.path());
    let bytes = std::fs::read(&files[1]).unwrap();
    std::fs::write(&files[1], &bytes[..bytes.len() / 3]).unwrap();
    let e = find_series(&[dir.path().to_path_buf()])
        .and_then(|all| {
            let l = layout(&all[0])?;
            read_series(&all[0], &l, ReadOptions::default()).map(|_| ())
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("slice_0002.dcm"), "{e}");
    // A file named directly that is not DICOM, and a folder without DICOM.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("scan.dcm");
    std::fs::write(&f, vec![7u8; 300]).unwrap();
    let e = find_series(std::slice::from_ref(&f)).unwrap_err().to_string();
    assert!(e.contains("scan.dcm") && e.contains("not a DICOM file"), "{e}");
    let e = find_series(&[dir.path().to_path_buf()]).unwrap_err().to_string();
    assert!(e.contains("holds no DICOM image series"), "{e}");
    // Uneven spacing, written as such.
    let dir = tempfile::tempdir().unwrap();
    let options = SeriesOptions {
        positions: Some(vec![
            [0.0, 0.0, 0.0],
            [0.0, 0.0, 2.0],
            [0.0, 0.0, 4.7],
            [0.0, 0.0, 6.0],
            [0.0, 0.0, 8.0],
        ]),
        ..Default::default()
    };
    write_series(&volume(affine), dir.path(), &options).unwrap();
    let all = find_series(&[dir.path().to_path_buf()]).unwrap();
    let e = layout(&all[0]).unwrap_err().to_string();
    assert!(e.contains("uneven slice spacing"), "{e}");
}

#[test]
fn rescale_is_applied_per_slice() {
    let dir = tempfile::tempdir().unwrap();
    let original = volume(Affine::from_spacing([1.0, 1.0, 2.0], [0.0; 3]));
    let options = SeriesOptions {
        rescale_slope: 0.5,
        rescale_intercept: -1100.0,
        ..Default::default()
    };
    let files = write_series(&original, dir.path(), &options).unwrap();
    let back = read_dir(dir.path());
    assert_eq!(back.data, original.data);
    // The same samples declared unsigned with 12 bits stored, and garbage
    // in the 4 unused high bits: masked off.
    for f in &files {
        let mut obj = open_file(f).unwrap();
        let put = |obj: &mut dicom_object::DefaultDicomObject, tag, v: u16| {
            obj.put(dicom_core::DataElement::new(
                tag,
                dicom_core::VR::US,
                dicom_core::PrimitiveValue::from(v),
            ));
        };
        put(&mut obj, tags::PIXEL_REPRESENTATION, 0);
        put(&mut obj, tags::BITS_STORED, 12);
        put(&mut obj, tags::HIGH_BIT, 11);
        let mut bytes = obj.element(tags::PIXEL_DATA).unwrap().to_bytes().unwrap().to_vec();
        for pair in bytes.chunks_exact_mut(2) {
            pair[1] |= 0xa0;
        }
        obj.put(dicom_core::DataElement::new(
            tags::PIXEL_DATA,
            dicom_core::VR::OW,
            dicom_core::PrimitiveValue::U8(bytes.into()),
        ));
        obj.write_to_file(f).unwrap();
    }
    assert_eq!(read_dir(dir.path()).data, original.data);
}

#[test]
fn segmentation_frames_map_back_onto_the_series() {
    let dir = tempfile::tempdir().unwrap();
    let original = volume(oblique());
    write_series(&original, &dir.path().join("ct"), &SeriesOptions::default()).unwrap();
    let all = find_series(&[dir.path().join("ct")]).unwrap();
    let l = layout(&all[0]).unwrap();
    // Labels 1 (liver) on slices 1-2 and 3 (kidneys) on slice 4; none of 2.
    let mut labels = Array3::<u16>::zeros((5, 4, 3));
    labels[[1, 0, 0]] = 1;
    labels[[2, 3, 2]] = 1;
    labels[[4, 1, 1]] = 3;
    labels[[4, 2, 1]] = 3;
    let card = edge_seg_models::ModelCard::new(
        "t",
        edge_seg_models::card::Modality::CT,
        &edge_seg_models::labels::BASE_LABELS,
        edge_seg_models::NetworkSpec::paper(14),
        [3.0; 3],
        edge_seg_models::card::Intensity::ct_default(),
        [132; 3],
    )
    .unwrap();
    let dest = dir.path().join("out.seg.dcm");
    let options = SegOptions {
        model: "default".into(),
        series_description: "test".into(),
        series_number: 1001,
    };
    let summary = write_seg(&dest, &all[0], &l, labels.view(), &card, &options).unwrap();
    assert_eq!(summary.segments, vec![(1, 1), (2, 3)]);
    assert_eq!(summary.frames, 3);
    let seg = open_file(&dest).unwrap();
    assert_eq!(
        seg.meta().transfer_syntax().trim_end_matches('\0'),
        "1.2.840.10008.1.2.1.99"
    );
    let items = seg.element(tags::SEGMENT_SEQUENCE).unwrap().items().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[1].element(tags::SEGMENT_LABEL).unwrap().to_str().unwrap(),
        "kidneys"
    );
    // Unpack the frames and put them back where their positions say.
    let bits = seg.element(tags::PIXEL_DATA).unwrap().to_bytes().unwrap();
    let frames = seg
        .element(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .unwrap()
        .items()
        .unwrap();
    let mut back = Array3::<u16>::zeros((5, 4, 3));
    let z_of: Vec<f64> = l.order.iter().map(|&i| all[0].frames[i].position.unwrap()[2]).collect();
    for (f, item) in frames.iter().enumerate() {
        let segment = item
            .element(tags::SEGMENT_IDENTIFICATION_SEQUENCE)
            .unwrap()
            .items()
            .unwrap()[0]
            .element(tags::REFERENCED_SEGMENT_NUMBER)
            .unwrap()
            .to_int::<u16>()
            .unwrap();
        let label = summary.segments.iter().find(|s| s.0 == segment).unwrap().1;
        let p = item.element(tags::PLANE_POSITION_SEQUENCE).unwrap().items().unwrap()[0]
            .element(tags::IMAGE_POSITION_PATIENT)
            .unwrap()
            .to_multi_float64()
            .unwrap();
        let k = z_of.iter().position(|z| (z - p[2]).abs() < 1e-3).unwrap();
        for p in 0..12 {
            let bit = f * 12 + p;
            if bits[bit / 8] >> (bit % 8) & 1 == 1 {
                back[[k, p / 3, p % 3]] = label;
            }
        }
    }
    assert_eq!(back, labels);
    assert!(crate::scan::is_dicom(&dest));
    // Read as input, a folder holding the series and its Segmentation has one image series.
    std::fs::copy(&dest, dir.path().join("ct").join("seg.dcm")).unwrap();
    assert_eq!(find_series(&[dir.path().join("ct")]).unwrap().len(), 1);
}
