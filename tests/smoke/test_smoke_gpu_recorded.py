"""Replays the `qvdoctor smoke` and `vllm serve` runs recorded with vLLM 0.26.0 on an H100
(tests/logs/real/gpu/smoke-*/, serve-bench/; scripts/gpu/smoke_runs.sh and bench_serve.py):
triage of every failed attempt's engine log gives the patch the next attempt ran with, the runs
end served, and plan's prediction for the served launch matches vLLM's own KV numbers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from qvdoctor.doctor.triage import triage_text
from qvdoctor.facts.snapshot import load_facts
from qvdoctor.launch import Launch
from qvdoctor.model.info import load_model_info
from qvdoctor.plan import PlanSettings, make_plan, plan_for
from qvdoctor.prescription import judge, settings_with

ROOT = Path(__file__).resolve().parents[2]
GPU = ROOT / "tests" / "logs" / "real" / "gpu"
M7 = ROOT / "tests" / "plan" / "fixtures" / "qwen2.5-vl-7b-instruct"
FACTS = load_facts(GPU / "facts-h100-vllm026.json")
#: run -> the root cause triage names for attempt 1 (None: attempt 1 served)
RUNS = {"smoke-toolong": "kv-cache-too-small", "smoke-encoder-oom": "vision-encoder-oom-v2", "smoke-serve": None}


def _report(run: str) -> dict:
    return json.loads((GPU / run / "report.json").read_text())


@pytest.mark.parametrize("run", sorted(RUNS))
def test_each_recorded_run_ends_served_with_a_verified_command(run):
    r = _report(run)
    assert r["ok"] is True and r["serve_command_verified"] is True
    assert r["attempts"][-1]["ok"] is True and not any(a["ok"] for a in r["attempts"][:-1])
    assert len(r["attempts"]) == (1 if RUNS[run] is None else 2)
    m = r["metrics"]
    assert m["device"] == "cuda" and m["generated_tokens"] == 16 and m["ttft_s"] > 0 and m["peak_memory_bytes"] > 15 << 30
    assert r["serve_command"].startswith(("VLLM_", "vllm serve")) and "--load-format" not in r["serve_command"]


@pytest.mark.parametrize("run", sorted(k for k, v in RUNS.items() if v))
def test_triage_of_the_failed_attempt_gives_the_patch_the_next_one_ran(run):
    r = _report(run)
    first, second = r["attempts"]
    log = (GPU / run / "attempt-1" / "engine.log").read_text()
    t = triage_text(log)
    assert t.root is not None and t.root.id == RUNS[run] == first["finding"]["id"]
    flags = {**first["flags"], **t.root.patch.flags}
    env = {**first["env"], **t.root.patch.env}
    assert (flags, env) == (second["flags"], second["env"])


def test_the_encoder_oom_run_moved_to_the_v1_runner_and_served_the_long_video():
    r = _report("smoke-encoder-oom")
    assert r["attempts"][1]["env"]["VLLM_USE_V2_MODEL_RUNNER"] == "0"
    assert "Using V2 Model Runner" in (GPU / "smoke-encoder-oom" / "attempt-1" / "engine.log").read_text()
    assert "Using V2 Model Runner" not in (GPU / "smoke-encoder-oom" / "attempt-2" / "engine.log").read_text()
    m = r["metrics"]
    assert (m["frames"], m["frame_width"], m["frame_height"], m["visual_tokens"]) == (128, 1008, 560, 46080)
    assert r["serve_command"].startswith("VLLM_USE_V2_MODEL_RUNNER=0 ")


def _vllm_numbers(log: str) -> tuple[float, int]:
    gib = float(re.search(r"Available KV cache memory: ([\d.]+) GiB", log).group(1))
    tokens = int(re.search(r"GPU KV cache size: ([\d,]+) tokens", log).group(1).replace(",", ""))
    return gib, tokens


def test_plan_predicted_the_served_launch_kv_cache():
    """`vllm serve` with plan's own launch (utilization 0.92, max_num_seqs 256, 8192 batched tokens,
    CUDA graphs): a configuration outside the calibration grid (the LLM class's 1024 / 16384)."""
    plan_json = json.loads((GPU / "serve-bench" / "plan.json").read_text())
    gib, tokens = _vllm_numbers((GPU / "serve-bench" / "serve.log").read_text())
    assert (gib, tokens) == (55.88, 1_046_400)
    # predicted on that host, from its live facts, before the server started
    assert abs(plan_json["kv_capacity_tokens"] - tokens) / tokens < 0.005
    assert abs(plan_json["available_kv_bytes"] / 2**30 - gib) < 0.05
    # and reproducible here from the facts recorded on that host
    flags = dict(zip(plan_json["launch"]["argv"][3::2], plan_json["launch"]["argv"][4::2]))
    again = plan_for(str(M7), FACTS, vllm_version="0.26.0", max_model_len=int(flags["--max-model-len"]),
                     gpu_memory_utilization=float(flags["--gpu-memory-utilization"]),
                     max_num_seqs=int(flags["--max-num-seqs"]), max_num_batched_tokens=int(flags["--max-num-batched-tokens"]))
    assert abs(again.kv_capacity_tokens - tokens) / tokens < 0.005


#: every engine start of the smoke runs that got as far as sizing its KV cache
STARTS = [(run, n) for run in sorted(RUNS) for n in (1, 2) if (GPU / run / f"attempt-{n}" / "engine.log").is_file()
          and "GPU KV cache size" in (GPU / run / f"attempt-{n}" / "engine.log").read_text()]


@pytest.mark.parametrize("run,n", STARTS)
def test_plan_of_each_attempts_own_launch_matches_vllm(run, n):
    """Planned from the attempt's recorded flags and env alone (runner, utilization, batching,
    max_pixels), against the KV numbers vLLM printed in that attempt's engine log."""
    attempt = _report(run)["attempts"][n - 1]
    launch = Launch(attempt["flags"], attempt["env"])
    plan = make_plan(load_model_info(str(M7)), FACTS, settings_with(PlanSettings(vllm_version="0.26.0"), launch))
    gib, tokens = _vllm_numbers((GPU / run / f"attempt-{n}" / "engine.log").read_text())
    assert abs(plan.available_kv_bytes / 2**30 - gib) < 0.06, (plan.runner, plan.available_kv_bytes / 2**30, gib)
    assert abs(plan.kv_capacity_tokens - tokens) / tokens < 0.005


#: run, attempt -> what the checks before launch say of that attempt's launch (the GPU's verdict:
#: attempt 1 of toolong failed at start, attempt 1 of encoder-oom at the first long video)
BEFORE_LAUNCH = {("smoke-toolong", 1): {"max-model-len-does-not-fit": "fail"}, ("smoke-toolong", 2): {},
                 ("smoke-encoder-oom", 1): {"vision-encoder-oom-v2": "warn"}, ("smoke-encoder-oom", 2): {},
                 ("smoke-serve", 1): {}}


@pytest.mark.parametrize("run,n", sorted(BEFORE_LAUNCH))
def test_checks_before_launch_flag_exactly_the_attempts_that_failed_on_the_gpu(run, n):
    attempt = _report(run)["attempts"][n - 1]
    assert attempt["ok"] is (not BEFORE_LAUNCH[(run, n)])
    launch = Launch(attempt["flags"], attempt["env"])
    info = load_model_info(str(M7))
    plan = make_plan(info, FACTS, settings_with(PlanSettings(vllm_version="0.26.0"), launch))
    flagged = {f.id: f.status for f in judge(FACTS, info, launch, plan) if f.status in ("fail", "warn")}
    assert flagged == BEFORE_LAUNCH[(run, n)]
