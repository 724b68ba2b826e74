#!/usr/bin/env bash
# Two open questions of the transfer experiment (docs/experiments/base-questions):
#   labelled  does sparse annotation cost transfer? A base trained on the shipped base's own
#             phantoms (the same images, sources and fields of view) with every structure
#             labelled in every case, against the shipped base, which saw only each source's.
#   five      does a base trained on fewer structures transfer worse? The same completely
#             labelled phantoms with only liver, spleen, kidneys, stomach and aorta labelled
#             (5 of 13; the rest is background), against `labelled`.
# Each base is trained with the shipped base's two-stage recipe (docs/base-training.md),
# scored on the 10 held-out test phantoms, then transferred (vanilla and fine-tune) to
# esophagus and prostate at 1 and 2 training scans, 3 seeds, with the grid's protocol
# (scripts/transfer_grid.sh). The shipped base's rows for the same cells, and scratch, are
# in docs/experiments/TASK.
#
#   scripts/base_questions.sh [BASE...]      BASE: labelled, five (default: both)
#
# Resumes from what is committed: a base's best checkpoint and card (1.5 MB; every task row
# depends on these exact weights) are kept in docs/experiments/base-questions/bases/BASE and
# the base is trained only when that folder is absent; transfer runs already recorded in
# docs/experiments/base-questions/BASE/TASK/results.jsonl are skipped. The comparison with the
# shipped base's rows is written to docs/experiments/base-questions/results.md
# (`edge-seg-train compare-results`).
# Environment: BIN (folder holding edge-seg-train and edge-seg; default: built here), SIZES
# (default "1 2"), SEEDS (default 3), DEVICE (default auto), THREADS (default 2), WORK (default
# ~/.cache/edge-seg/base-questions), PYTHON (with nibabel, for the held-out score; default the
# test venv's).
set -euo pipefail
bases=("$@")
[ ${#bases[@]} -gt 0 ] || bases=(labelled five)
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-${CARGO_TARGET_DIR:-$root/target}/release}
if [ ! -x "$bin/edge-seg-train" ] || [ ! -x "$bin/edge-seg" ]; then
    (cd "$root" && cargo build --release -p edge-seg-trainer -p edge-seg-runtime)
fi
work=${WORK:-$HOME/.cache/edge-seg/base-questions}
python=${PYTHON:-$HOME/.cache/edge-seg/venv/bin/python}
threads=${THREADS:-2}
device=${DEVICE:-auto}
out=$root/docs/experiments/base-questions
train=$bin/edge-seg-train

# The shipped base's recipe (docs/base-training.md), stage 1 and stage 2.
recipe() {
    echo --padding same --plan doubling --filters 8 --spacing 6 --patch 48 --batch 2 \
        --val-cases 2 --complete-patches 0.75 --window=-1000,400 --dice-present-only --norm batch \
        --weight-init he --loss marginal --class-balance 0.75 --val-every 400 \
        --device "$device" --threads "$threads"
}

train_base() {
    local base=$1 data=$work/$1/data
    local flags=(--sparse --label-all --name "PhantomSparseLabelled")
    [ "$base" = five ] && flags=(--sparse --label-all --structures liver,spleen,kidneys,stomach,aorta
        --name "PhantomSparseLabelled5")
    [ -f "$data/done" ] || {
        rm -rf "$data"
        "$train" phantoms --out "$data" --cases 60 --val 4 --test 10 --inplane-mm 1.2-1.8 \
            --slice-mm 2-5 --id 901 --quiet "${flags[@]}"
        touch "$data/done"
    }
    local manifest
    manifest=$(ls "$data"/Dataset901_*/manifest.json)
    # An interrupted stage continues from its last checkpoint (on the same machine).
    resume() { [ -d "$1" ] && echo --resume || true; }
    [ -f "$work/$base/stage1/done" ] || {
        "$train" base --manifest "$manifest" $(recipe) --lr 2e-3 --warmup 50 --seed 11 \
            --iterations 4400 --out "$work/$base/stage1" $(resume "$work/$base/stage1")
        touch "$work/$base/stage1/done"
    }
    [ -f "$work/$base/stage2/done" ] || {
        "$train" base --manifest "$manifest" $(recipe) --lr 1e-3 --warmup 20 --seed 12 \
            --init "$work/$base/stage1/best" --iterations 3200 --out "$work/$base/stage2" \
            $(resume "$work/$base/stage2")
        touch "$work/$base/stage2/done"
    }
    "$train" export --checkpoint "$work/$base/stage2/best" --out "$work/$base/base.onnx" --synthetic
    "$python" "$root/scripts/eval/heldout_dice.py" "$manifest" "$work/$base/base.onnx" 10 "$bin/edge-seg" \
        > "$work/$base/heldout.json"
    mkdir -p "$out/bases"
    rm -rf "$out/bases/$base.tmp"
    mkdir "$out/bases/$base.tmp"
    cp "$work/$base/stage2/best/model.card.json" "$work/$base/stage2/best/model.safetensors" \
        "$out/bases/$base.tmp/"
    sed "s#\"$work/$base/base.onnx\"#\"$base base (exported)\"#" "$work/$base/heldout.json" > "$out/bases/$base.tmp/heldout.json"
    for s in stage1 stage2; do
        grep '"val_dice"' "$work/$base/$s/metrics.jsonl" > "$out/bases/$base.tmp/$s.validation.jsonl"
        cp "$work/$base/$s/learning_curve.png" "$out/bases/$base.tmp/$s.learning_curve.png"
    done
    mv "$out/bases/$base.tmp" "$out/bases/$base"
}

for base in "${bases[@]}"; do
    case $base in labelled | five) ;; *) echo "unknown base $base: choose labelled or five" >&2; exit 2 ;; esac
    [ -d "$out/bases/$base" ] || train_base "$base"
done
# Fine-tuning (the paper's strategy) first, the smaller size first: each step is a complete
# cell of the comparison.
for size in ${SIZES:-1 2}; do
    for strategy in finetune vanilla; do
        for base in "${bases[@]}"; do
            for task in esophagus prostate; do
                "$train" experiment --base "$out/bases/$base" --task "$task" \
                    --sizes "$size" --strategies "$strategy" --seeds "${SEEDS:-3}" \
                    --test-cases 10 --val-phantoms 2 --out "$out/$base/$task" --work "$work/$base/$task" \
                    --batch 2 --lr 1e-3 --warmup 20 --iterations 3000 --val-every 100 --patience 5 \
                    --device "$device" --threads "$threads"
            done
        done
    done
done
compare=("shipped=$root/docs/experiments")
for base in labelled five; do
    [ -d "$out/$base" ] && compare+=("$base=$out/$base")
done
if [ ${#compare[@]} -ge 2 ]; then
    "$train" compare-results "${compare[@]}" --tasks esophagus,prostate --out "$out/results.md"
fi
