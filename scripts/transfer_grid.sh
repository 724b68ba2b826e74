#!/usr/bin/env bash
# The transfer experiment grid of docs/experiments, from its base model (docs/experiments/base:
# the default model shipped until 2026-12-04, 8 filters at 6 mm; every row records its
# weights' hash, and the grid refuses to mix bases): for each
# task, sizes 1, 2, 5, 10 × scratch, vanilla, finetune × three seeds, each run trained until
# its validation Dice (2 validation phantoms) stops improving for 5 validations 100
# iterations apart (counted from the first validation above Dice 0), capped at 3,000
# iterations, and evaluated on the task's 10 held-out test phantoms.
#
#   scripts/transfer_grid.sh [TASK...]
#
# TASK defaults to all four: vertebrae esophagus lung-lobes prostate. Results land in
# docs/experiments/TASK/ (results.jsonl, results.csv, results.md, dice_vs_size.png,
# learning_curves.png), and the summary over every task with results in docs/experiments/
# (the same but results.jsonl); the runs' data and checkpoints in $WORK/TASK (default
# ~/.cache/edge-seg/grid). The grid
# resumes from the committed results: every run recorded in results.jsonl is skipped, so
# commit that folder as runs finish and the same command continues on any machine.
# Environment: BIN (folder holding edge-seg-train; default: built here), DEVICE (default
# auto: LibTorch on the CPU when the trainer is built with `tch`), THREADS, SIZES, SEEDS.
set -euo pipefail
tasks=("$@")
[ ${#tasks[@]} -gt 0 ] || tasks=(vertebrae esophagus lung-lobes prostate)
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-${CARGO_TARGET_DIR:-$root/target}/release}
if [ ! -x "$bin/edge-seg-train" ]; then
    (cd "$root" && cargo build --release -p edge-seg-trainer)
fi
work=${WORK:-$HOME/.cache/edge-seg/grid}
threads=()
[ -n "${THREADS:-}" ] && threads=(--threads "$THREADS")
for task in "${tasks[@]}"; do
    "$bin/edge-seg-train" experiment --base "$root/docs/experiments/base" --task "$task" \
        --sizes "${SIZES:-1,2,5,10}" --strategies scratch,vanilla,finetune --seeds "${SEEDS:-3}" \
        --test-cases 10 --val-phantoms 2 --out "$root/docs/experiments/$task" --work "$work/$task" \
        --batch 2 --lr 1e-3 --warmup 20 --iterations 3000 --val-every 100 --patience 5 \
        --device "${DEVICE:-auto}" "${threads[@]}"
done
summary=()
for dir in "$root"/docs/experiments/*/; do
    [ -s "$dir/results.jsonl" ] && summary+=("$dir")
done
"$bin/edge-seg-train" experiment-summary "${summary[@]}" --out "$root/docs/experiments"
