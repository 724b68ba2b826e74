"""The usual Python way to segment a scan with an edge-seg ONNX model:
nibabel load, reorient to the closest canonical orientation, resample to the
model spacing (scipy), window the intensities, Gaussian-blended sliding
window (overlap 0.5, sigma = tile/8, as MONAI's sliding_window_inference
with mode="gaussian") driving onnxruntime over the whole volume's class
probabilities, each class's probabilities zoomed back (linear) to the scan's
grid and argmaxed there, undo the reorientation, nibabel save.

    python whole_scan.py MODEL.onnx SCAN.nii.gz OUT.nii.gz [THREADS]
"""
import json
import math
import sys

import nibabel as nib
import numpy as np
import onnx
import onnxruntime as ort
from scipy import ndimage

model_path, scan_path, out_path = sys.argv[1:4]
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 0
card = json.loads([p.value for p in onnx.load(model_path).metadata_props if p.key == "edge_seg.card"][0])
tile = card["tile"]["input"]
classes = len(card["labels"])

img = nib.load(scan_path)
canon = nib.as_closest_canonical(img)
data = np.asarray(canon.dataobj, dtype=np.float32)  # [x, y, z]
zooms = np.array(canon.header.get_zooms()[:3], dtype=float)
target = np.array(card["spacing_mm"][::-1], dtype=float)  # card is z, y, x
shape = np.maximum(1, np.round(np.array(data.shape) * zooms / target)).astype(int)
resampled = ndimage.zoom(data, shape / np.array(data.shape), order=1, mode="nearest", grid_mode=True)
it = card["intensity"]
if it["kind"] == "window":
    lo, hi = it["min"], it["max"]
    resampled = np.clip(resampled, lo, hi)
    if it["rescale"]:
        resampled = 2 * (resampled - lo) / (hi - lo) - 1
    pad = -1.0 if it["rescale"] else lo
else:
    nz = resampled[resampled != 0]
    resampled = (resampled - nz.mean()) / max(nz.std(), 1e-12)
    pad = 0.0
vol = resampled.transpose(2, 1, 0)  # [z, y, x] as the network expects

opts = ort.SessionOptions()
if threads:
    opts.intra_op_num_threads = threads
sess = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])

# Gaussian importance map.
g = []
for n in tile:
    c = (n - 1) / 2
    s = n / 8
    g.append(np.exp(-((np.arange(n) - c) ** 2) / (2 * s * s)))
weight = g[0][:, None, None] * g[1][None, :, None] * g[2][None, None, :]
weight = (weight / weight.max()).astype(np.float32)
weight[weight == 0] = weight[weight > 0].min()

padded_shape = [max(a, b) for a, b in zip(vol.shape, tile)]
padded = np.full(padded_shape, pad, dtype=np.float32)
padded[: vol.shape[0], : vol.shape[1], : vol.shape[2]] = vol
starts = []
for n, t in zip(padded_shape, tile):
    count = 1 if n <= t else math.ceil((n - t) / (t * 0.5)) + 1
    starts.append([round((n - t) * i / max(count - 1, 1)) for i in range(count)])
acc = np.zeros([classes] + padded_shape, dtype=np.float32)
wsum = np.zeros(padded_shape, dtype=np.float32)
for z in starts[0]:
    for y in starts[1]:
        for x in starts[2]:
            patch = padded[z : z + tile[0], y : y + tile[1], x : x + tile[2]][None, None]
            out = sess.run(None, {"image": np.ascontiguousarray(patch)})[0][0]
            acc[:, z : z + tile[0], y : y + tile[1], x : x + tile[2]] += out * weight
            wsum[z : z + tile[0], y : y + tile[1], x : x + tile[2]] += weight
probs = (acc / wsum)[:, : vol.shape[0], : vol.shape[1], : vol.shape[2]]
del acc
# Each class's probabilities zoomed (linear) back to the scan's grid; the
# running maximum gives the argmax without holding every class there.
best = back = None
for c in range(classes):
    p = ndimage.zoom(probs[c].transpose(2, 1, 0), np.array(data.shape) / np.array(vol.shape[::-1]), order=1,
                     mode="nearest", grid_mode=True)[: data.shape[0], : data.shape[1], : data.shape[2]]
    if best is None:
        best, back = p, np.zeros(p.shape, dtype=np.uint8)
    else:
        better = p > best
        best = np.where(better, p, best)
        back[better] = c
# Undo the reorientation and save on the scan's grid.
ornt = nib.orientations.ornt_transform(nib.io_orientation(canon.affine), nib.io_orientation(img.affine))
orig = nib.orientations.apply_orientation(back, ornt).astype(np.uint8)
out = nib.Nifti1Image(orig, img.affine, img.header)
out.set_data_dtype(np.uint8)
nib.save(out, out_path)
print(json.dumps({"tiles": len(starts[0]) * len(starts[1]) * len(starts[2]), "model_grid": list(vol.shape)}))
