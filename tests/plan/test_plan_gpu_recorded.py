"""Replays the vLLM 0.26.0 starts recorded on an H100 (tests/logs/real/gpu/, scripts/gpu/): plan's
numbers against vLLM's, from the facts taken on that host in the same session; triage's root cause
and fix for each recorded failure; the vision-encoder headroom check on the launch that died."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from qvdoctor.doctor.catalog import load_catalog
from qvdoctor.doctor.context import build_context
from qvdoctor.doctor.rules import run_checks
from qvdoctor.doctor.triage import triage_text
from qvdoctor.facts.snapshot import load_facts
from qvdoctor.plan import plan_for
from qvdoctor.plan.runner import V1, V2, choose_runner, default_runner, vllm_total_bytes
from qvdoctor.plan.versions import VllmBehaviour

ROOT = Path(__file__).resolve().parents[2]
GPU = ROOT / "tests" / "logs" / "real" / "gpu"
M7 = ROOT / "tests" / "plan" / "fixtures" / "qwen2.5-vl-7b-instruct"
INDEX = json.loads((GPU / "index.json").read_text())
FACTS = load_facts(GPU / INDEX["facts"])
GIB = 1024**3


def _table_module():
    spec = importlib.util.spec_from_file_location("plan_table", ROOT / "scripts" / "gpu" / "plan_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


TABLE = _table_module()
STARTS = {n: r for n, r in INDEX["runs"].items() if r["llm"].get("tensor_parallel_size", 1) == 1}


def test_the_recording_covers_the_grid_the_issue_asks_for():
    runs = list(STARTS.values())
    assert len(runs) >= 8
    assert {r["llm"]["gpu_memory_utilization"] for r in runs} >= {0.6, 0.8, 0.95}
    assert {r["llm"]["max_model_len"] for r in runs} >= {8192, 65536}
    assert {bool(r["llm"]["enforce_eager"]) for r in runs} == {True, False}
    assert {r["runner"] for r in runs} == {V1, V2}
    # every V2 start that got as far as the runner says so in its log, and no V1 start does
    for name, r in STARTS.items():
        text = (GPU / f"{name}.log").read_text()
        if "Model loading took" in text:
            assert ("Using V2 Model Runner" in text) == (r["runner"] == V2), name


@pytest.mark.parametrize("name", sorted(n for n, r in STARTS.items() if r.get("available_kv_gib") is not None))
def test_plan_matches_vllm_kv_memory_and_tokens(name):
    run = STARTS[name]
    p = TABLE.predict(run)
    assert p["runner"] == run["runner"]
    # vLLM prints GiB with two decimals
    assert abs(p["available_kv_bytes"] / GIB - run["available_kv_gib"]) <= max(0.02, 0.02 * run["available_kv_gib"])
    if run.get("kv_cache_tokens"):
        assert p["kv_cache_tokens"] == pytest.approx(run["kv_cache_tokens"], rel=0.02)
    if run.get("estimated_max_model_len"):
        assert p["estimated_max_model_len"] == pytest.approx(run["estimated_max_model_len"], rel=0.02)
        if run["runner"] == V2:  # V2's profile does not grow with max_model_len: the estimate is the largest fit
            assert p["largest_fit"] == pytest.approx(run["estimated_max_model_len"], rel=0.02)


@pytest.mark.parametrize("name", sorted(STARTS))
def test_plan_predicts_how_each_start_ended(name):
    run = STARTS[name]
    p = TABLE.predict(run)
    if run["outcome"] == "encoder-oom":
        assert p["outcome"] == "started" and p["encoder_fails"]
    else:
        assert p["outcome"] == run["outcome"]


def test_weights_non_torch_and_activation_terms_match_the_profiler_lines():
    for name, run in STARTS.items():
        if "weights_gib" not in run:
            continue
        plan = TABLE.predict(run)["plan"]
        terms = {t.name: t for t in plan.ranks[0].terms}
        assert terms["weights"].bytes / GIB == pytest.approx(run["weights_gib"], abs=0.006), name
        assert terms["non-torch memory"].bytes / GIB == pytest.approx(run["non_torch_gib"], abs=0.011), name
        assert terms["peak activation (profile run)"].bytes / GIB == pytest.approx(run["torch_peak_increase_gib"], rel=0.01, abs=0.01), name
        # the printed error bars cover the measurement
        for key, term in (("weights_gib", "weights"), ("torch_peak_increase_gib", "peak activation (profile run)")):
            assert abs(terms[term].bytes / GIB - run[key]) <= terms[term].error_bytes / GIB + 0.005, (name, term)


def test_total_is_what_cuda_reports_not_nvml():
    host = json.loads((GPU / "host-h100-vllm026.json").read_text())
    total, _ = vllm_total_bytes(FACTS.gpus[0], FACTS.provenance)
    assert total == host["cuda_mem_get_info"]["total"]
    assert FACTS.gpus[0].memory_total_bytes > total


def test_runner_choice_follows_vllm_source_and_env():
    beh = VllmBehaviour("0.26.0")
    info = plan_for(str(M7), FACTS, vllm_version="0.26.0").model
    assert default_runner("0.26.0", info.architectures).runner == V2
    assert default_runner("0.25.0", info.architectures).runner == V2
    assert default_runner("0.24.0", info.architectures).runner == V1
    assert default_runner("0.24.0", ["LlamaForCausalLM"]).runner == V2
    assert choose_runner(beh, info, FACTS, env={"VLLM_USE_V2_MODEL_RUNNER": "0"}).runner == V1
    facts_v1 = load_facts(GPU / INDEX["facts"])
    facts_v1.system.env["VLLM_USE_V2_MODEL_RUNNER"] = "0"
    assert choose_runner(beh, info, facts_v1).runner == V1
    assert "V1" in plan_for(str(M7), facts_v1, vllm_version="0.26.0").runner_label


@pytest.mark.parametrize("name", sorted(n for n, r in INDEX["runs"].items() if r["outcome"] != "started"))
def test_triage_names_the_cause_and_a_fix_for_each_recorded_failure(name):
    run = INDEX["runs"][name]
    t = triage_text((GPU / f"{name}.log").read_text())
    want = {"no-kv-memory": "no-cache-blocks", "max-model-len-too-large": "kv-cache-too-small",
            "tp-larger-than-gpus": "tp-exceeds-gpus", "encoder-oom": "vision-encoder-oom-v2"}[run["outcome"]]
    assert t.root is not None and t.root.id == want
    patch = t.root.patch
    if want == "kv-cache-too-small":
        assert patch.flags == {"max_model_len": run["estimated_max_model_len"] // 16 * 16}
    elif want == "vision-encoder-oom-v2":
        assert patch.env == {"VLLM_USE_V2_MODEL_RUNNER": "0"} and "worst-case" not in t.root.cause.split("V1 runner")[0]
    elif want == "tp-exceeds-gpus":
        assert patch.flags == {"tensor_parallel_size": 1}
    else:
        assert patch.flags["gpu_memory_utilization"] > run["llm"]["gpu_memory_utilization"]


@pytest.mark.parametrize("name", ["v1-u0.3-l65536-eager", "v2-u0.3-l128000-eager", "v2-u0.2-l8192-eager",
                                  "v2-u0.95-l65536-graphs-video"])
def test_the_triage_fix_makes_the_launch_start_by_plans_arithmetic(name):
    """The patched launch, planned on the same host: it must start (and not OOM in the encoder)."""
    run = INDEX["runs"][name]
    patch = triage_text((GPU / f"{name}.log").read_text()).root.patch
    llm = {**run["llm"], **patch.flags}
    env = {**run["env"], **patch.env}
    p = TABLE.predict({**run, "llm": llm, "env": env})
    assert p["outcome"] == "started"
    assert not p["encoder_fails"]


def test_no_cache_blocks_fix_is_not_enough_for_v1_at_128k():
    """Recorded weakness: +0.1 utilization does not cover V1's 13 GiB video dummy at 128k."""
    run = INDEX["runs"]["v1-u0.25-l128000-eager"]
    patch = triage_text((GPU / "v1-u0.25-l128000-eager.log").read_text()).root.patch
    p = TABLE.predict({**run, "llm": {**run["llm"], **patch.flags}})
    assert p["outcome"] == "no-kv-memory"


