"""Mean scan intensity under each label of a label map, with nibabel + numpy.

    python structure_means.py SCAN LABELS

Prints one JSON object: {label index: mean of the scan's voxels under it}.
"""
import json
import sys

import nibabel as nib
import numpy as np

scan = np.asarray(nib.load(sys.argv[1]).get_fdata(dtype=np.float64))
labels = np.asarray(nib.load(sys.argv[2]).dataobj).astype(np.int64)
assert scan.shape == labels.shape, (scan.shape, labels.shape)
print(json.dumps({int(l): float(scan[labels == l].mean()) for l in np.unique(labels) if l != 0}))
