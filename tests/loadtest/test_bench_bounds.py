"""``qvdoctor bench`` / ``monitor`` at their edges: bad input is one line and exit 3 (a JSON error
object under --json), Ctrl-C keeps the points measured so far and leaves no process behind, and
monitor reads both the current and the pre-0.10 vLLM metric names."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import ROOT, run_qvdoctor
from tests.loadtest.benchfix import CLIP, CLIP_TOKENS, server


@pytest.mark.parametrize("args, words", [
    (["--url", "localhost:8000", "--concurrency", "1"], "is not http://HOST:PORT/v1"),
    (["--url", "http://127.0.0.1:9/v1", "--concurrency", "1,x"], "is not a whole number"),
    (["--url", "http://127.0.0.1:9/v1", "--concurrency", "4,2"], "must rise"),
    (["--url", "http://127.0.0.1:9/v1", "--slo", "ttft=fast"], "is not KEY=TIME"),
    (["--url", "http://127.0.0.1:9/v1", "--synthetic-video", "4s"], "is not SECONDS@WxH"),
    (["--url", "http://127.0.0.1:9/v1", "--concurrency", "1", "--no-ceiling"], "cannot read the served model"),
])
def test_bad_input_is_one_line_and_exit_3(args, words):
    res = run_qvdoctor("bench", *args, timeout=60)
    assert res.returncode == 3, res.stderr
    assert res.stderr.startswith("error: ") and words in res.stderr.splitlines()[0], res.stderr
    assert "Traceback" not in res.stderr
    js = run_qvdoctor("bench", *args, "--json", timeout=60)
    assert js.returncode == 3 and words in json.loads(js.stdout)["error"]["message"]


def _procs_with(marker: str) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if marker.encode() in (d / "cmdline").read_bytes():
                    found.append(int(d.name))
            except OSError:
                continue
    return found


def test_ctrl_c_keeps_the_points_so_far_and_leaves_no_process(tmp_path):
    marker = f"ctrlc-{uuid.uuid4().hex[:8]}"  # the served model name: also in the ceiling server's argv
    with server("--model", marker, "--slots", "1", "--ttft", "0.05", "--tpot", "0.05", "--visual-tokens", str(CLIP_TOKENS)) as url:
        proc = subprocess.Popen(
            [sys.executable, "-m", "qvdoctor", "bench", "--url", url, "--synthetic-video", CLIP, "--max-tokens", "10",
             "--concurrency", "1,2,4,8", "--requests", "6", "--report", str(tmp_path / "rep")],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        lines = []
        deadline = time.monotonic() + 120
        assert proc.stderr is not None
        for line in proc.stderr:  # wait until the first point is measured and the second has begun
            lines.append(line)
            if line.startswith("concurrency 2:") or time.monotonic() > deadline:
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(lines) + err
    assert "interrupted" in err
    result = json.loads((tmp_path / "rep" / "result.json").read_text())
    assert result["interrupted"] is True
    assert [p["concurrency"] for p in result["points"]] == [1]
    assert (tmp_path / "rep" / "latency.png").stat().st_size > 1000
    assert _procs_with(marker) == []  # neither the ceiling's server nor anything else is left


@pytest.mark.parametrize("names, kv_name", [("new", "vllm:kv_cache_usage_perc"), ("old", "vllm:gpu_cache_usage_perc")])
def test_monitor_once_json_reads_each_releases_names(names, kv_name):
    with server("--metric-names", names, "--slots", "2", "--kv-blocks", "500", "--block-size", "16") as url:
        res = run_qvdoctor("monitor", "--url", url.rsplit("/v1", 1)[0], "--once", "--json", "--interval", "0.2", "--no-gpu", timeout=60)
    assert res.returncode == 0, res.stderr
    d = json.loads(res.stdout)
    assert d["running"] == 0 and d["waiting"] == 0 and d["kv_cache_usage"] == 0.0
    assert d["metric_names"]["kv_cache_usage"] == kv_name
    assert d["kv_capacity"] == {"num_blocks": 500, "block_size": 16, "tokens": 8000}
    assert d["prompt_tok_per_s"] == 0.0


def test_monitor_unreachable_server_is_exit_3():
    res = run_qvdoctor("monitor", "--url", "http://127.0.0.1:9", "--once", "--json", timeout=60)
    assert res.returncode == 3 and "cannot read" in json.loads(res.stdout)["error"]["message"]
