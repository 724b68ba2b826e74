#!/usr/bin/env bash
# One GPU session (run from the repository root on a machine with one NVIDIA GPU and a Python
# with torch): the transfer grid's missing runs as parallel jobs on the GPU
# (`JOBS=N scripts/transfer_grid.sh`), and CUDA call counts (kernel launches, synchronisations)
# per training step, burn vs PyTorch, after the training-step benchmark of both (BENCH=1,
# before the grid starts, so that nothing else runs on the GPU). It expects, prepared on a machine with the registries:
#   .gpu/bin/edge-seg-train.gz  the trainer built with `--features tch` against the GPU
#                               machine's torch (LIBTORCH_USE_PYTORCH=1), stripped, gzipped;
#   .gpu/lib/                   libfontconfig and libfreetype with their dependencies, in case
#                               the GPU machine lacks them;
#   .gpu/shim/libcudacount.so   built from scripts/bench/cudacount.c (COUNT=1 only).
# The new rows come back in $OUT/jobs.tgz (refreshed every few seconds, so a run cut short keeps
# what finished); `MERGE_ONLY=1 JOB_DIR=<unpacked jobs> scripts/transfer_grid.sh` adds them.
# Env: OUT, DEADLINE (s from start), JOBS, SIZES, TASKS, BENCH (1/0), COUNT (1/0).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}; DEADLINE=${DEADLINE:-520}; JOBS=${JOBS:-16}; SIZES=${SIZES:-5,2,10}; COUNT=${COUNT:-1}; BENCH=${BENCH:-1}
DEVICE=torch-cuda source scripts/gpu_env.sh
if [ "$BENCH" = 1 ]; then
    # burn (LibTorch CUDA) and PyTorch (CUDA), same spec, patch and batch, one after the other.
    for b in "48 2 20 default" "48 2 20 default-bn" "48 4 20 default" "132 1 5 paper"; do
        set -- $b
        S="--padding same --plan doubling --filters 8 --levels 4"
        case "$4" in paper) S="--spec paper" ;; default-bn) S="$S --norm batch" ;; esac
        say "bench $4 patch $1 batch $2"
        PATCH=$1 BATCH=$2 STEPS=$3 THREADS=4 PY=python3 EDGE_SEG_BIN=$W/bin DEVICE=torch-cuda TORCH_DEVICE=cuda \
            scripts/bench/train_step.sh $S 2>&1 | tee -a "$OUT/bench.txt"
    done
fi
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader -l 5 > "$OUT/smi.csv" 2>/dev/null &
SMI=$!
# The grid, in its own process group so that the deadline stops every job.
rm -rf "$W/jobs"; mkdir -p "$W/jobs"
setsid env BIN=$W/bin DEVICE=torch-cuda THREADS=1 JOBS=$JOBS SIZES=$SIZES WORK=$W/grid JOB_DIR=$W/jobs \
    bash scripts/transfer_grid.sh ${TASKS:-} > "$OUT/grid.log" 2>&1 &
GRID=$!
say "grid started: $JOBS jobs, sizes $SIZES"
if [ "$COUNT" = 1 ]; then
    CUDART=$(find "$SP/nvidia" -name 'libcudart.so.1*' | head -1)
    SHIM="$G/shim/libcudacount.so $CUDART"
    "$BIN" bench --padding same --plan doubling --filters 8 --levels 4 --patch 48 --batch 2 --steps 1 --device torch-cuda --json \
        | python3 -c "import json,sys; json.dump(json.load(sys.stdin)['spec'], open('$W/spec.json','w'))"
    # Per step: (count at 30 − count at 10) / 40 for burn, whose bench runs its timed steps
    # twice (by phase, then whole), and / 20 for PyTorch.
    for s in 10 30; do
        say "counts: burn, $s steps"
        LD_PRELOAD="$SHIM" "$BIN" bench --padding same --plan doubling --filters 8 --levels 4 --patch 48 --batch 2 \
            --steps $s --device torch-cuda --threads 1 --json 2>&1 | tee -a "$OUT/counts.txt"
        say "counts: pytorch, $s steps"
        LD_PRELOAD="$SHIM" python3 scripts/bench/train_step_torch.py "$W/spec.json" 48 2 $s 1 cuda 2>&1 | tee -a "$OUT/counts.txt"
    done
fi
while kill -0 $GRID 2>/dev/null && [ "$(now)" -lt "$DEADLINE" ]; do
    sleep 5
    (cd "$W" && tar czf "$W/jobs.tgz" --exclude='*.png' jobs && mv "$W/jobs.tgz" "$OUT/jobs.tgz")
    [ $(( $(now) % 60 )) -lt 5 ] && say "runs finished: $(cat "$W"/jobs/*/log.txt 2>/dev/null | grep -c '\] .*: Dice')"
done
kill -- -$GRID 2>/dev/null; sleep 2; kill -9 -- -$GRID 2>/dev/null
kill $SMI 2>/dev/null
say "grid stopped"; tail -n 20 "$OUT/grid.log"
(cd "$W" && tar czf "$W/jobs.tgz" --exclude='*.png' jobs && mv "$W/jobs.tgz" "$OUT/jobs.tgz")
grep -h "Dice" "$W"/jobs/*/log.txt | tail -n 80
say "done"
