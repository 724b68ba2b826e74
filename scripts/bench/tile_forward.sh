#!/usr/bin/env bash
# Tile forward on the CPU: edge-seg (tract) vs onnxruntime on the same ONNX
# model and tile, 1 and 2 threads, with GFLOP/s (the network's multiply-adds
# as exported, so tract's are effective rates) and, for reference, the rate
# of numpy's OpenBLAS sgemm on this CPU.
#   scripts/bench/tile_forward.sh [MODEL.onnx TILE]...
# Default: the paper spec (random weights, 23 classes, 132³) and the shipped
# default model at its card's tile. tract runs each model three times: as
# edge-seg runs it (decoder upsampling rewritten, 3×3×3 convolutions on
# edge-seg's kernel where the CPU has AVX-512), with `--tract-convs` (every
# convolution on tract's kernels) and with `--exported-graph --tract-convs`
# (the graph as exported, all in tract), to show what each change gains.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/venv.sh numpy onnxruntime==1.32.0
cargo build --release --workspace --bins -q
BIN=${CARGO_TARGET_DIR:-target}/release
WORK="${TMPDIR:-/tmp}/edge-seg-bench"
mkdir -p "$WORK"
models=("$@")
if [ "${#models[@]}" -eq 0 ]; then
    [ -f "$WORK/paper23.onnx" ] || $BIN/edge-seg-train random-model --spec paper --classes 23 --tile 132 --out "$WORK/paper23.onnx"
    models=("$WORK/paper23.onnx" 132)
    if [ -f models/zoo/default.onnx ]; then
        # The card's tile, read with onnxruntime (the venv has no `onnx`).
        tile=$($PY -c "import json,onnxruntime as ort;s=ort.InferenceSession('models/zoo/default.onnx');c=json.loads(s.get_modelmeta().custom_metadata_map['edge_seg.card']);print(c['tile']['input'][0])")
        models+=(models/zoo/default.onnx "$tile")
    fi
fi
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
for t in 1 2; do
    echo "peak (OpenBLAS sgemm, $t threads): $($PY scripts/bench/peak_gemm.py $t)"
done
printf '\n%-14s %5s %7s %9s %12s %12s %9s %10s %9s %9s %10s %10s\n' model tile threads tract_s tract_convs_s exported_s ort_s tract_GF/s ort_GF/s tract/ort tr_convs/ort exp/ort
i=0
while [ $i -lt ${#models[@]} ]; do
    m=${models[$i]}; tile=${models[$((i+1))]}; i=$((i+2))
    for t in 1 2; do
            tr=$($BIN/edge-seg bench --model "$m" --tile "$tile" --threads $t --tiles 3 --json)
        tc=$($BIN/edge-seg bench --model "$m" --tile "$tile" --threads $t --tiles 3 --json --tract-convs)
        ex=$($BIN/edge-seg bench --model "$m" --tile "$tile" --threads $t --tiles 3 --json --exported-graph --tract-convs)
        ort=$($PY scripts/bench/ort_tile.py "$m" "$tile" $t 3)
        $PY - "$m" "$tile" "$t" "$tr" "$tc" "$ex" "$ort" <<'PYEOF'
import json, os, sys
m, tile, t = sys.argv[1], sys.argv[2], sys.argv[3]
tr, tc, ex, ort = (json.loads(a) for a in sys.argv[4:8])
gf = tr["gflop_per_tile"]
ts, cs, xs, os_ = tr["seconds_per_tile"], tc["seconds_per_tile"], ex["seconds_per_tile"], ort["seconds_per_tile"]
print(f"{os.path.basename(m):<14} {tile:>5} {t:>7} {ts:>9.3f} {cs:>12.3f} {xs:>12.3f} {os_:>9.3f} {gf/ts:>10.1f} {gf/os_:>9.1f} {ts/os_:>9.2f} {cs/os_:>10.2f} {xs/os_:>10.2f}")
PYEOF
    done
done
