//! Round trips through our own reader and writer.

use ndarray::Array3;

use super::*;
use crate::geometry::Affine;

fn oblique_affine() -> Affine {
    let (s, c) = (0.3f64.sin(), 0.3f64.cos());
    Affine([
        [-0.8 * c, 0.8 * s, 0.0, 120.0],
        [-0.8 * s, -0.8 * c, 0.0, 95.5],
        [0.0, 0.0, 2.5, -300.25],
        [0.0, 0.0, 0.0, 1.0],
    ])
}

fn ramp(shape: (usize, usize, usize)) -> Array3<f32> {
    Array3::from_shape_fn(shape, |(k, j, i)| (k * 1000 + j * 30 + i) as f32 - 500.25)
}

#[test]
fn float_round_trip_keeps_voxels_and_affine() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["v.nii", "v.nii.gz"] {
        let path = dir.path().join(name);
        let vol = Volume::from_array(ramp((6, 7, 8)), oblique_affine());
        vol.write_float(&path).unwrap();
        let back = read_volume(&path).unwrap();
        assert_eq!(back.data, vol.data);
        assert_eq!(back.shape_ijk(), [8, 7, 6]);
        assert!(back.affine.max_abs_diff(&vol.affine) < 1e-4, "{:?}", back.affine);
        // Written again from what was read: identical again.
        let again = dir.path().join(format!("again-{name}"));
        back.write_float(&again).unwrap();
        let third = read_volume(&again).unwrap();
        assert_eq!(third.data, vol.data);
        assert!(third.affine.max_abs_diff(&vol.affine) < 1e-4);
    }
}

#[test]
fn labels_round_trip_as_u8_and_u16() {
    let dir = tempfile::tempdir().unwrap();
    let vol = Volume::from_array(ramp((3, 4, 5)), oblique_affine());
    for (max, dtype) in [(13u16, nifti::NiftiType::Uint8), (300u16, nifti::NiftiType::Uint16)] {
        let labels = Array3::from_shape_fn((3, 4, 5), |(k, j, i)| ((k + j + i) as u16 * 37) % (max + 1));
        let path = dir.path().join(format!("l{max}.nii.gz"));
        write_labels(&path, labels.view(), &vol.header_with_own_affine()).unwrap();
        let back = read_volume(&path).unwrap();
        assert_eq!(back.datatype, dtype);
        assert_eq!(back.data.mapv(|v| v as u16), labels);
        assert!(back.affine.max_abs_diff(&vol.affine) < 1e-4);
        assert_eq!(back.header.intent_code, 1002);
    }
    assert!(temp_leftovers(dir.path()).is_empty());
}

fn temp_leftovers(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(edge_seg_models::atomic::TEMP_MARKER))
        .collect()
}

#[test]
fn failed_write_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let vol = Volume::from_array(ramp((2, 2, 2)), Affine::IDENTITY);
    let bad = dir.path().join("no-such-dir").join("x.nii.gz");
    let err = vol.write_float(&bad).unwrap_err().to_string();
    assert!(err.contains("no-such-dir") && err.contains("does not exist"), "{err}");
    let wrong_ext = dir.path().join("x.png");
    let err = vol.write_float(&wrong_ext).unwrap_err().to_string();
    assert!(err.contains("x.png") && err.contains(".nii"), "{err}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[test]
fn output_equal_to_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("scan.nii.gz");
    Volume::from_array(ramp((2, 2, 2)), Affine::IDENTITY)
        .write_float(&p)
        .unwrap();
    let same = dir.path().join(".").join("scan.nii.gz");
    let err = check_not_input(&p, &same).unwrap_err().to_string();
    assert!(err.contains("scan.nii.gz") && err.contains("input"), "{err}");
    assert!(check_not_input(&p, &dir.path().join("scan.seg.nii.gz")).is_ok());
}

#[test]
fn geometry_check_names_the_problem() {
    let mut a = Affine::from_spacing([1.0, 0.0, 1.0], [0.0; 3]);
    assert!(check_affine(&a).unwrap_err().contains("spacing"));
    a.0[1][1] = f64::NAN;
    assert!(check_affine(&a).unwrap_err().contains("spacing"));
    let mut b = Affine::from_spacing([1.0, 1.0, 1.0], [0.0; 3]);
    b.0[0][3] = f64::INFINITY;
    assert!(check_affine(&b).unwrap_err().contains("NaN or infinite"));
    assert!(check_affine(&Affine::from_spacing([0.7, 0.7, 3.0], [0.0; 3])).is_ok());
}
