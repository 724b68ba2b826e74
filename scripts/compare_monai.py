"""MONAI's sliding_window_inference (mode="gaussian", overlap=0.5) driving an
ONNX model through onnxruntime, on a scan already at the model's spacing in
RAS orientation, so no resampling is involved; compares its labels with
edge-seg's label map of the same scan.

    python compare_monai.py MODEL.onnx SCAN.nii.gz EDGE_SEG_LABELS.nii.gz
"""
import json
import sys

import nibabel as nib
import numpy as np
import onnx
import onnxruntime as ort
import torch
from monai.inferers import sliding_window_inference

model_path, scan_path, ours_path = sys.argv[1:4]
card = json.loads([p.value for p in onnx.load(model_path).metadata_props if p.key == "edge_seg.card"][0])
img = nib.load(scan_path)
assert nib.aff2axcodes(img.affine) == ("R", "A", "S"), "use a RAS scan at the model spacing"
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
    x, roi_size=card["tile"]["input"], sw_batch_size=1, predictor=predictor, overlap=0.5, mode="gaussian",
    sigma_scale=0.125, padding_mode="constant", cval=-1.0 if it["rescale"] else lo,
)
monai_labels = probs[0].argmax(0).numpy()
ours = np.asarray(nib.load(ours_path).dataobj).transpose(2, 1, 0)
agree = (monai_labels == ours).mean()
print(json.dumps({"voxels": int(ours.size), "agreement_percent": 100 * float(agree),
                  "monai_labels": int((monai_labels > 0).sum()), "edge_seg_labels": int((ours > 0).sum())}))
