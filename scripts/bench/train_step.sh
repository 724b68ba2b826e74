#!/usr/bin/env bash
# Training step: burn (`edge-seg-train bench`) vs PyTorch on the same spec,
# patch and batch (forward + backward + Adam): seconds per step, output
# voxels/s, and the ratio burn/PyTorch.
#   scripts/bench/train_step.sh [--padding same --plan doubling ...] (spec options of edge-seg-train bench)
# Environment: PATCH (default 48), BATCH (2), STEPS (3), THREADS (all cores);
# DEVICE: burn's device (cpu = Flex; torch = LibTorch on the CPU, built here
# with `--features tch` against the benchmark venv's torch; torch-cuda, wgpu,
# cuda), TORCH_DEVICE: PyTorch's (cpu, or cuda; default cpu for DEVICE cpu or
# torch, else cuda); EDGE_SEG_BIN: a folder with a built edge-seg-train (skips the
# build; relative to the repository root), PY: a Python with torch (skips
# the benchmark venv). Without CUDA, DEVICE=wgpu (Mesa's lavapipe) needs
# TORCH_DEVICE=cpu. PyTorch's CUDA convolutions use TF32 by default.
set -euo pipefail
cd "$(dirname "$0")/../.."
DEVICE="${DEVICE:-cpu}"
case "$DEVICE" in cpu|torch) TORCH_DEVICE="${TORCH_DEVICE:-cpu}" ;; *) TORCH_DEVICE="${TORCH_DEVICE:-cuda}" ;; esac
[ -n "${PY:-}" ] || source scripts/bench/venv.sh numpy torch==2.9.0
BIN="${EDGE_SEG_BIN:-${CARGO_TARGET_DIR:-target}/release}"
if [ -z "${EDGE_SEG_BIN:-}" ]; then
    case "$DEVICE" in
        torch*) VIRTUAL_ENV="$(dirname "$(dirname "$PY")")" PATH="$(dirname "$PY"):$PATH" LIBTORCH_USE_PYTORCH=1 \
                    cargo build --release -p edge-seg-trainer --features tch -q ;;
        wgpu*) cargo build --release -p edge-seg-trainer --features wgpu -q ;;
        cuda*) cargo build --release -p edge-seg-trainer --features cuda -q ;;
        *) cargo build --release -p edge-seg-trainer -q ;;
    esac
fi
PATCH="${PATCH:-48}"; BATCH="${BATCH:-2}"; STEPS="${STEPS:-3}"; THREADS="${THREADS:-$(nproc)}"
WORK="${TMPDIR:-/tmp}/edge-seg-bench"; mkdir -p "$WORK"
burn=$("$BIN/edge-seg-train" bench "$@" --patch "$PATCH" --batch "$BATCH" --steps "$STEPS" --threads "$THREADS" --device "$DEVICE" --json)
echo "$burn" | $PY -c "import json,sys; json.dump(json.load(sys.stdin)['spec'], open('$WORK/spec.json','w'))"
torch=$($PY scripts/bench/train_step_torch.py "$WORK/spec.json" "$PATCH" "$BATCH" "$STEPS" "$THREADS" "$TORCH_DEVICE")
$PY - "$burn" "$torch" <<'PYEOF'
import json, sys
b, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
s = b["spec"]
print(f"spec: {s['levels']} levels, {s['base_filters']} filters, {s['channel_plan']}, {s['padding']}; patch {b['patch']}, batch {b['batch']}")
print(f"{'':<10} {'s/step':>8} {'out vox/s':>12} {'peak RSS MiB':>13}")
print(f"{'burn':<10} {b['seconds_per_step']:>8.3f} {b['output_voxels_per_second']:>12.0f} {b['peak_rss_mib']:>13.0f}  ({b['device']})")
print(f"{'pytorch':<10} {t['seconds_per_step']:>8.3f} {t['output_voxels_per_second']:>12.0f} {t['peak_rss_mib']:>13.0f}  (torch {t['torch']}, {t['device']}, {t['threads']} threads)")
if t.get("peak_device_mib"):
    print(f"pytorch peak device memory: {t['peak_device_mib']:.0f} MiB")
print(f"ratio burn/pytorch (time per step): {b['seconds_per_step'] / t['seconds_per_step']:.2f}")
PYEOF
