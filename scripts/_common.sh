# Shared helpers for scripts/*.sh (sourced, not run). Sets REPO and cds into it.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
VENV="${QVDOCTOR_VENV:-$REPO/.venv}"
VPY="$VENV/bin/python"

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { printf '[%s] error: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

# Run a command as root (directly, or through passwordless sudo).
as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo -n "$@"
  else die "needs root for: $*"; fi
}

# A Python >= $1 (default 3.11) to create the venv with: $PYTHON, else python3.11..3.13, python3.
find_python() {
  local want="${1:-3.11}" c
  for c in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
    [[ -n "$c" ]] && command -v "$c" >/dev/null || continue
    if "$c" -c "import sys; sys.exit(0 if sys.version_info[:2] >= tuple(map(int, '$want'.split('.'))) else 1)"; then
      command -v "$c"; return 0
    fi
  done
  die "no Python >= $want found (set PYTHON=/path/to/python3.11)"
}

# Create $VENV if missing and make sure uv is in it; prints nothing.
ensure_venv() {
  local py
  if [[ ! -x "$VPY" ]]; then
    py="$(find_python "${1:-3.11}")"
    log "creating $VENV with $py"
    "$py" -m venv "$VENV"
  fi
  if [[ ! -x "$VENV/bin/uv" ]]; then
    log "installing uv into $VENV"
    "$VPY" -m pip install --quiet --disable-pip-version-check uv
  fi
  UV="$VENV/bin/uv"
  export UV_PYTHON="$VPY" UV_NO_PROGRESS=1
}

# sha256 over the given files (missing files count as empty) plus the venv's Python version.
inputs_hash() {
  { "$VPY" -c 'import sys; print(sys.version)'; for f in "$@"; do echo "== $f"; cat "$f" 2>/dev/null || true; done; } \
    | sha256sum | cut -d' ' -f1
}

# Non-comment, non-blank lines of a list file.
list_lines() { [[ -f "$1" ]] && grep -v -E '^\s*(#|$)' "$1" | sed 's/\s*#.*$//' || true; }
