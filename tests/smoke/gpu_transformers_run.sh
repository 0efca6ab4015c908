#!/usr/bin/env bash
# qvdoctor smoke --backend transformers on a real NVIDIA GPU (the lead runs this on the H200).
#
# Self-contained: run from a checkout of this repository on a machine with Python 3.10+,
# torch (CUDA), transformers >= 4.56, tokenizers, safetensors, numpy, nvidia-ml-py (pynvml),
# typer, rich, pyyaml, packaging; PyAV (``av``) decodes the video (qvdoctor.video needs it).
# Nothing is downloaded: the tiny random Qwen2.5-VL is built locally, the clip is synthetic.
#
#   bash tests/smoke/gpu_transformers_run.sh [OUT_DIR]
#
# Writes OUT_DIR (default $OUT, else ./gpu-smoke-out): smoke.json (the report), smoke.txt
# (stderr progress), env.txt (GPU and package versions), attempt logs under work/.
# Exit status: smoke's own (0 ok, 2 no attempt succeeded, 3 bad input), 4 missing prerequisites.
set -uo pipefail

cd "$(dirname "$0")/../.."
OUT_DIR="${1:-${OUT:-$PWD/gpu-smoke-out}}"
mkdir -p "$OUT_DIR"
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export QVDOCTOR_CACHE="$OUT_DIR/cache"   # the tiny model is built here, not in ~/.cache
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

{
  echo "# $(date -u +%FT%TZ) $(hostname)"
  nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader 2>&1 || true
  "$PY" - <<'EOF'
import importlib, importlib.metadata as md, sys
print("python", sys.version.split()[0])
for dist in ("torch", "transformers", "tokenizers", "safetensors", "numpy", "nvidia-ml-py", "av",
             "opencv-python", "opencv-python-headless", "typer", "rich", "PyYAML", "vllm"):
    try:
        print(dist, md.version(dist))
    except md.PackageNotFoundError:
        print(dist, "-")
try:
    import torch
    print("torch.cuda", torch.version.cuda, "available", torch.cuda.is_available(),
          torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
except Exception as exc:
    print("torch import failed:", exc)
EOF
} > "$OUT_DIR/env.txt" 2>&1
cat "$OUT_DIR/env.txt"

missing=$("$PY" - <<'EOF'
import importlib.util
need = ["torch", "transformers", "tokenizers", "safetensors", "numpy", "pynvml", "typer", "rich", "yaml", "packaging", "av"]
print(" ".join(n for n in need if importlib.util.find_spec(n) is None))
EOF
)
if [[ -n "$missing" ]]; then
  echo "missing Python packages: $missing" | tee -a "$OUT_DIR/smoke.txt"
  if [[ " $missing " == *" av "* ]]; then
    echo "qvdoctor.video decodes with PyAV; install it (pip install av) or a wheel of it, then re-run." | tee -a "$OUT_DIR/smoke.txt"
  fi
  exit 4
fi
if [[ "${ALLOW_CPU:-0}" != 1 ]]; then  # ALLOW_CPU=1: rehearse the script on a machine without GPU
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || {
    echo "torch sees no CUDA device: this script is for a GPU machine" | tee -a "$OUT_DIR/smoke.txt"; exit 4; }
fi

"$PY" -m qvdoctor smoke --backend transformers --model tiny-random --json \
  --workdir "$OUT_DIR/work" --emit-serve-cmd "$OUT_DIR/serve.sh" --emit-config "$OUT_DIR/serve.yaml" \
  > "$OUT_DIR/smoke.json" 2> "$OUT_DIR/smoke.txt"
rc=$?
cat "$OUT_DIR/smoke.txt"
"$PY" - "$OUT_DIR/smoke.json" <<'EOF' || true
import json, sys
r = json.load(open(sys.argv[1]))
m = r["metrics"]
print(f"ok={r['ok']} attempts={len(r['attempts'])} device={m.get('device')} gpu={m.get('gpu_name')} dtype={m.get('dtype')}")
print(f"prompt_tokens={m.get('prompt_tokens')} visual_tokens={m.get('visual_tokens')} frames={m.get('frames')} "
      f"({m.get('frame_width')}x{m.get('frame_height')}) generated={m.get('generated_tokens')}")
print(f"ttft_s={m.get('ttft_s')} decode_tokens_per_s={m.get('decode_tokens_per_s')} "
      f"peak={m.get('peak_memory_bytes')} ({m.get('peak_memory_source')}) torch_peak_allocated={m.get('torch_peak_allocated_bytes')}")
if not r["ok"]:
    print("why:", r["explanation"])
EOF
exit $rc
