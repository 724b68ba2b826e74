#!/usr/bin/env bash
# Agreement of edge-seg's Gaussian-blended sliding window with MONAI's
# sliding_window_inference(mode="gaussian", overlap=0.5) on the same ONNX
# model (needs torch and monai: installed in the benchmark venv, never in CI).
#   scripts/compare_monai.sh [MODEL.onnx]   (a same-padded model; default: the shipped one)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench/venv.sh numpy nibabel onnx onnxruntime==1.32.0 torch monai
cargo build --release --workspace --bins -q
WORK="${TMPDIR:-/tmp}/edge-seg-monai"; mkdir -p "$WORK"
MODEL="${1:-models/zoo/default.onnx}"
SPACING=$($PY -c "import json,onnx;m=onnx.load('$MODEL');c=json.loads([p.value for p in m.metadata_props if p.key=='edge_seg.card'][0]);print(c['spacing_mm'][2])")
TILE=$($PY -c "import json,onnx;m=onnx.load('$MODEL');c=json.loads([p.value for p in m.metadata_props if p.key=='edge_seg.card'][0]);print(c['tile']['input'][0])")
# A phantom already at the model spacing, in RAS: preprocessing is the identity.
target/release/edge-seg-train phantoms --out "$WORK" --cases 1 --seed 3 --inplane-mm "$SPACING" --slice-mm "$SPACING" \
    --orientations RAS --id 991 --name Monai --quiet
SCAN="$WORK/Dataset991_Monai/imagesTr/monai_0000_0000.nii.gz"
# Cropped so that both place the same tiles (see compare_monai.py).
$PY scripts/compare_monai.py crop "$MODEL" "$SCAN" "$WORK/scan.nii.gz"
target/release/edge-seg infer "$WORK/scan.nii.gz" --model "$MODEL" --tile "$TILE" -o "$WORK/ours.seg.nii.gz" --quiet
$PY scripts/compare_monai.py compare "$MODEL" "$WORK/scan.nii.gz" "$WORK/ours.seg.nii.gz"
