"""What limits the knee (``limit`` in the result): the bench names the stage where requests wait,
from vLLM's TTFT breakdown, against servers whose bottleneck is known exactly, and against the
recorded GPU run (tests/logs/real/gpu/serve-bench/: vLLM 0.26 on an H100, whose video requests
queued in the API server long before the KV cache filled)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT, run_qvdoctor
from tests.loadtest.benchfix import CLIP, CLIP_TOKENS, result_json, server
from tests.vllm_support import require_vllm  # noqa: F401 (fixture)

API_FIX = {"flags": {"api_server_count": 4}}

GPU_RUN = ROOT / "tests" / "logs" / "real" / "gpu" / "serve-bench" / "bench.json"


def bench(url: str, *args: str):
    return run_qvdoctor("bench", "--url", url, "--synthetic-video", CLIP, "--max-tokens", "8", "--no-ceiling", "--json",
                        *args, timeout=240)


def test_a_one_lane_api_server_is_named_with_its_fix():
    """Each request passes one 0.1 s lane before the engine (as vLLM's API server processes
    media), the engine has room for all: TTFT grows in the rest, not in the queue or prefill."""
    with server("--slots", "64", "--ttft", "0.02", "--tpot", "0.002", "--preprocess", "0.1",
                "--visual-tokens", str(CLIP_TOKENS)) as url:
        res = bench(url, "--concurrency", "1,4,8", "--requests", "12", "--slo", "ttft=250ms")
    out = result_json(res)
    lim = out["limit"]
    assert res.returncode == 0 and out["knee"]["concurrency"] == 1, res.stderr[-2000:]
    assert lim["stage"] == "api-server" and lim["load"] == 4, lim
    assert lim["fix"] == API_FIX and "--api-server-count 4" in lim["hint"]
    assert any("queue/prefill/rest" in e for e in lim["evidence"])


def test_a_full_engine_is_named_as_its_queue():
    """Two batch slots and nothing before them: requests wait in the engine's queue."""
    with server("--slots", "2", "--ttft", "0.05", "--tpot", "0.01", "--visual-tokens", str(CLIP_TOKENS)) as url:
        out = result_json(bench(url, "--concurrency", "1,2,8", "--requests", "16", "--slo", "ttft=200ms"))
    lim = out["limit"]
    assert lim["stage"] == "engine-queue" and lim["load"] == 8 and lim["fix"] is None, lim
    assert "batch slot" in lim["cause"] and "data parallel" in lim["hint"]


def test_the_recorded_gpu_run_is_limited_by_its_api_server():
    """Saved before bench named limits: --from-json reads it from the points. 8 s 640x360 clips
    on an H100: 3.67 req/s at 4 concurrent, 3.77 at 16, while the KV cache had room for 414."""
    res = run_qvdoctor("bench", "--from-json", str(GPU_RUN), "--json", timeout=60)
    lim = json.loads(res.stdout)["limit"]
    assert lim["stage"] == "api-server" and lim["load"] == 16 and lim["fix"] == API_FIX
    assert "full at 414" in lim["cause"]
    text = run_qvdoctor("bench", "--from-json", str(GPU_RUN), timeout=60).stdout
    assert "limit at concurrency 16: api-server" in text and "fix: add --api-server-count 4" in text


def test_the_api_server_fix_hint_quotes_its_recorded_measurement():
    """The fix's hint quotes the same-machine pair recorded for it (H100, vLLM 0.26.0, eager; docs/bench.md):
    the peak rate rose 4.38 -> 5.60 req/s with 4 API servers, the knee did not (8 with one, none with four)."""
    from qvdoctor.loadtest.limit import what_limits

    gpu = GPU_RUN.parent.parent
    one, four = (json.loads((gpu / d / "bench.json").read_text()) for d in ("serve-bench-eager-sweep", "serve-bench-api4-eager-sweep"))
    assert [p["concurrency"] for p in one["points"]] == [p["concurrency"] for p in four["points"]] == [4, 8, 16, 32, 64]
    peak1, peak4 = (max(p["req_per_s"] for p in r["points"]) for r in (one, four))
    assert (round(peak1, 1), round(peak4, 1)) == (4.4, 5.6) and round(100 * (peak4 / peak1 - 1)) == 28
    assert one["knee"]["concurrency"] == 8 and four["knee"]["concurrency"] is None
    lim = what_limits(one["points"], one["mode"], True, one["max_tokens"], one["prediction"], one["server_version"])
    assert lim["stage"] == "api-server" and lim["fix"] == API_FIX
    assert "4.4 -> 5.6 req/s (+28 %), not the knee" in lim["hint"] and "serve-bench-api4-eager-sweep" in lim["hint"]
    # the first pair (another H100, one API server run first, concurrency 1, 4, 16): 4.07 -> 5.16 req/s at 16,
    # the knee 4 with either, the API server the limit of both (docs/bench.md, limit.py's comment)
    one, four = (json.loads((gpu / d / "bench.json").read_text()) for d in ("serve-bench-eager", "serve-bench-api4-eager"))
    assert [round(p["req_per_s"], 2) for r in (one, four) for p in r["points"] if p["concurrency"] == 16] == [4.07, 5.16]
    assert one["knee"]["concurrency"] == four["knee"]["concurrency"] == 4
    assert [what_limits(r["points"], r["mode"], True, r["max_tokens"], r["prediction"], r["server_version"])["stage"]
            for r in (one, four)] == ["api-server", "api-server"]


@pytest.mark.vllm
def test_vllm_parser_accepts_the_api_server_fix(require_vllm):  # noqa: F811
    """The limit's fix, rendered as flags, is read by vLLM's own `vllm serve` parser."""
    from qvdoctor.launch import Launch

    argv = Launch({"max_model_len": 4096, **API_FIX["flags"]}, model="m").argv()  # ['vllm', 'serve', MODEL, ...]
    code = ("import json, sys\n"
            "from vllm.entrypoints.cli.serve import ServeSubcommand\n"
            "from vllm.utils.argparse_utils import FlexibleArgumentParser\n"
            "p = FlexibleArgumentParser(); ServeSubcommand().subparser_init(p.add_subparsers(dest='subparser'))\n"
            "print(p.parse_args(json.loads(sys.argv[1])[1:]).api_server_count)\n")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(argv)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.split()[-1] == "4", out.stderr[-2000:]
