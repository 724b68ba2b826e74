#!/usr/bin/env bash
# Whole scan on the CPU: `edge-seg infer` with the shipped default model vs
# the usual Python pipeline (whole_scan.py: nibabel + scipy + onnxruntime
# with Gaussian-blended sliding window) on a phantom of about 300x225x250
# voxels. Reports wall time and peak RSS (/usr/bin/time -v), their ratios,
# and how far the two label maps agree. EDGE_SEG_ARGS adds options to
# `edge-seg infer` (e.g. EDGE_SEG_ARGS=--parallel-tiles). EDGE_SEG_PREVIOUS
# names another edge-seg binary (an earlier build) whose label map is
# compared with this build's, voxel by voxel.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/venv.sh numpy scipy nibabel onnx onnxruntime==1.32.0
cargo build --release --workspace --bins -q
BIN=${CARGO_TARGET_DIR:-target}/release
WORK="${TMPDIR:-/tmp}/edge-seg-bench"
mkdir -p "$WORK"
MODEL="${MODEL:-models/zoo/default.onnx}"
SCAN="$WORK/Dataset990_WholeScan/imagesTr/wholescan_0000_0000.nii.gz"
if [ ! -f "$SCAN" ]; then
    $BIN/edge-seg-train phantoms --out "$WORK" --cases 1 --seed 5 --inplane-mm 1.33 --slice-mm 3.3 \
        --orientations LPS --id 990 --name WholeScan --quiet
fi
$BIN/edge-seg info "$SCAN" | sed -n 's/^shape: */scan: /p'
measure() { # label, command...
    local label=$1; shift
    /usr/bin/time -v "$@" > "$WORK/$label.out" 2> "$WORK/$label.time"
    local wall rss
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$WORK/$label.time" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$WORK/$label.time")
    echo "$label $wall $rss"
}
THREADS="${THREADS:-$(nproc)}"
a=$(measure edge-seg $BIN/edge-seg infer "$SCAN" --model "$MODEL" -o "$WORK/edge-seg.seg.nii.gz" --threads "$THREADS" --quiet ${EDGE_SEG_ARGS:-})
b=$(measure python $PY scripts/bench/whole_scan.py "$MODEL" "$SCAN" "$WORK/python.seg.nii.gz" "$THREADS")
$PY - "$a" "$b" "$WORK" <<'PYEOF'
import sys
import nibabel as nib, numpy as np
a, b, work = sys.argv[1].split(), sys.argv[2].split(), sys.argv[3]
print(f"{'pipeline':<10} {'wall s':>8} {'peak RSS MiB':>13}")
for r in (a, b):
    print(f"{r[0]:<10} {float(r[1]):>8.1f} {int(r[2]) / 1024:>13.0f}")
print(f"ratio edge-seg/python: wall {float(a[1]) / float(b[1]):.2f}, peak RSS {int(a[2]) / int(b[2]):.2f}")
x = np.asarray(nib.load(f"{work}/edge-seg.seg.nii.gz").dataobj)
y = np.asarray(nib.load(f"{work}/python.seg.nii.gz").dataobj)
print(f"label agreement: {100 * (x == y).mean():.2f} % of voxels")
PYEOF
if [ -n "${EDGE_SEG_PREVIOUS:-}" ]; then
    c=$(measure previous "$EDGE_SEG_PREVIOUS" infer "$SCAN" --model "$MODEL" -o "$WORK/previous.seg.nii.gz" --threads "$THREADS" --quiet ${EDGE_SEG_ARGS:-})
    $PY - "$c" "$WORK" <<'PYEOF'
import sys
import nibabel as nib, numpy as np
c, work = sys.argv[1].split(), sys.argv[2]
print(f"previous build: wall {float(c[1]):.1f} s, peak RSS {int(c[2]) / 1024:.0f} MiB")
x = np.asarray(nib.load(f"{work}/edge-seg.seg.nii.gz").dataobj)
z = np.asarray(nib.load(f"{work}/previous.seg.nii.gz").dataobj)
print(f"label agreement with the previous build: {100 * (x == z).mean():.4f} % of voxels ({int((x != z).sum())} differ)")
PYEOF
fi
