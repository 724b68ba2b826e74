//! DICOM end to end: CT series written from a phantom (one file per slice,
//! one enhanced multi-frame object, an RLE-compressed copy; axial and
//! oblique) read by `edge-seg info` as SimpleITK reads them; `edge-seg
//! infer` on a series writes a NIfTI label map on SimpleITK's grid and a
//! DICOM Segmentation that highdicom opens and that maps back onto the
//! series voxel for voxel; malformed series and files refused cleanly.

use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use edge_seg_runtime::dicom::synthetic::{write_series, SeriesOptions};
use edge_seg_runtime::geometry::Affine;
use edge_seg_runtime::volume::{read_volume, Volume};
use edge_seg_tests::{assert_clean_failure, python_with, run, run_python, temp_files_in, text};

/// A CT phantom (about 2.5 mm voxels), as a volume.
fn phantom(dir: &Path) -> Volume {
    let mut o = edge_seg_tests::phantoms::small(dir, 1, 61, 2.5);
    o.orientations = vec!["LPS".into()];
    let manifest = edge_seg_tests::phantoms::write(&o);
    let ds = edge_seg_trainer::data::Dataset::load(&manifest).unwrap();
    read_volume(&ds.resolve(&ds.manifest.cases[0].image)).unwrap()
}

/// The phantom's voxels on an oblique grid (rotated 20° about z): the
/// values stay, only the geometry changes.
fn oblique(v: &Volume) -> Volume {
    let (c, s) = (20f64.to_radians().cos(), 20f64.to_radians().sin());
    let a = v.affine.rows();
    let sp = v.spacing();
    let affine = Affine([
        [c * sp[0], -s * sp[1], 0.0, a[0][3]],
        [s * sp[0], c * sp[1], 0.0, a[1][3]],
        [0.0, 0.0, sp[2], a[2][3]],
        [0.0, 0.0, 0.0, 1.0],
    ]);
    Volume::from_array(v.data.mapv(|x| x.round()), affine)
}

fn info_json(path: &Path) -> serde_json::Value {
    let r = run("edge-seg", &["info", path.to_str().unwrap(), "--json"]);
    assert!(r.status.success(), "{}", text(&r));
    serde_json::from_slice(&r.stdout).unwrap()
}

fn assert_same_reading(ours: &serde_json::Value, sitk: &serde_json::Value, what: &str) {
    assert_eq!(ours["shape"], sitk["shape"], "{what}");
    for r in 0..4 {
        for c in 0..4 {
            let (a, b) = (
                ours["affine"][r][c].as_f64().unwrap(),
                sitk["affine"][r][c].as_f64().unwrap(),
            );
            assert!((a - b).abs() < 1e-4, "{what}: affine[{r}][{c}] {a} vs SimpleITK {b}");
        }
    }
    for k in ["min", "max"] {
        assert_eq!(ours[k].as_f64().unwrap(), sitk[k].as_f64().unwrap(), "{what}: {k}");
    }
    let (m, n) = (ours["mean"].as_f64().unwrap(), sitk["mean"].as_f64().unwrap());
    assert!(
        (m - n).abs() <= 1e-6 * n.abs().max(1.0),
        "{what}: mean {m} vs SimpleITK {n}"
    );
}

#[test]
fn series_read_as_simpleitk_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let vol = phantom(&dir.path().join("phantom"));
    let axial = Volume::from_array(vol.data.mapv(|x| x.round()), vol.affine);
    let cases: Vec<(&str, Volume, bool)> = vec![
        ("axial", axial.clone(), false),
        ("oblique", oblique(&vol), false),
        ("enhanced", axial, true),
    ];
    let py = python_with(&["SimpleITK", "pydicom", "numpy"]);
    for (name, v, multi_frame) in cases {
        let series = dir.path().join(name);
        let options = SeriesOptions {
            multi_frame,
            ..Default::default()
        };
        write_series(&v, &series, &options).unwrap();
        let ours = info_json(&series);
        assert_eq!(ours["dicom_series"]["slices"], v.data.dim().0, "{name}: {ours:#}");
        if let Some(py) = &py {
            let sitk: serde_json::Value = serde_json::from_str(&run_python(
                py,
                "dicom_peer.py",
                &["sitk-info", series.to_str().unwrap()],
            ))
            .unwrap();
            assert_same_reading(&ours, &sitk, name);
        }
        if name == "axial" {
            if let Some(py) = &py {
                // The same series RLE-compressed by pydicom reads the same.
                let rle = dir.path().join("rle");
                run_python(
                    py,
                    "dicom_peer.py",
                    &["rle", series.to_str().unwrap(), rle.to_str().unwrap()],
                );
                let compressed = info_json(&rle);
                assert_eq!(compressed["affine"], ours["affine"]);
                for k in ["shape", "min", "max", "mean"] {
                    assert_eq!(compressed[k], ours[k], "{k}");
                }
            }
        }
    }
}

