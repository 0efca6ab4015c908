#!/usr/bin/env bash
# Fresh machine -> .venv with qvdoctor's runtime lock (requirements/runtime.txt) + `pip install -e .`.
# Enough to run `qvdoctor diagnose`; idempotent, and a no-op when nothing changed.
source "$(dirname "$0")/_common.sh"
ensure_venv 3.10
STAMP="$VENV/.qvdoctor-runtime.stamp"
hash="$(inputs_hash requirements/runtime.txt pyproject.toml scripts/setup.sh scripts/_common.sh)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$hash" ]]; then
  log "runtime environment up to date ($VENV)"; exit 0
fi
start=$SECONDS
"$UV" pip install --quiet -r requirements/runtime.txt
"$UV" pip install --quiet --no-deps --no-build-isolation -e .
echo "$hash" > "$STAMP"
log "runtime environment ready in $((SECONDS - start)) s: $VENV/bin/qvdoctor"
