#!/usr/bin/env bash
# Named `qvdoctor smoke` runs on the GPU host with the published Qwen2.5-VL-7B configuration and
# dummy weights (.gpu/model), each starting from a launch that fails there. Called by device_run.sh;
# writes $OUT/smoke-NAME.tar.gz (report.json, stderr, every attempt's engine log).
#   toolong      gpu_memory_utilization 0.3 (0.17 on an H200) + max_model_len 128000 (eager): the KV cache cannot hold it
#   encoder-oom  gpu_memory_utilization 0.95 + a 64 s 1080p clip (128 frames sampled): the V2 runner
#                reserves nothing for the vision encoder
#   serve        the vllm-serve backend with a launch that works (checks what the pruned wheel serves)
set -u
G=$PWD/.gpu
OUT=${OUT:-/tmp/qv-out}
name=$1
W=/tmp/smoke-$name
rm -rf "$W" && mkdir -p "$W"
common=(--model "$G/model" --load-format dummy --max-tokens 16 --json --workdir "$W")
total_mib=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)
low=0.3; [[ ${total_mib:-0} -gt 100000 ]] && low=0.17   # H200: 0.17 of 140 GiB leaves what 0.3 of 80 GiB leaves
case $name in
  toolong) args=(--backend vllm --max-attempts 3 --timeout 240 --flag gpu_memory_utilization=$low
                 --flag max_model_len=128000 --flag enforce_eager=true) ;;
  encoder-oom)
    python3 -c "from qvdoctor.video import make_test_clip; make_test_clip('$W/long-1080p.mp4', seconds=64, width=1920, height=1080, fps=4)"
    args=(--backend vllm --max-attempts 3 --timeout 300 --video "$W/long-1080p.mp4" --flag gpu_memory_utilization=0.95
          --flag max_model_len=65536 --flag mm_processor_kwargs=none) ;;
  serve) args=(--backend vllm-serve --max-attempts 2 --timeout 300 --flag enforce_eager=true --flag max_model_len=16384) ;;
  *) echo "unknown smoke run $name"; exit 2 ;;
esac
cd /tmp  # not the checkout root: python -m would import its qvdoctor/ before .gpu/
t0=$SECONDS
python3 -m qvdoctor smoke "${common[@]}" "${args[@]}" > "$W/report.json" 2> "$W/stderr.log"
rc=$?
echo "[smoke $name] exit $rc in $((SECONDS - t0)) s"
tail -5 "$W/stderr.log"
python3 - "$W/report.json" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception as e:
    print("no report:", e); sys.exit()
print("ok", r.get("ok"), "attempts", len(r.get("attempts", [])), "metrics", json.dumps(r.get("metrics"))[:600])
print("serve:", r.get("serve_command"))
PY
rm -f "$W"/*.mp4 "$W"/frames*.npy
tar -C /tmp -czf "$OUT/smoke-$name.tar.gz" "smoke-$name"
