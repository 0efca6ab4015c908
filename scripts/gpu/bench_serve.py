"""Serve the launch `qvdoctor plan` recommends on this host with `vllm serve`, then measure it with
`qvdoctor bench` (and one `qvdoctor monitor --once --json` sample taken while the bench runs).

    python bench_serve.py --model DIR --out DIR [--plan ARG ...] [--serve ARG ...] [--bench ARG ...]

The launch is plan's ``launch.argv`` and ``launch.env`` as printed by ``plan --json``, with
``vllm`` run as ``python -m qvdoctor.smoke.vllm_cli`` (the same parser) and the ``--serve``
arguments appended (``--load-format dummy --port N`` for a published config without weights).
The server runs in its own process group under a deadline and is always stopped. Writes into
``--out``: plan.json, serve.log, bench.json, bench.stderr, monitor.json, summary.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

QV = [sys.executable, "-m", "qvdoctor"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, deadline: float) -> bool:
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=2) as r:  # noqa: S310 - loopback
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(1)
    return False


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--plan", action="append", default=[], help="extra `qvdoctor plan` argument")
    ap.add_argument("--serve", action="append", default=[], help="extra `vllm serve` argument")
    ap.add_argument("--bench", action="append", default=[], help="extra `qvdoctor bench` argument")
    ap.add_argument("--start-timeout", type=float, default=240)
    ap.add_argument("--monitor-after", type=float, default=20, help="seconds into the bench")
    a = ap.parse_args()
    out: Path = a.out
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"model": a.model}

    t0 = time.monotonic()
    plan = subprocess.run([*QV, "plan", "--model", a.model, *a.plan, "--json"], capture_output=True, text=True)
    (out / "plan.json").write_text(plan.stdout)
    summary["plan_exit"] = plan.returncode
    summary["plan_s"] = round(time.monotonic() - t0, 1)
    try:
        launch = json.loads(plan.stdout)["launch"]
    except (ValueError, KeyError, TypeError):
        print("plan gave no launch:", plan.stderr[-2000:])
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
        return 1
    port = free_port()
    argv = [sys.executable, "-m", "qvdoctor.smoke.vllm_cli", *launch["argv"][1:], *a.serve, "--port", str(port)]
    env = {**os.environ, **launch["env"], "VLLM_LOGGING_LEVEL": "DEBUG", "PYTHONUNBUFFERED": "1"}
    summary.update(launch=launch, serve_argv=argv)
    url = f"http://127.0.0.1:{port}"
    log = open(out / "serve.log", "w")
    t1 = time.monotonic()
    server = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        ready = wait_ready(url, server, t1 + a.start_timeout)
        summary["serve_ready"] = ready
        summary["serve_start_s"] = round(time.monotonic() - t1, 1)
        print(f"[bench_serve] server ready={ready} after {summary['serve_start_s']} s", flush=True)
        if not ready:
            return 1

        def sample() -> None:
            time.sleep(a.monitor_after)
            mon = subprocess.run([*QV, "monitor", "--url", url, "--once", "--json", "--interval", "2"],
                                 capture_output=True, text=True, timeout=60)
            (out / "monitor.json").write_text(mon.stdout or mon.stderr)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t2 = time.monotonic()
        bench = subprocess.run([*QV, "bench", "--url", url + "/v1", *a.bench, "--json"], capture_output=True, text=True)
        (out / "bench.json").write_text(bench.stdout)
        (out / "bench.stderr").write_text(bench.stderr)
        summary["bench_exit"] = bench.returncode
        summary["bench_s"] = round(time.monotonic() - t2, 1)
        sampler.join(timeout=70)
        print(f"[bench_serve] bench exit {bench.returncode} in {summary['bench_s']} s", flush=True)
        return 0
    finally:
        try:
            os.killpg(server.pid, signal.SIGINT)
            server.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(server.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()
        (out / "summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    sys.exit(main())
