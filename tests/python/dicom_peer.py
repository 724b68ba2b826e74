"""DICOM peers for the tests: SimpleITK reads series, pydicom compresses
them, highdicom reads Segmentations back.

    dicom_peer.py sitk-info SERIES            -> JSON: shape, RAS affine, min, max, mean
    dicom_peer.py sitk-convert SERIES OUT.nii.gz
    dicom_peer.py same-grid A.nii.gz B.nii.gz -> JSON: shapes and largest affine difference
    dicom_peer.py rle SRC_DIR DST_DIR         -> every file re-encoded as RLE Lossless
    dicom_peer.py seg-check SEG.dcm SERIES LABELS.nii.gz REPORT.json -> JSON summary
"""

import json
import os
import sys

import numpy as np


def read_series(path):
    import SimpleITK as sitk

    if os.path.isdir(path):
        reader = sitk.ImageSeriesReader()
        ids = reader.GetGDCMSeriesIDs(path)
        assert len(ids) == 1, f"{len(ids)} series in {path}"
        files = reader.GetGDCMSeriesFileNames(path, ids[0])
        if len(files) == 1:
            return sitk.ReadImage(files[0])
        reader.SetFileNames(files)
        return reader.Execute()
    return sitk.ReadImage(path)


def ras_affine(img):
    d = np.array(img.GetDirection()).reshape(3, 3)
    m = np.eye(4)
    m[:3, :3] = d @ np.diag(img.GetSpacing())
    m[:3, 3] = img.GetOrigin()
    return (np.diag([-1.0, -1.0, 1.0, 1.0]) @ m).tolist()


def sitk_info(path):
    import SimpleITK as sitk

    img = read_series(path)
    a = sitk.GetArrayFromImage(img).astype(np.float64)  # [k, j, i]
    print(
        json.dumps(
            {
                "shape": list(img.GetSize()),
                "affine": ras_affine(img),
                "min": float(a.min()),
                "max": float(a.max()),
                "mean": float(a.mean()),
            }
        )
    )


def sitk_convert(path, out):
    import SimpleITK as sitk

    sitk.WriteImage(read_series(path), out)


def same_grid(a, b):
    import nibabel as nib

    x, y = nib.load(a), nib.load(b)
    print(
        json.dumps(
            {
                "shapes": [list(x.shape), list(y.shape)],
                "affine_max_diff": float(np.abs(x.affine - y.affine).max()),
            }
        )
    )


def rle(src, dst):
    import pydicom
    from pydicom.uid import RLELossless

    os.makedirs(dst, exist_ok=True)
    for name in sorted(os.listdir(src)):
        ds = pydicom.dcmread(os.path.join(src, name))
        ds.compress(RLELossless)
        ds.save_as(os.path.join(dst, name), enforce_file_format=True)


def seg_check(seg_path, series, labels_path, report_path):
    import highdicom as hd
    import nibabel as nib
    import pydicom

    seg = hd.seg.segread(seg_path)
    files = [os.path.join(series, f) for f in sorted(os.listdir(series))]
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    assert len({s.SeriesInstanceUID for s in sources}) == 1
    iop = np.array(sources[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    sources.sort(key=lambda s: float(np.dot(normal, np.array(s.ImagePositionPatient, dtype=float))))
    uids = [s.SOPInstanceUID for s in sources]
    referenced = [
        s.SeriesInstanceUID for s in seg.ReferencedSeriesSequence
    ]
    report = json.load(open(report_path))
    index_of = {s["name"]: s["index"] for s in report["structures"]}
    numbers = seg.segment_numbers
    label_of_segment = {n: index_of[seg.get_segment_description(n).segment_label] for n in numbers}
    # One array per source image, in slice order, holding segment numbers.
    frames = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=uids,
        combine_segments=True,
        skip_overlap_checks=True,
    )
    mapped = np.zeros(frames.shape, dtype=np.int64)
    for n, label in label_of_segment.items():
        mapped[frames == n] = label
    expected = np.asarray(nib.load(labels_path).dataobj).astype(np.int64).transpose(2, 1, 0)
    print(
        json.dumps(
            {
                "sop_class": seg.SOPClassUID,
                "modality": seg.Modality,
                "segments": len(numbers),
                "segment_labels": [seg.get_segment_description(n).segment_label for n in numbers],
                "structures_in_nifti": int(len(np.unique(expected[expected > 0]))),
                "references_series": referenced == [sources[0].SeriesInstanceUID],
                "study_matches": seg.StudyInstanceUID == sources[0].StudyInstanceUID,
                "frame_of_reference_matches": seg.FrameOfReferenceUID == sources[0].FrameOfReferenceUID,
                "voxels_differing": int((mapped != expected).sum()),
                "voxels": int(expected.size),
                "labelled_voxels": int((expected > 0).sum()),
            }
        )
    )


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {
        "sitk-info": sitk_info,
        "sitk-convert": sitk_convert,
        "same-grid": same_grid,
        "rle": rle,
        "seg-check": seg_check,
    }[cmd](*args)
