#!/usr/bin/env bash
# Does the grid's stopping rule stop runs too soon? docs/experiments/patience reruns cells of
# the transfer grid (scripts/transfer_grid.sh) with everything the same but the patience:
# 10 validations (1,000 iterations) without improvement instead of 5, still capped at 3,000
# iterations. Each cell's rows are compared with the grid's, seed by seed.
#
#   scripts/patience_check.sh [TASK:STRATEGY:SIZE...]
#
# Cells default to the ones whose runs stopped soonest, scratch at one scan on esophagus and
# prostate and prostate scratch at five, then fine-tuning at one scan on the same two tasks
# (the other side of the headline comparison). Results land in
# docs/experiments/patience/TASK-STRATEGY-SIZE/ (results.jsonl and the experiment's tables);
# a run recorded there is skipped, so commit the folder as runs finish and the same command
# continues on any machine. Two instances may run at once on different cells.
# Environment: BIN (folder holding edge-seg-train; default: built here), DEVICE (default
# auto), THREADS, SEEDS (default 3), PATIENCE (default 10), WORK (default
# ~/.cache/edge-seg/patience).
set -euo pipefail
cells=("$@")
[ ${#cells[@]} -gt 0 ] || cells=(prostate:scratch:1 esophagus:scratch:1 prostate:scratch:5
    prostate:finetune:1 esophagus:finetune:1)
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-${CARGO_TARGET_DIR:-$root/target}/release}
if [ ! -x "$bin/edge-seg-train" ]; then
    (cd "$root" && cargo build --release -p edge-seg-trainer)
fi
work=${WORK:-$HOME/.cache/edge-seg/patience}
threads=()
[ -n "${THREADS:-}" ] && threads=(--threads "$THREADS")
for cell in "${cells[@]}"; do
    IFS=: read -r task strategy size <<< "$cell"
    if [ -z "$size" ]; then
        echo "cell $cell: expected TASK:STRATEGY:SIZE, e.g. prostate:scratch:1" >&2
        exit 2
    fi
    name=$task-$strategy-$size
    # The grid's command (scripts/transfer_grid.sh) but for --patience.
    "$bin/edge-seg-train" experiment --base "$root/docs/experiments/base" --task "$task" \
        --sizes "$size" --strategies "$strategy" --seeds "${SEEDS:-3}" --test-cases 10 \
        --val-phantoms 2 --out "$root/docs/experiments/patience/$name" --work "$work/$name" \
        --batch 2 --lr 1e-3 --warmup 20 --iterations 3000 --val-every 100 \
        --patience "${PATIENCE:-10}" --device "${DEVICE:-auto}" "${threads[@]}"
done
