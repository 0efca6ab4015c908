#!/usr/bin/env bash
# The project's test command (README: `bash scripts/test.sh`; CI: .ci/run).
#   1. bash scripts/setup-test-env.sh   (apt + .venv; quick when already done)
#   2. bash scripts/start-dockerd.sh    (local Docker engine, no bridge network)
#   3. bash scripts/check-pythons.sh    (runtime commands on Python 3.10 and 3.13)
#   4. .venv/bin/python -m pytest -q "$@"
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/test_tinymodel.py -x`.
# pytest's exit 5 ("no tests collected") fails a full run, but is accepted when arguments select
# a subset that happens to be empty on this machine.
source "$(dirname "$0")/_common.sh"
bash scripts/setup-test-env.sh
if dh="$(bash scripts/start-dockerd.sh)"; then
  export "${dh?}"
else
  die "the local Docker engine could not be started (see above)"
fi
# qvdoctor's runtime commands on Python 3.10 and 3.13 (their own venvs from the runtime locks)
bash scripts/check-pythons.sh
# A hang guard (pytest-timeout), not a speed assertion: no single test may run 15 minutes.
export PYTEST_TIMEOUT="${PYTEST_TIMEOUT:-900}"
set +e
"$VPY" -m pytest -q "$@"
rc=$?
set -e
if [[ $rc -eq 5 && $# -gt 0 ]]; then
  log "pytest collected no tests for: $*"; rc=0
fi
exit $rc
