"""Dice per structure of a model on the held-out test cases of a dataset.

    python heldout_dice.py MANIFEST.json MODEL.onnx [CASES] [EDGE_SEG]

Runs `edge-seg infer SCAN --model MODEL -o OUT --quiet` on each case of the
manifest's `test` split (the first CASES of them; default all), then computes
Dice per vocabulary structure against the case's label map on the scan's own
grid with nibabel, averaged per structure over the cases that contain it.
Prints one JSON line: the mean over structures and the per-structure means.
EDGE_SEG defaults to target/release/edge-seg.
"""
import json
import os
import subprocess
import sys
import tempfile

import nibabel as nib
import numpy as np

manifest_path, model = sys.argv[1], sys.argv[2]
limit = int(sys.argv[3]) if len(sys.argv) > 3 else None
edge_seg = sys.argv[4] if len(sys.argv) > 4 else "target/release/edge-seg"
root = os.path.dirname(os.path.abspath(manifest_path))
manifest = json.load(open(manifest_path))
vocab = manifest["vocabulary"]
cases = [c for c in manifest["cases"] if c["split"] == "test"][:limit]
if not cases:
    sys.exit(f"{manifest_path}: no test cases")
scores = {name: [] for name in vocab[1:]}
with tempfile.TemporaryDirectory() as out:
    for case in cases:
        seg = os.path.join(out, case["id"] + ".nii.gz")
        run = subprocess.run(
            [edge_seg, "infer", os.path.join(root, case["image"]), "--model", model, "-o", seg, "--quiet"],
            capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"{case['id']}: edge-seg failed: {run.stderr.strip()}")
        pred = np.asarray(nib.load(seg).dataobj)
        truth = np.asarray(nib.load(os.path.join(root, case["label"])).dataobj)
        for k, name in enumerate(vocab[1:], 1):
            t = truth == k
            if t.any():
                p = pred == k
                scores[name].append(2 * (p & t).sum() / (p.sum() + t.sum()))
per = {k: round(float(np.mean(v)), 3) for k, v in scores.items() if v}
print(json.dumps({"model": model, "cases": len(cases), "mean": round(float(np.mean(list(per.values()))), 3),
                  "per_class": per}))
