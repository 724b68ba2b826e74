"""MONAI's sliding_window_inference (mode="gaussian", overlap=0.5) driving an
ONNX model through onnxruntime, on a scan already at the model's spacing in
RAS orientation, so no resampling is involved; compares its labels with
edge-seg's label map of the same scan.

    python compare_monai.py crop MODEL.onnx SCAN.nii.gz CROPPED.nii.gz
    python compare_monai.py compare MODEL.onnx SCAN.nii.gz EDGE_SEG_LABELS.nii.gz

MONAI steps tiles by tile·(1 − overlap) and clamps the last one to the edge;
nnU-Net (and edge-seg) space the same number of tiles evenly. The two agree
when every axis is the tile plus a multiple of the step, so `crop` cuts the
scan to such a size first; the comparison then measures the blending itself.

It also blends the same tiles in a plain loop here, once with edge-seg's
Gaussian (σ = tile/8, centred, no floor) and once with MONAI's importance
map (which floors the weights at 0.001), to show where a difference comes from.
"""
import json
import sys

import nibabel as nib
import numpy as np
import onnx
import onnxruntime as ort
import torch
from monai.inferers import sliding_window_inference

mode, model_path, scan_path, other_path = sys.argv[1:5]
card = json.loads([p.value for p in onnx.load(model_path).metadata_props if p.key == "edge_seg.card"][0])
tile = card["tile"]["input"]
img = nib.load(scan_path)
assert nib.aff2axcodes(img.affine) == ("R", "A", "S"), "use a RAS scan at the model spacing"

if mode == "crop":
    data = np.asarray(img.dataobj, dtype=np.float32)  # [x, y, z]
    keep = []
    for n, t in zip(data.shape, tile[::-1]):
        step = t // 2
        keep.append(t + max(0, (n - t) // step) * step if n >= t else n)
    nib.save(nib.Nifti1Image(data[: keep[0], : keep[1], : keep[2]], img.affine), other_path)
    sys.exit(0)

data = np.asarray(img.dataobj, dtype=np.float32).transpose(2, 1, 0)  # [z, y, x]
it = card["intensity"]
lo, hi = it["min"], it["max"]
data = np.clip(data, lo, hi)
if it["rescale"]:
    data = 2 * (data - lo) / (hi - lo) - 1
sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])


def predictor(x):
    y = sess.run(None, {"image": x.numpy().astype(np.float32)})[0]
    return torch.from_numpy(y)


x = torch.from_numpy(data)[None, None]
probs = sliding_window_inference(
    x, roi_size=tile, sw_batch_size=1, predictor=predictor, overlap=0.5, mode="gaussian",
    sigma_scale=0.125, padding_mode="constant", cval=-1.0 if it["rescale"] else lo,
)
monai_labels = probs[0].argmax(0).numpy()


def starts(n, t):
    k = int(np.ceil((n - t) / (t * 0.5))) + 1 if n > t else 1
    return [int(round(v)) for v in np.linspace(0, n - t, k)] if k > 1 else [0]


def loop_blend(weights):
    acc, wsum = None, np.zeros(data.shape)
    for z in starts(data.shape[0], tile[0]):
        for y in starts(data.shape[1], tile[1]):
            for x in starts(data.shape[2], tile[2]):
                sl = (slice(z, z + tile[0]), slice(y, y + tile[1]), slice(x, x + tile[2]))
                p = sess.run(None, {"image": data[sl][None, None]})[0][0]
                if acc is None:
                    acc = np.zeros((p.shape[0],) + data.shape)
                acc[(slice(None),) + sl] += p * weights
                wsum[sl] += weights
    return (acc / wsum).argmax(0)


g = [np.exp(-((np.arange(t) - (t - 1) / 2) ** 2) / (2 * (t / 8) ** 2)) for t in tile]
ours_map = g[0][:, None, None] * g[1][None, :, None] * g[2][None, None, :]
from monai.data.utils import compute_importance_map
monai_map = compute_importance_map(tile, mode="gaussian", sigma_scale=0.125).numpy().astype(np.float64)
loop_ours, loop_monai = loop_blend(ours_map), loop_blend(monai_map)
top2 = torch.topk(probs[0], 2, dim=0).values.numpy()
ours = np.asarray(nib.load(other_path).dataobj).transpose(2, 1, 0)
differ = monai_labels != ours
print(json.dumps({
    "shape_zyx": list(ours.shape), "tile": tile, "voxels": int(ours.size),
    "agreement_percent": 100 * float(1 - differ.mean()),
    "monai_labelled": int((monai_labels > 0).sum()), "edge_seg_labelled": int((ours > 0).sum()),
    "largest_top2_margin_where_they_differ": float((top2[0] - top2[1])[differ].max()) if differ.any() else None,
    "loop_with_edge_seg_gaussian_vs_edge_seg_percent": 100 * float((loop_ours == ours).mean()),
    "loop_with_monai_map_vs_monai_percent": 100 * float((loop_monai == monai_labels).mean()),
    "monai_map_min": float(monai_map.min()), "edge_seg_map_min": float(ours_map.min() / ours_map.max()),
}))
