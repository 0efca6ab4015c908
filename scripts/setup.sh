#!/usr/bin/env bash
# Fresh machine -> .venv with qvdoctor's runtime lock (requirements/runtime.txt) + `pip install -e .`.
# Enough to run `qvdoctor diagnose`; idempotent, and a no-op when nothing changed.
source "$(dirname "$0")/_common.sh"
ensure_venv 3.10
STAMP="$VENV/.qvdoctor-runtime.stamp"
hash="$(inputs_hash requirements/runtime.txt requirements/runtime-py310.txt pyproject.toml scripts/setup.sh scripts/_common.sh)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$hash" ]]; then
  log "runtime environment up to date ($VENV)"; exit 0
fi
start=$SECONDS
lock=requirements/runtime.txt
"$VPY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || lock=requirements/runtime-py310.txt
"$UV" pip install --quiet -r "$lock"
"$UV" pip install --quiet --no-deps --no-build-isolation -e .
echo "$hash" > "$STAMP"
log "runtime environment ready in $((SECONDS - start)) s: $VENV/bin/qvdoctor"
