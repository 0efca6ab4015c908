#!/usr/bin/env bash
# Steps of one device call, run from the checkout root on the GPU host (see stage_tree.sh):
#   install          join the parked vLLM chunks with .chunks/p2, unpack to /tmp/site (install.sh)
#   wheels           pip-install .gpuwhl/*.whl into /tmp/site (PyAV, uvicorn, ... for smoke / serve)
#   host             scripts/gpu/host_report.py -> $OUT/host.json, $OUT/facts.json
#   grid:NAME:SECS   scripts/gpu/grid.py NAME with a budget of SECS -> $OUT/NAME-results.json, NAME-logs.tar.gz
#   smoke:NAME       the smoke run NAME of scripts/gpu/smoke_runs.sh -> $OUT/smoke-NAME.tar.gz
#   bench-serve      `vllm serve` with plan's launch for 8 s 640x360 clips, measured by `qvdoctor bench`
#                    (scripts/gpu/bench_serve.py) -> $OUT/bench-serve.tar.gz; sampling is restricted to
#                    ids the tiny tokenizer spells (dummy weights otherwise stream no text to time)
#   bench-serve-quick  the same, eager, concurrency 1,4,16, 10 s a point, 60 s in all (a short device budget)
#   bench-serve-api:N  bench-serve with `--api-server-count N` (N API server processes share the media
#                    processing) -> $OUT/bench-serve-apiN.tar.gz
#   bench-serve:eager, bench-serve-api:N:eager  the same with --enforce-eager (a start of ~45 s, not ~145 s)
#                    -> $OUT/bench-serve-eager.tar.gz, $OUT/bench-serve-apiN-eager.tar.gz
#   failures:starts[:N1,N2], failures:requests  scripts/gpu/failure_runs.py: launches that fail before serving
#                    (only the named ones), and requests one eager server refuses -> $OUT/failures.tar.gz
#                    (all such steps so far)
# Everything is logged to $OUT/device_run.log.
set -u
ROOT=$PWD
G=$ROOT/.gpu
OUT=${OUT:-/tmp/qv-out}
mkdir -p "$OUT"
export PYTHONPATH=/tmp/site:$G PYTHONUNBUFFERED=1
export VLLM_WORKER_MULTIPROC_METHOD=spawn VLLM_USE_FLASHINFER_SAMPLER=0
exec > >(tee -a "$OUT/device_run.log") 2>&1
echo "[device_run] $(date -u +%FT%TZ) steps: $*"
for step in "$@"; do
  t0=$SECONDS
  case $step in
    install) bash .chunks/p2/install.sh || { echo "[device_run] install failed"; exit 1; } ;;
    wheels) python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpuwhl/*.whl \
              && python3 -c "import av, uvicorn, prometheus_fastapi_instrumentator; print('wheels ok', av.__version__)" ;;
    host) timeout 200 python3 "$G/scripts/gpu/host_report.py" --out "$OUT" ;;
    grid:*) IFS=: read -r _ name secs <<<"$step"; python3 "$G/scripts/gpu/grid.py" "$name" --out "$OUT" --budget "$secs" --model "$G/model" ;;
    smoke:*) bash "$G/scripts/gpu/smoke_runs.sh" "${step#smoke:}" ;;
    bench-serve|bench-serve:eager|bench-serve-quick|bench-serve-api:*)
                 quick=(); name=bench-serve
                 [[ $step == bench-serve-quick ]] && quick=(--serve=--enforce-eager --bench=--concurrency --bench=1,4,16 \
                    --bench=--duration --bench=10 --bench=--max-time --bench=60)
                 if [[ $step == bench-serve-api:* ]]; then
                   n=${step#bench-serve-api:}; n=${n%%:*}; name=bench-serve-api$n; quick=(--serve=--api-server-count --serve="$n")
                 fi
                 [[ $step == *:eager ]] && { name=$name-eager; quick+=(--serve=--enforce-eager); }
                 (cd /tmp && python3 "$G/scripts/gpu/bench_serve.py" --model "$G/model" --out "/tmp/$name" \
                    --plan=--max-model-len --plan=32768 --plan=--video-seconds --plan=8 --plan=--video-size --plan=640x360 \
                    --plan=--video-fps --plan=4 --serve=--load-format --serve=dummy \
                    --bench=--synthetic-video --bench=8@640x360 --bench=--concurrency --bench=1,4,16,64 \
                    --bench=--max-tokens --bench=64 --bench=--duration --bench=15 --bench=--max-time --bench=130 \
                    --bench=--extra-body --bench="{\"allowed_token_ids\": [$(seq -s, 100 600)]}" \
                    --bench=--slo --bench=ttft=1000ms,tpot=50ms --bench=--plan-model --bench="$G/model" \
                    --bench=--plan-setting --bench=max_model_len=32768 "${quick[@]}")
                 tar -C /tmp -czf "$OUT/$name.tar.gz" "$name" ;;
    failures:*) IFS=: read -r _ what names <<<"$step"
                (cd /tmp && timeout 540 python3 "$G/scripts/gpu/failure_runs.py" --model "$G/model" --out /tmp/failures \
                   "$what" ${names//,/ })
                tar -C /tmp -czf "$OUT/failures.tar.gz" failures ;;
    *) echo "[device_run] unknown step $step" ;;
  esac
  echo "[device_run] step $step: rc $? in $((SECONDS - t0)) s"
done
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv
