"""How much Dice a model grid of a given spacing can keep at best: each test
label map is sampled (nearest) onto the isotropic spacing, brought back to its
own grid, and compared with itself. Back in the two ways of `edge-seg infer
--resampling`: `nearest` copies each coarse label to the voxels it covers;
`linear` interpolates each class's one-hot map (trilinear, edges clamped) to
every voxel centre and takes the highest class there. The coarse grid has
exactly the given spacing (the runtime rounds the voxel count and stretches
the spacing to fit, so its grid may differ by a voxel per axis).

    python resample_ceiling.py MANIFEST.json SPACING_MM...

Prints, per spacing and way back, the mean Dice over structures and the
per-structure means over the manifest's `test` cases.
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


def linear_back(coarse_map, taps):
    """Trilinear interpolation of a coarse map at the fine voxel centres."""
    out = coarse_map.astype(np.float32)
    for axis, (lo, hi, w) in enumerate(taps):
        shape = [1, 1, 1]
        shape[axis] = -1
        w = w.reshape(shape)
        out = np.take(out, lo, axis=axis) * (1 - w) + np.take(out, hi, axis=axis) * w
    return out


for s in spacings:
    scores = {"nearest": {}, "linear": {}}
    for img in labels:
        lab = np.asarray(img.dataobj).astype(np.int16)
        zooms = img.header.get_zooms()[:3]
        down, up, taps = [], [], []
        for axis in range(3):
            n, sp = lab.shape[axis], float(zooms[axis])
            coarse = int(np.ceil(n * sp / s))
            # Centre of each coarse voxel, in fine voxel indices (nearest).
            down.append(np.clip(np.round((np.arange(coarse) * s + s / 2) / sp - 0.5).astype(int), 0, n - 1))
            # The coarse voxel holding each fine voxel's centre.
            up.append(np.clip(np.floor((np.arange(n) + 0.5) * sp / s).astype(int), 0, coarse - 1))
            # Each fine voxel's centre in coarse index units, clamped.
            x = np.clip((np.arange(n) + 0.5) * sp / s - 0.5, 0, coarse - 1)
            lo = np.floor(x).astype(int)
            taps.append((lo, np.minimum(lo + 1, coarse - 1), (x - lo).astype(np.float32)))
        coarse_lab = lab[np.ix_(*down)]
        back = {"nearest": coarse_lab[np.ix_(*up)]}
        best = np.full(lab.shape, -1.0, dtype=np.float32)
        linear = np.zeros(lab.shape, dtype=np.int16)
        for k in range(len(vocab)):
            p = linear_back(coarse_lab == k, taps)
            better = p > best
            best[better] = p[better]
            linear[better] = k
        back["linear"] = linear
        for k, name in enumerate(vocab[1:], 1):
            a = lab == k
            if a.any():
                for way, b in back.items():
                    b = b == k
                    scores[way].setdefault(name, []).append(2 * (a & b).sum() / (a.sum() + b.sum()))
    for way, sc in scores.items():
        per = {k: round(float(np.mean(v)), 3) for k, v in sc.items()}
        print(json.dumps({"spacing_mm": s, "back": way, "mean": round(float(np.mean(list(per.values()))), 3),
                          "per_class": per}))
