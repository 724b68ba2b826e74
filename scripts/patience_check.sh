#!/usr/bin/env bash
# Does the grid's stopping rule stop runs too soon? docs/experiments/patience reruns cells of
# the transfer grid (scripts/transfer_grid.sh) with everything the same but the patience:
# 10 validations (1,000 iterations) without improvement instead of 5, still capped at 3,000
# iterations, and compares them with the grid's rows, paired by seed and test case.
#
#   scripts/patience_check.sh [TASK...]
#
# TASK defaults to prostate and esophagus, the tasks whose runs stopped soonest. For each,
# the cells in CELLS (default "1:scratch 1:finetune 5:scratch": scratch at one scan stopped
# at 800–1,000 iterations on both tasks, fine-tuning is the other side of the headline
# comparison, and prostate scratch at five scans seed 1 stopped at 800) run in that order.
# Results land in docs/experiments/patience/TASK/ (results.jsonl and the experiment's
# tables); a run recorded there is skipped, so commit the folder as runs finish and the same
# command continues on any machine. One instance per task may run at once. The comparison
# with the grid is written to docs/experiments/patience/results.md.
# Environment: BIN (folder holding edge-seg-train; default: built here), DEVICE (default
# auto), THREADS, SEEDS (default 3), PATIENCE (default 10), WORK (default
# ~/.cache/edge-seg/patience).
set -euo pipefail
tasks=("$@")
[ ${#tasks[@]} -gt 0 ] || tasks=(prostate esophagus)
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-${CARGO_TARGET_DIR:-$root/target}/release}
if [ ! -x "$bin/edge-seg-train" ]; then
    (cd "$root" && cargo build --release -p edge-seg-trainer)
fi
work=${WORK:-$HOME/.cache/edge-seg/patience}
out=$root/docs/experiments/patience
threads=()
[ -n "${THREADS:-}" ] && threads=(--threads "$THREADS")
for task in "${tasks[@]}"; do
    for cell in ${CELLS:-1:scratch 1:finetune 5:scratch}; do
        IFS=: read -r size strategy <<< "$cell"
        # The grid's command (scripts/transfer_grid.sh) but for --patience.
        "$bin/edge-seg-train" experiment --base "$root/docs/experiments/base" --task "$task" \
            --sizes "$size" --strategies "$strategy" --seeds "${SEEDS:-3}" --test-cases 10 \
            --val-phantoms 2 --out "$out/$task" --work "$work/$task" \
            --batch 2 --lr 1e-3 --warmup 20 --iterations 3000 --val-every 100 \
            --patience "${PATIENCE:-10}" --device "${DEVICE:-auto}" "${threads[@]}"
    done
done
compare=()
for task in prostate esophagus vertebrae lung-lobes; do
    [ -s "$out/$task/results.jsonl" ] && compare+=("$task")
done
if [ ${#compare[@]} -gt 0 ]; then
    tasks_csv=$(IFS=,; echo "${compare[*]}")
    "$bin/edge-seg-train" compare-results "patience 5=$root/docs/experiments" \
        "patience ${PATIENCE:-10}=$out" --tasks "$tasks_csv" --strategies scratch,finetune \
        --out "$out/results.md"
fi