#[test]
fn infer_on_a_series_writes_nifti_and_a_segmentation() {
    let dir = tempfile::tempdir().unwrap();
    let vol = phantom(&dir.path().join("phantom"));
    let series = dir.path().join("ct");
    write_series(&oblique(&vol), &series, &SeriesOptions::default()).unwrap();
    let nifti = dir.path().join("labels.nii.gz");
    let r = run(
        "edge-seg",
        &[
            "infer",
            series.to_str().unwrap(),
            "-o",
            nifti.to_str().unwrap(),
            "--quiet",
        ],
    );
    assert!(r.status.success(), "{}", text(&r));
    let seg = dir.path().join("labels_seg.dcm");
    let r = run(
        "edge-seg",
        &[
            "infer",
            series.to_str().unwrap(),
            "--output-format",
            "dicom-seg",
            "-o",
            seg.to_str().unwrap(),
            "--quiet",
        ],
    );
    assert!(r.status.success(), "{}", text(&r));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("labels_seg.json")).unwrap()).unwrap();
    let segments = report["dicom"]["segmentation"]["segments"].as_array().unwrap();
    assert!(segments.len() >= 8, "{report:#}");
    let Some(py) = python_with(&["SimpleITK", "nibabel", "pydicom", "highdicom"]) else {
        return;
    };
    // The label map lies on the grid SimpleITK gives the series.
    let reference = dir.path().join("sitk.nii.gz");
    run_python(
        &py,
        "dicom_peer.py",
        &["sitk-convert", series.to_str().unwrap(), reference.to_str().unwrap()],
    );
    let grid: serde_json::Value = serde_json::from_str(&run_python(
        &py,
        "dicom_peer.py",
        &["same-grid", nifti.to_str().unwrap(), reference.to_str().unwrap()],
    ))
    .unwrap();
    assert_eq!(grid["shapes"][0], grid["shapes"][1], "{grid}");
    assert!(grid["affine_max_diff"].as_f64().unwrap() < 1e-4, "{grid}");
    // highdicom opens the Segmentation; its frames equal the NIfTI labels.
    let check: serde_json::Value = serde_json::from_str(&run_python(
        &py,
        "dicom_peer.py",
        &[
            "seg-check",
            seg.to_str().unwrap(),
            series.to_str().unwrap(),
            nifti.to_str().unwrap(),
            dir.path().join("labels_seg.json").to_str().unwrap(),
        ],
    ))
    .unwrap();
    assert_eq!(check["sop_class"], "1.2.840.10008.5.1.4.1.1.66.4", "{check}");
    assert_eq!(check["modality"], "SEG", "{check}");
    assert_eq!(check["segments"], check["structures_in_nifti"], "{check}");
    assert_eq!(check["segments"].as_u64().unwrap() as usize, segments.len(), "{check}");
    assert_eq!(check["references_series"], true, "{check}");
    assert_eq!(check["study_matches"], true, "{check}");
    assert_eq!(check["frame_of_reference_matches"], true, "{check}");
    assert!(check["labelled_voxels"].as_u64().unwrap() > 1000, "{check}");
    assert_eq!(check["voxels_differing"], 0, "{check}");
}

/// Edit one element of a DICOM file (or remove it with `None`).
fn edit(file: &Path, tag: dicom_core::Tag, value: Option<&str>) {
    let mut obj = dicom_object::open_file(file).unwrap();
    match value {
        Some(v) => {
            obj.put(dicom_core::DataElement::new(
                tag,
                dicom_core::VR::DS,
                dicom_core::PrimitiveValue::from(v),
            ));
        }
        None => {
            obj.remove_element(tag);
        }
    }
    obj.write_to_file(file).unwrap();
}

