#!/usr/bin/env bash
# Start the local Docker engine if it is not answering, WITHOUT any bridge network:
#   dockerd --bridge=none --iptables=false --ip-forward=false --ip-masq=false
# so Docker never creates a 172.x bridge or touches iptables (builds use --network none).
# Idempotent: when a daemon already answers on the socket it is reused (after checking that it has
# no bridge network). Prints DOCKER_HOST=unix://SOCKET on stdout; progress goes to stderr.
# Env: QVDOCTOR_DOCKER_SOCK (default /var/run/docker.sock), QVDOCTOR_DOCKER_ROOT (data-root,
# default /var/lib/docker), QVDOCTOR_DOCKER_LOG (default /var/log/qvdoctor-dockerd.log), and for a
# second, separate daemon QVDOCTOR_DOCKER_EXEC_ROOT / QVDOCTOR_DOCKER_PIDFILE (defaults /var/run/docker,
# /var/run/docker.pid: a second dockerd on the same pidfile refuses to start, by design).
source "$(dirname "$0")/_common.sh"
SOCK="${QVDOCTOR_DOCKER_SOCK:-/var/run/docker.sock}"
ROOT="${QVDOCTOR_DOCKER_ROOT:-/var/lib/docker}"
LOGF="${QVDOCTOR_DOCKER_LOG:-/var/log/qvdoctor-dockerd.log}"
EXEC_ROOT="${QVDOCTOR_DOCKER_EXEC_ROOT:-/var/run/docker}"
PIDFILE="${QVDOCTOR_DOCKER_PIDFILE:-/var/run/docker.pid}"
HOST="unix://$SOCK"

answers() { docker -H "$HOST" info >/dev/null 2>&1; }

check_no_bridge() {
  local nets
  nets="$(docker -H "$HOST" network ls --format '{{.Driver}} {{.Name}}' 2>/dev/null || true)"
  if grep -q '^bridge ' <<<"$nets"; then
    die "the Docker daemon on $HOST has a bridge network ($(grep '^bridge ' <<<"$nets" | tr '\n' ' '));" \
        "qvdoctor's tests need one started with --bridge=none: stop it and rerun scripts/start-dockerd.sh"
  fi
}

command -v docker >/dev/null || die "docker CLI not found: run bash scripts/setup-test-env.sh (apt docker.io)"
if answers; then
  check_no_bridge
  log "dockerd already running on $HOST (data-root $(docker -H "$HOST" info --format '{{.DockerRootDir}}'))"
  echo "DOCKER_HOST=$HOST"; exit 0
fi

command -v dockerd >/dev/null || die "dockerd not found: run bash scripts/setup-test-env.sh (apt docker.io)"
as_root mkdir -p "$ROOT" "$(dirname "$LOGF")"
log "starting dockerd (socket $SOCK, data-root $ROOT, log $LOGF)"
# setsid + nohup: the daemon outlives this script and the test run; stdin closed for CI.
as_root setsid nohup dockerd \
  --host "$HOST" --data-root "$ROOT" --exec-root "$EXEC_ROOT" --pidfile "$PIDFILE" \
  --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
  </dev/null >>"$LOGF" 2>&1 &
for _ in $(seq 1 120); do
  if answers; then
    # docker's CLI talks to the socket as this user: make it usable without sudo for root-less callers.
    [[ $(id -u) -eq 0 ]] || as_root chmod 666 "$SOCK" || true
    check_no_bridge
    log "dockerd ready on $HOST"
    echo "DOCKER_HOST=$HOST"; exit 0
  fi
  sleep 0.5
done
tail -n 20 "$LOGF" >&2 || true
die "dockerd did not answer on $HOST within 60 s (log: $LOGF)"
