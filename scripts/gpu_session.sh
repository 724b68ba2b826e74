#!/usr/bin/env bash
# One short session on a GPU machine that has PyTorch but no Rust toolchain and no network:
# the training-step benchmark (burn through LibTorch CUDA vs PyTorch CUDA, both specs, in
# one run, with each process's peak device memory from nvidia-smi), then the phantom data
# set of docs/base-training.md and base-model candidates A-D trained side by side through
# burn's LibTorch CUDA backend, each given the iterations that a 30-iteration probe says fit
# before DEADLINE. Results (logs, metrics, best checkpoints; the paper network's weights
# in float16 halves) land in $OUT.
#
#   OUT=DIR scripts/gpu_session.sh            (run from the repository root)
#
# Expects .gpu/bin/edge-seg-train.gz: the trainer built here with `--features tch` against
# the LibTorch of the target's PyTorch (same version: LIBTORCH_USE_PYTORCH=1,
# LIBTORCH_BYPASS_VERSION_CHECK=1 with that torch in the build venv), stripped and gzipped;
# and .gpu/lib: libfontconfig, libfreetype and their dependencies, used where the target
# lacks them. Env: DEADLINE (seconds from start, 540), DEV (torch-cuda), TDEV (cuda),
# CASES/VAL/TEST (60/4/10), CONFIGS (A B C D), BENCH (1), BSTEPS/PSTEPS (timed steps, 20/5),
# PROBE (30). On a machine without CUDA: DEV=torch TDEV=cpu (a dry run). Set-up: scripts/gpu_env.sh.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}; DEADLINE=${DEADLINE:-540}; DEV=${DEV:-torch-cuda}; TDEV=${TDEV:-cuda}
CASES=${CASES:-60}; VAL=${VAL:-4}; TEST=${TEST:-10}; CONFIGS=${CONFIGS:-A B C D}; BENCH=${BENCH:-1}
BSTEPS=${BSTEPS:-20}; PSTEPS=${PSTEPS:-5}; PROBE=${PROBE:-30}; NCPU=$(nproc)
DEVICE=$DEV source scripts/gpu_env.sh

# Phantoms on most cores while the benchmark has four to itself.
PH="taskset -c 4-$((NCPU - 1))"; [ "$NCPU" -le 4 ] && PH=""
( $PH "$BIN" phantoms --out "$W/data" --cases "$CASES" --sparse --val "$VAL" --test "$TEST" \
    --inplane-mm 1.2-1.8 --slice-mm 2-5 --id 901 --name PhantomSparse > "$W/phantoms.log" 2>&1; echo "rc=$?" >> "$W/phantoms.log" ) &
PHPID=$!
if [ "$BENCH" = 1 ]; then
    BS="taskset -c 0-3"; [ "$NCPU" -le 4 ] && BS=""
    nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv,noheader -lms 100 > "$W/smi-bench.csv" 2>/dev/null &
    SMI=$!
    for b in "48 2 $BSTEPS default" "48 4 $BSTEPS default" "132 1 $PSTEPS paper"; do
        set -- $b
        if [ "$4" = paper ]; then S="--spec paper"; else S="--padding same --plan doubling --filters 8 --levels 4"; fi
        say "bench $4 patch $1 batch $2"
        PATCH=$1 BATCH=$2 STEPS=$3 THREADS=4 PY=python3 EDGE_SEG_BIN=$W/bin DEVICE=$DEV TORCH_DEVICE=$TDEV \
            $BS scripts/bench/train_step.sh $S 2>&1 | tee -a "$W/bench.txt"
    done
    kill $SMI 2>/dev/null
    python3 - "$W/smi-bench.csv" <<'EOF' | tee -a "$W/bench.txt"
import sys, collections
peak = collections.defaultdict(float)
for line in open(sys.argv[1]):
    p = [x.strip() for x in line.split(",")]
    if len(p) == 3 and p[2].endswith("MiB"):
        peak[(p[0], p[1].split("/")[-1])] = max(peak[(p[0], p[1].split("/")[-1])], float(p[2].split()[0]))
for (pid, name), mib in sorted(peak.items(), key=lambda kv: int(kv[0][0])):
    print(f"device memory peak (nvidia-smi): pid {pid} {name}: {mib:.0f} MiB")