#[test]
fn malformed_series_are_refused_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let v = Volume::from_array(
        ndarray::Array3::from_shape_fn((6, 20, 20), |(k, j, i)| (k + j + i) as f32),
        Affine::from_spacing([2.0, 2.0, 3.0], [0.0; 3]),
    );
    let make = |name: &str| -> (PathBuf, Vec<PathBuf>) {
        let d = dir.path().join(name);
        let files = write_series(&v, &d, &SeriesOptions::default()).unwrap();
        (d, files)
    };
    let mut cases: Vec<(PathBuf, &str)> = Vec::new();
    let (d, files) = make("uneven");
    edit(&files[3], tags::IMAGE_POSITION_PATIENT, Some("0\\0\\10.2"));
    cases.push((d, "uneven slice spacing"));
    let (d, files) = make("missing");
    std::fs::remove_file(&files[2]).unwrap();
    cases.push((d, "missing slices"));
    let (d, files) = make("no_position");
    edit(&files[1], tags::IMAGE_POSITION_PATIENT, None);
    cases.push((d, "has no ImagePositionPatient"));
    let (d, files) = make("tilted");
    for (k, f) in files.iter().enumerate() {
        edit(
            f,
            tags::IMAGE_POSITION_PATIENT,
            Some(&format!("0\\{}\\{}", k as f64 * 1.2, k as f64 * 3.0)),
        );
    }
    cases.push((d, "gantry tilt"));
    let (d, files) = make("truncated");
    let bytes = std::fs::read(&files[4]).unwrap();
    std::fs::write(&files[4], &bytes[..bytes.len() - 300]).unwrap();
    cases.push((files[4].clone(), "slice_0005.dcm"));
    cases.push((d, "slice_0005.dcm"));
    let (d, files) = make("transfer_syntax");
    let mut bytes = std::fs::read(&files[0]).unwrap();
    // The file meta's transfer syntax "1.2.840.10008.1.2.1" becomes an unknown one of the same length.
    let at = bytes.windows(19).position(|w| w == b"1.2.840.10008.1.2.1").unwrap();
    bytes[at..at + 19].copy_from_slice(b"1.2.840.99999.9.9.9");
    std::fs::write(&files[0], bytes).unwrap();
    cases.push((d, "slice_0001.dcm"));
    let odd = dir.path().join("odd.dcm");
    std::fs::write(&odd, b"not a DICOM file at all").unwrap();
    cases.push((odd, "not a DICOM file"));
    let empty = dir.path().join("empty_folder");
    std::fs::create_dir(&empty).unwrap();
    cases.push((empty, "holds no DICOM image series"));
    for (input, expected) in cases {
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        let dest = out.join("labels.nii.gz");
        let r = run(
            "edge-seg",
            &["infer", input.to_str().unwrap(), "-o", dest.to_str().unwrap()],
        );
        assert_clean_failure(&r, input.file_name().unwrap().to_str().unwrap());
        assert!(
            text(&r).contains(expected),
            "{}: expected {expected:?} in:\n{}",
            input.display(),
            text(&r)
        );
        let left: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
        assert!(left.is_empty(), "{}: something was written: {left:?}", input.display());
        assert!(temp_files_in(&out).is_empty());
        let r = run("edge-seg", &["info", input.to_str().unwrap()]);
        assert_clean_failure(&r, input.file_name().unwrap().to_str().unwrap());
    }
}