# -- the vision-encoder headroom check (checks/oom/vision-encoder-oom-v2.toml) ------------------------
LONG_VIDEO = {"duration": 64.0, "width": 1008, "height": 560, "fps": 2.0}  # the request that died: 128 frames, 46,080 tokens
SMALL_VIDEO = {"duration": 64.0, "width": 504, "height": 280, "fps": 2.0}  # served on the same engine: 11,520 tokens


def _findings(plan):
    entry = [e for e in load_catalog() if e.id == "vision-encoder-oom-v2"]
    names = build_context(FACTS, model=plan.model, extra={"plan": plan, "tp": plan.tp, "pp": plan.pp, "n_gpus": plan.n_gpus})
    return run_checks(names, entry)


def _plan(**kw):
    base = dict(vllm_version="0.26.0", gpu_memory_utilization=0.95, max_model_len=65536, server=False,
                max_num_seqs=1024, max_num_batched_tokens=16384, kv_cache_dtype="auto")
    return plan_for(str(M7), FACTS, **{**base, **kw})


def test_encoder_check_fires_for_the_launch_that_died_on_the_gpu():
    # the recorded launch set no max_pixels: vLLM's default 12,845,056 (encoder budget 65,536 tokens)
    plan = _plan(video=dict(LONG_VIDEO), limit_mm_per_prompt={"image": 0, "video": 1}, max_pixels=12845056)
    assert plan.runner == V2 and plan.encoder.tokens == 46080
    (f,) = _findings(plan)
    assert f.status == "warn"
    assert f.patch.env == {"VLLM_USE_V2_MODEL_RUNNER": "0"}
    assert "--gpu-memory-utilization 0." in f.fix and "max_pixels" in f.fix
    # the alternatives it names are quiet too
    assert _findings(_plan(video=dict(LONG_VIDEO), limit_mm_per_prompt={"image": 0, "video": 1}, max_pixels=12845056,
                           gpu_memory_utilization=plan.encoder.utilization_fit))[0].status == "ok"
    fit = _plan(video=dict(LONG_VIDEO), limit_mm_per_prompt={"image": 0, "video": 1}, max_pixels=plan.encoder.max_pixels_fit)
    assert not fit.encoder.fails and _findings(fit)[0].status == "ok"
    assert fit.video_server.tokens <= fit.dummy.encoder_budget  # vLLM still admits the capped video


def test_encoder_check_is_quiet_on_v1_and_for_a_video_that_fits():
    v1 = _plan(video=dict(LONG_VIDEO), limit_mm_per_prompt={"image": 0, "video": 1}, env={"VLLM_USE_V2_MODEL_RUNNER": "0"},
               max_pixels=12845056)
    assert v1.runner == V1 and _findings(v1)[0].status == "ok"
    small = _plan(video=dict(SMALL_VIDEO), limit_mm_per_prompt={"image": 0, "video": 1}, max_pixels=12845056)
    assert small.runner == V2 and small.encoder.tokens == 11520 and _findings(small)[0].status == "ok"
