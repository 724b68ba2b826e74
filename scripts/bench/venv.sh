#!/usr/bin/env bash
# Creates (once) the benchmark venv with the Python peers a comparison needs.
#   source scripts/bench/venv.sh PACKAGES...
# Sets $PY to its interpreter. Lives in ~/.cache/edge-seg/bench-venv.
set -euo pipefail
BENCH_VENV="${EDGE_SEG_BENCH_VENV:-$HOME/.cache/edge-seg/bench-venv}"
if [ ! -x "$BENCH_VENV/bin/python" ]; then
    python3 -m venv "$BENCH_VENV"
    "$BENCH_VENV/bin/pip" install -q --upgrade pip
fi
missing=()
for pkg in "$@"; do
    mod="${pkg%%=*}"
    "$BENCH_VENV/bin/python" -c "import $mod" 2>/dev/null || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    "$BENCH_VENV/bin/pip" install -q "${missing[@]}"
fi
PY="$BENCH_VENV/bin/python"
export PY
