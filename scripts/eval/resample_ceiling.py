"""How much Dice a model grid of a given spacing can keep at best: each test
label map is resampled (nearest) to the isotropic spacing and back to its own
grid, and compared with itself.

    python resample_ceiling.py MANIFEST.json SPACING_MM...

Prints, per spacing, the mean Dice over structures and the per-structure means
over the manifest's `test` cases.
"""
import json
import os
import sys

import nibabel as nib
import numpy as np

manifest_path = sys.argv[1]
spacings = [float(s) for s in sys.argv[2:]] or [4.0]
root = os.path.dirname(os.path.abspath(manifest_path))
manifest = json.load(open(manifest_path))
vocab = manifest["vocabulary"]
cases = [c for c in manifest["cases"] if c["split"] == "test"]
labels = [nib.load(os.path.join(root, c["label"])) for c in cases]
for s in spacings:
    scores = {}
    for img in labels:
        lab = np.asarray(img.dataobj).astype(np.int16)
        zooms = img.header.get_zooms()[:3]
        index = []
        for axis in range(3):
            n, sp = lab.shape[axis], float(zooms[axis])
            coarse = int(np.ceil(n * sp / s))
            # Centre of each coarse voxel, in fine voxel indices (nearest).
            down = np.clip(np.round((np.arange(coarse) * s + s / 2) / sp - 0.5).astype(int), 0, n - 1)
            # The coarse voxel holding each fine voxel's centre.
            up = np.clip(np.floor((np.arange(n) + 0.5) * sp / s).astype(int), 0, coarse - 1)
            index.append(down[up])
        back = lab[np.ix_(*index)]
        for k, name in enumerate(vocab[1:], 1):
            a = lab == k
            if a.any():
                b = back == k
                scores.setdefault(name, []).append(2 * (a & b).sum() / (a.sum() + b.sum()))
    per = {k: round(float(np.mean(v)), 3) for k, v in scores.items()}
    print(json.dumps({"spacing_mm": s, "mean": round(float(np.mean(list(per.values()))), 3), "per_class": per}))
