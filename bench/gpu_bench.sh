#!/usr/bin/env bash
# `qvdoctor bench` against a real `vllm serve` on the GPU host: vLLM 0.26.0 (brought there by
# ../shared/gpu-vllm: .chunks/p1 parked by an earlier call, .chunks/p2 carried now), the published
# Qwen2.5-VL-7B configuration with dummy weights (.gpu/model, scripts/gpu/make_model_dir.py of the GPU
# work), the KV cache pinned to 2 GiB so that it, not the GPU's compute, sets the knee.
# Writes $OUT/result.json (bench --json), bench.log, monitor.json, serve.log; the report (PNG/HTML)
# is rendered here afterwards from result.json (qvdoctor.loadtest.report.write_report).
#   device call 1: carry [".chunks/p1"]                    bash .chunks/p1/stage.sh
#   device call 2: carry [".chunks/p2", ".gpuwhl", ".gpu"] bash bench/gpu_bench.sh
set -u
OUT=${OUT:-/tmp/qv-out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/run.log") 2>&1
bash .chunks/p2/install.sh || { echo "install failed"; exit 1; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpuwhl/*.whl || exit 1
export VLLM_WORKER_MULTIPROC_METHOD=spawn VLLM_USE_FLASHINFER_SAMPLER=0
KV=$((2 * 1024 * 1024 * 1024))
PYTHONPATH=/tmp/site setsid python3 -m vllm.entrypoints.cli.main serve "$PWD/.gpu/model" --load-format dummy \
  --served-model-name qwen2.5-vl-7b --host 127.0.0.1 --port 8000 --enforce-eager --max-model-len 16384 \
  --kv-cache-memory-bytes $KV --limit-mm-per-prompt '{"image": 0, "video": 1}' > "$OUT/serve.log" 2>&1 &
SERVER=$!
trap 'kill -- -$SERVER 2>/dev/null; sleep 2; kill -9 -- -$SERVER 2>/dev/null' EXIT
for i in $(seq 1 150); do
  python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health', timeout=2)" 2>/dev/null && break
  kill -0 $SERVER 2>/dev/null || { echo "vllm serve exited"; tail -40 "$OUT/serve.log"; exit 1; }
  sleep 2
done
echo "server ready after $((i * 2)) s"
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv
export PYTHONPATH=$PWD:/tmp/site
timeout 420 python3 -m qvdoctor bench --url http://127.0.0.1:8000/v1 --synthetic-video 8@448x448 \
  --concurrency 1,2,4,8,16,24,32 --max-tokens 64 --slo ttft=1s --full-sweep --json --max-time 400 \
  --plan-model "$PWD/.gpu/model" --plan-setting facts=qvdoctor/data/machines/h100.json \
  --plan-setting kv_cache_memory_bytes=$KV --plan-setting max_model_len=16384 --plan-setting vllm_version=0.26.0 \
  --plan-setting enforce_eager=1 > "$OUT/result.json" 2> "$OUT/bench.log"
echo "bench exit $?"; tail -15 "$OUT/bench.log"
timeout 60 python3 -m qvdoctor monitor --url http://127.0.0.1:8000 --once --json --interval 1 > "$OUT/monitor.json" 2>&1
head -c 1500 "$OUT/monitor.json"
grep -E "KV cache size|Maximum concurrency|model weights|Available KV" "$OUT/serve.log" | tail -5
