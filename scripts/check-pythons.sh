#!/usr/bin/env bash
# qvdoctor's runtime commands on the oldest and the newest Python it supports (3.10: Ubuntu 22.04's,
# where vLLM runs too; 3.13: the newest the runtime lock installs on). Each gets its own venv
# (.venv-py3.10, .venv-py3.13) from the runtime lock of that Python, then runs the commands a
# user runs first: --help, diagnose on a snapshot, plan, diagnose --log, kernels on a fixture.
# Called by scripts/test.sh before pytest; quick when the venvs are up to date.
source "$(dirname "$0")/_common.sh"

python_for() {  # $1 = 3.10 -> an interpreter of exactly that version
  local v="$1" c
  for c in "${HOME}"/.pyenv/versions/"$v".*/bin/python3 "$(command -v "python$v" 2>/dev/null)"; do
    [[ -x "$c" ]] && { echo "$c"; return 0; }
  done
  "$UV" python find "$v" 2>/dev/null || die "no Python $v on this machine (pyenv or python$v); the runtime commands must be checked on it"
}

ensure_venv 3.11  # for uv
for v in 3.10 3.13; do
  lock=requirements/runtime.txt
  [[ "$v" == 3.10 ]] && lock=requirements/runtime-py310.txt  # typer >= 0.29.2 needs 3.11
  venv="$REPO/.venv-py$v"
  py="$(python_for "$v")"
  stamp="$venv/.qvdoctor-runtime.stamp"
  hash="$( { "$py" -c 'import sys; print(sys.version)'; cat "$lock" pyproject.toml; } | sha256sum | cut -d' ' -f1)"
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$hash" ]]; then
    rm -rf "$venv"
    "$py" -m venv "$venv"
    "$UV" pip install --quiet --python "$venv/bin/python" -r "$lock"
    "$UV" pip install --quiet --python "$venv/bin/python" --no-deps --no-build-isolation -e .
    echo "$hash" > "$stamp"
  fi
  q=("$venv/bin/qvdoctor")
  "${q[@]}" --help >/dev/null
  set +e
  "${q[@]}" diagnose --facts t4 --json >/dev/null; rc1=$?
  "${q[@]}" plan --model tests/plan/fixtures/qwen2.5-vl-7b-instruct --facts a10 --json >/dev/null; rc2=$?
  "${q[@]}" diagnose --log tests/logs/examples/tp-heads-not-divisible.log --model tests/plan/fixtures/qwen2.5-vl-7b-instruct >/dev/null; rc3=$?
  "${q[@]}" plan --model tests/plan/fixtures/llama-3.1-8b-instruct --facts h100 >/dev/null 2>&1; rc4=$?
  set -e
  [[ "$rc1 $rc2 $rc3 $rc4" == "2 0 2 3" ]] \
    || die "Python $v: diagnose/plan/triage/refusal exit codes were $rc1 $rc2 $rc3 $rc4, expected 2 0 2 3"
  log "Python $v ($py): --help, diagnose, plan, diagnose --log and a refused model behave"
done
