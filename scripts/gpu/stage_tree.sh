#!/usr/bin/env bash
# Prepare what the GPU host needs from this working tree, inside the checkout the device tool sends
# (DEVICE_ROOT, which may be another checkout than this one), in folders its .git/info/exclude
# ignores, so each device call carries them by name:
#
#   DEVICE_ROOT/.gpu/       qvdoctor/ + checks/ (a copy of this tree), scripts/gpu/, model/ (the published
#                           Qwen2.5-VL-7B config with the tiny tokenizer, scripts/gpu/make_model_dir.py)
#   DEVICE_ROOT/.gpuwhl/    extra wheels for smoke / vllm serve on the host (PyAV, uvicorn, ...),
#                           listed in scripts/gpu/extra-wheels.txt
#   DEVICE_ROOT/.chunks/    vLLM 0.26.0 (pruned) + its small wheels, by ../shared/gpu-vllm/prepare.sh
#
# Usage: bash scripts/gpu/stage_tree.sh DEVICE_ROOT [SHARED_GPU_VLLM_DIR]
# Then (device tool, calls back to back):
#   1. carry [".chunks/p1"]          bash .chunks/p1/stage.sh
#   2. carry [".chunks/p2", ".gpu"]  bash .gpu/scripts/gpu/device_run.sh install eager
#   3. carry [".gpu"]                bash .gpu/scripts/gpu/device_run.sh graphs
set -euo pipefail
[[ $# -ge 1 ]] || { sed -n '2,17p' "$0"; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
DEV=$(cd "$1" && pwd)
SHARED=${2:-$SRC/../shared/gpu-vllm}
[[ -d $SHARED ]] || SHARED=/work/shared/gpu-vllm
mkdir -p "$DEV/.git/info"
for p in /.gpu/ /.gpuwhl/ /.chunks/ /.whl/; do
  grep -qxF "$p" "$DEV/.git/info/exclude" 2>/dev/null || echo "$p" >> "$DEV/.git/info/exclude"
done
rm -rf "$DEV/.gpu" && mkdir -p "$DEV/.gpu/scripts"
( cd "$SRC" && tar --exclude=__pycache__ -cf - qvdoctor checks scripts/gpu ) | tar -xf - -C "$DEV/.gpu"
PY=${PYTHON:-$SRC/.venv/bin/python}
PYTHONPATH=$SRC "$PY" "$SRC/scripts/gpu/make_model_dir.py" "$DEV/.gpu/model" >/dev/null
if [[ -f $SRC/scripts/gpu/extra-wheels.txt ]]; then
  mkdir -p "$DEV/.gpuwhl"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$DEV/.gpuwhl" -r "$SRC/scripts/gpu/extra-wheels.txt" 2>&1 | grep -v '^WARNING: Location' || true
fi
[[ -f $DEV/.chunks/p1/stage.sh ]] || bash "$SHARED/prepare.sh" "$DEV"
du -sh "$DEV/.gpu" "$DEV/.gpuwhl" "$DEV"/.chunks/* 2>/dev/null
