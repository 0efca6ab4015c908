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
    (["--url", "http://127.0.0.1:9/v1", "--extra-body", "{top_k: 1}"], "--extra-body is not JSON"),
    (["--url", "http://127.0.0.1:9/v1", "--extra-body", "[1]"], "--extra-body must be a JSON object"),
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


def test_random_weights_that_spell_nothing_are_named_and_extra_body_gets_past_them():
    """Recorded on the GPU host: vLLM with --load-format dummy streamed 64 tokens of "" per
    request, and bench stopped with "the stream ended without any generated content"."""
    with server("--unspellable", "--ttft", "0.01", "--tpot", "0.002") as url:
        res = run_qvdoctor("bench", "--url", url, "--concurrency", "1", "--requests", "2", "--max-tokens", "8",
                           "--no-ceiling", timeout=120)
        assert res.returncode == 3
        first = res.stderr.splitlines()[0]
        assert "generated" in first and "streamed no text" in first and "allowed_token_ids" in first, res.stderr
        res = run_qvdoctor("bench", "--url", url, "--concurrency", "1", "--requests", "2", "--max-tokens", "8",
                           "--no-ceiling", "--json", "--extra-body", '{"allowed_token_ids": [100, 101, 102]}', timeout=120)
        assert res.returncode == 0, res.stderr[-2000:]
        point = json.loads(res.stdout)["points"][0]
        assert point["ok"] == 2 and point["errors"] == 0 and point["output_tok_per_s"] > 0
