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
# commit that folder as runs finish and the same command continues on any machine. On the
# same machine a run that was interrupted continues from its last checkpoint in $WORK.
# Environment: BIN (folder holding edge-seg-train; default: built here), DEVICE (default
# auto: LibTorch on the CPU when the trainer is built with `tch`), THREADS, SIZES, SEEDS.
#
# JOBS=N runs N processes at once (a many-core machine, or one GPU that a single small run
# leaves mostly idle): one job per (task, size, strategy) with missing runs, each with its
# own work folder and its own results folder in JOB_DIR (default $WORK/jobs), started from a
# copy of the committed results so it skips what they hold. Its finished rows are then
# appended to docs/experiments/TASK/results.jsonl (a row whose task, strategy, size and seed
# are already there is left out). A killed job keeps the rows it finished:
#   MERGE_ONLY=1 JOB_DIR=... scripts/transfer_grid.sh   # appends them and redraws the tables.
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
# The experiment's options, shared by the sequential and the parallel grid.
experiment() { # TASK OUT WORK [experiment options...]
    local task=$1 out=$2 wk=$3; shift 3
    "$bin/edge-seg-train" experiment --base "$root/docs/experiments/base" --task "$task" \
        --seeds "${SEEDS:-3}" --test-cases 10 --val-phantoms 2 --out "$out" --work "$wk" \
        --batch 2 --lr 1e-3 --warmup 20 --iterations 3000 --val-every 100 --patience 5 \
        --device "${DEVICE:-auto}" "${threads[@]}" "$@"
}
# Append a job folder's finished rows to the task's committed results.
merge() { # JOB_FOLDER TASK
    local committed=$root/docs/experiments/$2/results.jsonl line key n=0
    [ -s "$1/results.jsonl" ] || return 0
    touch "$committed"
    while IFS= read -r line; do
        key=$(grep -o '^{"task":"[^"]*","strategy":"[^"]*","size":[0-9]*,"seed":[0-9]*,' <<< "$line") || continue
        grep -qF "$key" "$committed" && continue
        printf '%s\n' "$line" >> "$committed"
        n=$((n + 1))
    done < "$1/results.jsonl"
    [ "$n" = 0 ] || echo "$(basename "$1"): $n new rows"
}
if [ "${JOBS:-1}" -gt 1 ] || [ -n "${MERGE_ONLY:-}" ]; then
    jobdir=${JOB_DIR:-$work/jobs}
    mkdir -p "$jobdir"
    if [ -z "${MERGE_ONLY:-}" ]; then
        # Jobs start in the order of SIZES (SIZES=5,2 runs size 5 first).
        list=()
        sizes=${SIZES:-1,2,5,10}
        for size in ${sizes//,/ }; do
            for task in "${tasks[@]}"; do
                for strategy in scratch vanilla finetune; do list+=("$task $size $strategy"); done
            done
        done
        job() { # TASK SIZE STRATEGY
            local name=$1-n$2-$3 committed=$root/docs/experiments/$1/results.jsonl
            mkdir -p "$jobdir/$name"
            [ -e "$jobdir/$name/results.jsonl" ] || { [ -s "$committed" ] && cp "$committed" "$jobdir/$name/"; } || true
            experiment "$1" "$jobdir/$name" "$work/jobs-work/$name" --sizes "$2" --strategies "$3" \
                > "$jobdir/$name/log.txt" 2>&1 || echo "$name: failed (rc $?), see $jobdir/$name/log.txt"
        }
        export -f job experiment
        export bin root work jobdir
        export threads_opt="${threads[*]}"
        printf '%s\n' "${list[@]}" | xargs -P "$JOBS" -L 1 bash -c 'threads=($threads_opt); job "$@"' _
    fi
    for dir in "$jobdir"/*/; do
        [ -d "$dir" ] || continue
        name=$(basename "$dir")
        merge "$dir" "${name%-n*}"
    done
    for task in "${tasks[@]}"; do
        t=$root/docs/experiments/$task
        [ -s "$t/results.jsonl" ] && "$bin/edge-seg-train" experiment-summary "$t" --out "$t"
    done
else
    for task in "${tasks[@]}"; do
        experiment "$task" "$root/docs/experiments/$task" "$work/$task" --sizes "${SIZES:-1,2,5,10}" \
            --strategies scratch,vanilla,finetune
    done
fi
summary=()
for dir in "$root"/docs/experiments/*/; do
    [ -s "$dir/results.jsonl" ] && summary+=("$dir")
done
"$bin/edge-seg-train" experiment-summary "${summary[@]}" --out "$root/docs/experiments"
