#!/usr/bin/env bash
# Tile throughput: the wgpu backend vs tract on the same machine, same
# model and tile (the paper spec with random weights, 23 classes, and the
# shipped default model at its card's tile).
#   scripts/bench/wgpu_tiles.sh [MODEL.onnx TILE]...
# Environment: PAPER_TILE (default 132; lavapipe needs minutes per 132³
# tile, so on a machine without a GPU use e.g. 92), TILES (timed tiles, 3).
# On a machine without a GPU, wgpu runs on Mesa's lavapipe (the CPU).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${EDGE_SEG_BIN:-${CARGO_TARGET_DIR:-target}/release}
[ -n "${EDGE_SEG_BIN:-}" ] || cargo build --release --workspace --bins -q
WORK="${TMPDIR:-/tmp}/edge-seg-bench"
mkdir -p "$WORK"
models=("$@")
if [ "${#models[@]}" -eq 0 ]; then
    [ -f "$WORK/paper23.onnx" ] || $BIN/edge-seg-train random-model --spec paper --classes 23 --tile 132 --out "$WORK/paper23.onnx"
    models=("$WORK/paper23.onnx" "${PAPER_TILE:-132}")
    if [ -f models/zoo/default.onnx ]; then models+=(default 0); fi
fi
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
printf '%-14s %6s %-52s %9s %9s %9s\n' model tile backend s/tile tiles/s GFLOP/s
i=0
while [ $i -lt ${#models[@]} ]; do
    m=${models[$i]}; tile=${models[$((i+1))]}; i=$((i+2))
    targs=(); [ "$tile" != 0 ] && targs=(--tile "$tile")
    tract=$($BIN/edge-seg bench --model "$m" "${targs[@]}" --backend tract --tiles "${TILES:-3}" --json)
    gpu=$($BIN/edge-seg bench --model "$m" "${targs[@]}" --backend wgpu --tiles "${TILES:-3}" --json 2>/dev/null)
    python3 - "$m" "$tract" "$gpu" <<'PYEOF'
import json, os, sys
m, runs = os.path.basename(sys.argv[1]), [json.loads(a) for a in sys.argv[2:]]
for r in runs:
    s = r["seconds_per_tile"]
    print(f"{m:<14} {r['tile'][0]:>6} {r['backend'][:52]:<52} {s:>9.3f} {1/s:>9.3f} {r['gflop_per_tile']/s:>9.1f}")
print(f"{m:<14} wgpu/tract throughput ratio: {runs[0]['seconds_per_tile']/runs[1]['seconds_per_tile']:.2f}")
PYEOF
done
