#!/usr/bin/env bash
# Bounded fuzzing of the readers with cargo-fuzz (libFuzzer):
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [RUNS_PER_TARGET]   (defaults 120 and unbounded)
# Each target stops after SECONDS_PER_TARGET or RUNS_PER_TARGET executions,
# whichever comes first, and prints its execution count.
# Targets: nifti (header + data, plain and gzip), dicom (a series file:
# headers, layout, every codec), card, manifest, onnx, rewrites (the tract
# backend's graph rewrites on any ONNX graph). TARGETS selects some.
# Seeds come from tests/corpus/bad/ plus valid files. cargo-fuzz needs nightly
# flags; RUSTC_BOOTSTRAP=1 enables them on the stable toolchain. Crashes land
# in fuzz/artifacts/TARGET/; each becomes a regression file under
# fuzz/regressions/TARGET/ (checked by tests/tests/fuzz_regressions.rs), next
# to a sample of small mutated inputs from the corpus of a run.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${1:-120}"
RUNS_PER_TARGET="${2:--1}"
TARGETS="${TARGETS:-nifti dicom card manifest onnx rewrites}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/edge-seg/fuzz-target}"
SEEDS=fuzz/corpus
mkdir -p "$SEEDS"/{nifti,dicom,card,manifest,onnx,rewrites}
cp tests/corpus/dicom/*.dcm "$SEEDS/dicom/"
cp tests/corpus/bad/scan-* tests/corpus/bad/support-*.nii.gz "$SEEDS/nifti/"
cp models/zoo/sample_ct.labels.nii.gz "$SEEDS/nifti/"
cp tests/corpus/bad/card-* "$SEEDS/card/"
cp tests/corpus/bad/manifest-* "$SEEDS/manifest/"
cp tests/corpus/bad/model-* tests/corpus/bad/support-model-nocard.onnx "$SEEDS/onnx/"
[ -f models/zoo/default.onnx ] && cp models/zoo/default.onnx "$SEEDS/onnx/"
cp fuzz/regressions/rewrites/seed-*.onnx "$SEEDS/rewrites/"
cd fuzz
cargo fuzz build -O --sanitizer none
for t in $TARGETS; do
    echo "== $t: ${SECONDS_PER_TARGET}s"
    cargo fuzz run -O --sanitizer none "$t" "corpus/$t" -- -max_total_time="$SECONDS_PER_TARGET" -runs="$RUNS_PER_TARGET" -rss_limit_mb=4096 \
        -max_len=1048576 2>&1 | grep -E '^#[0-9]+ +DONE|stat::number_of_executed_units|Done [0-9]+ runs|crash|panicked|ERROR' || true
done
