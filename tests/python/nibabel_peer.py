"""nibabel as the reference reader and writer for edge-seg's NIfTI tests.

    python nibabel_peer.py write OUTDIR   write test volumes in many layouts
    python nibabel_peer.py read FILE OUT  describe FILE as nibabel sees it

`read` (and `write`, for every file it makes) produces OUT.json with the
shape, affine, sform/qform codes and dtype, and OUT.raw with the voxels as
little-endian float32 in [k][j][i] order (i fastest).
"""
import json
import os
import struct
import sys

import nibabel as nib
import numpy as np


def describe(path, out_stem):
    img = nib.load(path)
    data = np.asarray(img.get_fdata(dtype=np.float64))
    if data.ndim > 3:
        data = data[..., 0] if data.ndim == 4 else data.reshape(data.shape[:3] + (-1,))[..., 0]
    hdr = img.header
    info = {
        "shape": [int(s) for s in data.shape],
        "affine": np.asarray(img.affine, dtype=float).tolist(),
        "sform_code": int(hdr["sform_code"]),
        "qform_code": int(hdr["qform_code"]),
        "dtype": str(hdr.get_data_dtype()),
        "intent_code": int(hdr["intent_code"]),
    }
    with open(out_stem + ".json", "w") as f:
        json.dump(info, f)
    with open(out_stem + ".raw", "wb") as f:
        f.write(np.ascontiguousarray(data.transpose(2, 1, 0), dtype="<f4").tobytes())


def rotation(ax, deg):
    t = np.deg2rad(deg)
    c, s = np.cos(t), np.sin(t)
    if ax == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if ax == "z":
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    raise ValueError(ax)


def affine(cols, origin):
    a = np.eye(4)
    a[:3, :3] = np.array(cols, dtype=float).T
    a[:3, 3] = origin
    return a


def volume(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    i, j, k = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    base = (i * 7 + j * 3 + k * 11) % 97 + rng.integers(0, 3, size=shape)
    return base.astype(dtype)


def write_all(outdir):
    os.makedirs(outdir, exist_ok=True)
    shape = (11, 9, 7)
    cases = {}
    cases["ras"] = (affine([[0.8, 0, 0], [0, 0.8, 0], [0, 0, 2.5]], [-40, -30, 10]), np.int16, "both")
    cases["lps"] = (affine([[-0.7, 0, 0], [0, -0.7, 0], [0, 0, 3.0]], [90, 80, -20]), np.int16, "both")
    cases["las"] = (affine([[-1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.5]], [5, -5, 0]), np.float32, "both")
    rot = rotation("z", 15) @ rotation("x", 10)
    cases["oblique"] = (affine((rot @ np.diag([0.9, 0.9, 2.0])).T, [-10, 20, 30]), np.float32, "both")
    cases["pls"] = (affine([[0, -1.2, 0], [-0.9, 0, 0], [0, 0, 2.0]], [50, 60, -70]), np.int16, "both")
    cases["qform_only"] = (affine([[-0.8, 0, 0], [0, 0.8, 0], [0, 0, 1.0]], [1, 2, 3]), np.int16, "qform")
    cases["sform_only"] = (affine([[0.6, 0.1, 0], [0, 0.6, 0], [0, 0, 4.0]], [3, 2, 1]), np.int16, "sform")
    cases["uint8"] = (affine([[1, 0, 0], [0, 1, 0], [0, 0, 1]], [0, 0, 0]), np.uint8, "both")
    cases["float64"] = (affine([[0.5, 0, 0], [0, -0.5, 0], [0, 0, 0.5]], [0, 0, 0]), np.float64, "both")
    for name, (aff, dtype, forms) in cases.items():
        data = volume(shape, dtype, len(name))
        img = nib.Nifti1Image(data, aff)
        if forms == "qform":
            img.set_qform(aff, code=1)
            img.set_sform(None, code=0)
        elif forms == "sform":
            img.set_sform(aff, code=1)
            img.set_qform(None, code=0)
        else:
            img.set_sform(aff, code=1)
            img.set_qform(aff, code=1)
        path = os.path.join(outdir, name + ".nii.gz")
        nib.save(img, path)
        describe(path, os.path.join(outdir, name))

    # Big-endian int16, uncompressed.
    aff = affine([[-0.9, 0, 0], [0, -0.9, 0], [0, 0, 2.0]], [10, 10, 10])
    data = volume(shape, np.int16, 42)
    hdr = nib.Nifti1Header(endianness=">")
    img = nib.Nifti1Image(data.astype(">i2"), aff, header=hdr)
    img.set_sform(aff, code=1)
    img.set_qform(aff, code=1)
    path = os.path.join(outdir, "big_endian.nii")
    nib.save(img, path)
    assert open(path, "rb").read(4) == struct.pack(">i", 348)
    describe(path, os.path.join(outdir, "big_endian"))

    # int16 with scl_slope / scl_inter, patched into an uncompressed file.
    aff = affine([[0.7, 0, 0], [0, 0.7, 0], [0, 0, 1.25]], [-1, -2, -3])
    data = volume(shape, np.int16, 7)
    img = nib.Nifti1Image(data, aff)
    img.set_sform(aff, code=1)
    img.set_qform(aff, code=1)
    img.header.set_slope_inter(1.0, 0.0)
    path = os.path.join(outdir, "scaled.nii")
    nib.save(img, path)
    with open(path, "r+b") as f:
        f.seek(112)
        f.write(struct.pack("<ff", 2.0, -1024.0))
    describe(path, os.path.join(outdir, "scaled"))


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write_all(sys.argv[2])
    elif sys.argv[1] == "read":
        describe(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(__doc__)