#[test]
fn series_choice_modality_and_format_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let v = Volume::from_array(
        ndarray::Array3::from_shape_fn((6, 20, 20), |(k, j, i)| (k + j + i) as f32),
        Affine::from_spacing([2.0, 2.0, 3.0], [0.0; 3]),
    );
    let folder = dir.path().join("study");
    write_series(&v, &folder.join("a"), &SeriesOptions::default()).unwrap();
    let mr = SeriesOptions {
        modality: "MR".into(),
        series_number: 2,
        description: "T2 axial".into(),
        ..Default::default()
    };
    write_series(&v, &folder.join("b"), &mr).unwrap();
    // `info` lists both.
    let r = run("edge-seg", &["info", folder.to_str().unwrap()]);
    assert!(r.status.success(), "{}", text(&r));
    assert!(
        text(&r).contains("2 DICOM image series") && text(&r).contains("T2 axial"),
        "{}",
        text(&r)
    );
    let listing = info_json(&folder);
    assert_eq!(listing["series"].as_array().unwrap().len(), 2, "{listing:#}");
    // `infer` refuses to guess, and refuses an MR series for the CT model.
    let dest = dir.path().join("labels.nii.gz");
    let r = run(
        "edge-seg",
        &["infer", folder.to_str().unwrap(), "-o", dest.to_str().unwrap()],
    );
    assert_clean_failure(&r, "study");
    assert!(
        text(&r).contains("--series") && text(&r).contains("T2 axial"),
        "{}",
        text(&r)
    );
    let r = run(
        "edge-seg",
        &[
            "infer",
            folder.to_str().unwrap(),
            "--series",
            "2",
            "-o",
            dest.to_str().unwrap(),
        ],
    );
    assert_clean_failure(&r, "study");
    assert!(
        text(&r).contains("the series is MR") && text(&r).contains("--force"),
        "{}",
        text(&r)
    );
    assert!(!dest.exists());
    // A Segmentation needs DICOM input.
    let nifti = dir.path().join("scan.nii.gz");
    v.write_float(&nifti).unwrap();
    let r = run(
        "edge-seg",
        &[
            "infer",
            nifti.to_str().unwrap(),
            "--output-format",
            "dicom-seg",
            "-o",
            dir.path().join("x.dcm").to_str().unwrap(),
        ],
    );
    assert_clean_failure(&r, "scan.nii.gz");
    assert!(text(&r).contains("needs a DICOM series"), "{}", text(&r));
}

/// The folder of DICOM files that ships with pydicom.
fn pydicom_files(py: &Path) -> PathBuf {
    let out = std::process::Command::new(py)
        .args([
            "-c",
            "import os, pydicom; print(os.path.join(os.path.dirname(pydicom.__file__), 'data', 'test_files'))",
        ])
        .output()
        .unwrap();
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

#[test]
fn real_files_from_pydicom() {
    let Some(py) = python_with(&["SimpleITK", "pydicom", "numpy"]) else {
        return;
    };
    let data = pydicom_files(&py);
    // One MR slice in six encodings: the same values from each codec we build.
    let plain = info_json(&data.join("MR_small.dcm"));
    assert_eq!(plain["shape"], serde_json::json!([64, 64, 1]), "{plain:#}");
    let sitk: serde_json::Value = serde_json::from_str(&run_python(
        &py,
        "dicom_peer.py",
        &["sitk-info", data.join("MR_small.dcm").to_str().unwrap()],
    ))
    .unwrap();
    for k in ["min", "max", "mean"] {
        assert!(
            (plain[k].as_f64().unwrap() - sitk[k].as_f64().unwrap()).abs() < 1e-6,
            "{k}: {plain:#} vs {sitk}"
        );
    }
    // In-plane geometry and origin as SimpleITK has them (the slice
    // spacing of a single slice is a convention: SliceThickness here).
    for r in 0..3 {
        for c in [0, 1, 3] {
            let (a, b) = (
                plain["affine"][r][c].as_f64().unwrap(),
                sitk["affine"][r][c].as_f64().unwrap(),
            );
            assert!((a - b).abs() < 1e-4, "affine[{r}][{c}] {a} vs {b}");
        }
    }
    for name in [
        "MR_small_RLE.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_expb.dcm",
    ] {
        let other = info_json(&data.join(name));
        for k in ["shape", "min", "max", "mean", "affine"] {
            assert_eq!(other[k], plain[k], "{name}: {k}");
        }
    }
    // What we do not read is refused by name: JPEG-LS (not built), a
    // truncated file, colour images, a file holding no image, a file
    // without the Part 10 preamble and marker.
    for (name, expected) in [
        ("MR_small_jpeg_ls_lossless.dcm", "JPEG-LS"),
        ("MR_truncated.dcm", "MR_truncated.dcm"),
        ("SC_rgb_small_odd.dcm", "not grey-level"),
        ("rtplan.dcm", "no DICOM image series"),
        ("rtstruct.dcm", "not a DICOM file"),
    ] {
        let r = run("edge-seg", &["info", data.join(name).to_str().unwrap()]);
        assert_clean_failure(&r, name);
        assert!(
            text(&r).contains(expected),
            "{name}: expected {expected:?} in {}",
            text(&r)
        );
    }
}