EOF
fi
wait $PHPID; tail -n 3 "$W/phantoms.log"; say "phantoms done"
M="$W/data/Dataset901_PhantomSparse/manifest.json"
[ -f "$M" ] || { say "no manifest"; exit 4; }
(cd "$W/data/Dataset901_PhantomSparse" && find . -type f | sort | xargs sha256sum) > "$OUT/dataset.sha256"

R="--manifest $M --val-cases 2 --complete-patches 0.75 --window=-1000,400 --dice-present-only --norm batch
   --weight-init he --warmup 50 --seed 21 --loss marginal --class-balance 0.75 --device $DEV --threads 3"
declare -A NET LR
NET[A]="--padding same --plan doubling --filters 16 --levels 4 --spacing 6 --patch 48 --batch 2"; LR[A]=2e-3
NET[B]="--padding same --plan doubling --filters 8 --levels 4 --spacing 4 --patch 64 --batch 2"; LR[B]=2e-3
NET[C]="--padding same --plan doubling --filters 16 --levels 4 --spacing 4 --patch 64 --batch 2"; LR[C]=2e-3
NET[D]="--spec paper --spacing 6 --patch 132 --batch 1"; LR[D]=1e-3
say "probes: $CONFIGS"
for c in $CONFIGS; do
    "$BIN" base $R ${NET[$c]} --lr ${LR[$c]} --cache "$W/cache-$c" --iterations 100000 --val-every 0 \
        --stop-after $PROBE --quiet --out "$W/probe-$c" > "$W/probe-$c.log" 2>&1 &
done
wait; say "probes done"
declare -A ITS
left=$(( DEADLINE - $(now) - 25 ))
for c in $CONFIGS; do
    rate=$(python3 - "$W/probe-$c/metrics.jsonl" $PROBE <<'EOF'
import json, sys
n = int(sys.argv[2]); a = n // 3
s = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if "loss" in r: s[r["iteration"]] = r["seconds"]
print(f"{(s[n] - s[a]) / (n - a):.4f}" if n in s and a in s else "")
EOF
)
    [ -n "$rate" ] || { say "probe $c failed"; tail -n 5 "$W/probe-$c.log"; continue; }
    # Ten validations take roughly 12 % of the budget.
    its=$(python3 -c "n = int($left * 0.85 / $rate); print(max(20, n // 100 * 100 if n >= 1000 else n // 10 * 10))")
    ITS[$c]=$its; say "config $c: $rate s/it in the probe -> $its iterations in $left s"
done
for c in "${!ITS[@]}"; do
    its=${ITS[$c]}; ve=$(( its / 10 / 50 * 50 )); [ $ve -lt 50 ] && ve=$its
    timeout $(( left + 10 )) "$BIN" base $R ${NET[$c]} --lr ${LR[$c]} --cache "$W/cache-$c" --iterations $its \
        --val-every $ve --quiet --out "$W/run-$c" > "$W/run-$c.log" 2>&1 &
done
wait; say "training done"
for c in "${!ITS[@]}"; do
    echo "== $c: ${NET[$c]} lr ${LR[$c]} iterations ${ITS[$c]}"; tail -n 2 "$W/run-$c.log"
    grep val_dice "$W/run-$c/metrics.jsonl" | python3 -c 'import json,sys; print(" ".join("%d:%.3f@%.0fs" % (r["iteration"], r["val_dice"], r["seconds"]) for r in map(json.loads, sys.stdin)))'
done
# Back: checkpoints (f32; the paper net in f16 halves), metrics, logs.
cd "$W" && { [ -f run-D/best/model.card.json ] && cp run-D/best/model.card.json d.card.json; }
tar czf "$OUT/results.tgz" bench.txt phantoms.log probe-*.log run-*.log run-*/metrics.jsonl d.card.json \
    $([ -f run-B/best/model.safetensors ] && echo run-B/best) 2>/dev/null
for c in A C; do [ -f run-$c/best/model.safetensors ] && tar czf "$OUT/$c.tgz" run-$c/best; done
ls -la "$OUT"
if [ -f run-D/best/model.safetensors ]; then
    python3 -c 'import sys; from safetensors.torch import load_file, save_file; t = load_file(sys.argv[1]); save_file({k: v.half() if v.is_floating_point() else v for k, v in t.items()}, sys.argv[2])' run-D/best/model.safetensors "$W/d16.safetensors" \
        && split -b 15M -d "$W/d16.safetensors" "$OUT/d16.part"
fi
ls -la "$OUT"; say "end"
