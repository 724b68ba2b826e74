#!/usr/bin/env bash
# The transfer experiment grid of docs/experiments: for each task, sizes 1, 2, 5, 10 ×
# scratch, vanilla, finetune × two seeds, 120 iterations per run, evaluated on 10 held-out
# test phantoms. Resumable: run it again with the same arguments and finished runs are
# skipped. Several copies may run at once on different tasks (e.g. one per core with
# THREADS=1).
#
#   scripts/transfer_grid.sh BASE_CHECKPOINT OUT_DIR [TASK...]
#
# TASK defaults to all four: vertebrae esophagus lung-lobes prostate. Results land in
# OUT_DIR/TASK/ (results.csv, results.md, dice_vs_size.png). BIN selects the folder holding
# edge-seg-train (default: target/release of this checkout, built if missing).
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 BASE_CHECKPOINT OUT_DIR [TASK...]" >&2
    exit 2
fi
base=$1
out=$2
shift 2
tasks=("$@")
[ ${#tasks[@]} -gt 0 ] || tasks=(vertebrae esophagus lung-lobes prostate)
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$root/target/release}
if [ ! -x "$bin/edge-seg-train" ]; then
    (cd "$root" && cargo build --release --workspace)
fi
threads=()
[ -n "${THREADS:-}" ] && threads=(--threads "$THREADS")
for task in "${tasks[@]}"; do
    "$bin/edge-seg-train" experiment --base "$base" --task "$task" \
        --sizes 1,2,5,10 --strategies scratch,vanilla,finetune --seeds 2 --test-cases 10 \
        --out "$out/$task" --padding same --plan doubling --filters 8 --levels 4 --spacing 4 \
        --patch 32 --batch 2 --iterations 120 --warmup 10 --val-every 0 "${threads[@]}"
done
