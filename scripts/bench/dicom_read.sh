#!/usr/bin/env bash
# Reading a CT series (default 300 slices of 512x512, int16, one file per
# slice): `edge-seg info SERIES --json` (find the files, parse, sort, check
# the geometry, decode with rescale into one float volume, min/max/mean) vs
# SimpleITK's ImageSeriesReader (GDCM) and the same statistics with numpy.
# Wall time and peak RSS of each process, best of 3 after one warm-up read
# (page cache warm for both).
#   scripts/bench/dicom_read.sh [SLICES] [SIZE]
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/venv.sh numpy pydicom==3.0.2 SimpleITK==2.5.7
cargo build --release -p edge-seg-runtime --bin edge-seg -q
BIN=${CARGO_TARGET_DIR:-target}/release
slices=${1:-300}
size=${2:-512}
WORK="${TMPDIR:-/tmp}/edge-seg-bench/dicom_${slices}x${size}"
[ -f "$WORK/ct_$(printf %04d $((slices - 1))).dcm" ] || $PY scripts/bench/dicom_read.py make "$WORK" "$slices" "$size"
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; series: $slices x ${size}x${size} int16, $(du -sh "$WORK" | cut -f1)"
measure() { # prints "seconds peak_kib"
    /usr/bin/time -f "%e %M" -o "$WORK/.time" "$@" > "$WORK/.out"
    cat "$WORK/.time"
}
best() { sort -n | head -1; }
measure $BIN/edge-seg info "$WORK" --json > /dev/null
measure $PY scripts/bench/dicom_read.py sitk "$WORK" > /dev/null
ours=$(for i in 1 2 3; do measure $BIN/edge-seg info "$WORK" --json; done | best)
cp "$WORK/.out" "$WORK/ours.json"
peer=$(for i in 1 2 3; do measure $PY scripts/bench/dicom_read.py sitk "$WORK"; done | best)
cp "$WORK/.out" "$WORK/sitk.json"
$PY - "$ours" "$peer" "$WORK/ours.json" "$WORK/sitk.json" <<'PYEOF'
import json, sys
(o_s, o_k), (p_s, p_k) = (map(float, a.split()) for a in sys.argv[1:3])
ours, sitk = json.load(open(sys.argv[3])), json.load(open(sys.argv[4]))
same = ours["shape"] == sitk["shape"] and ours["min"] == sitk["min"] and ours["max"] == sitk["max"] and abs(ours["mean"] - sitk["mean"]) < 1e-6 * abs(sitk["mean"])
print(f"{'reader':<34} {'wall s':>8} {'peak RSS MiB':>13}")
print(f"{'edge-seg info --json':<34} {o_s:8.2f} {o_k / 1024:13.0f}")
print(f"{'SimpleITK ImageSeriesReader':<34} {p_s:8.2f} {p_k / 1024:13.0f}")
print(f"edge-seg / SimpleITK: time {o_s / p_s:.2f}, peak memory {o_k / p_k:.2f}; same shape and statistics: {same}")
PYEOF
