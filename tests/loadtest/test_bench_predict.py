"""The prediction of `qvdoctor bench --plan-model`: planned for the machine the server runs on."""

from __future__ import annotations

from pathlib import Path

import pytest

from qvdoctor.errors import QvError
from qvdoctor.facts.load import load_or_gather
from qvdoctor.loadtest.predict import plan_capacity
from qvdoctor.plan import plan_for

M7 = Path(__file__).resolve().parents[1] / "plan" / "fixtures" / "qwen2.5-vl-7b-instruct"


def test_a_facts_snapshot_gives_the_plan_of_that_machine():
    cap = plan_capacity(str(M7), {"facts": "h100-vllm026", "max_model_len": 32768})
    plan = plan_for(str(M7), "h100-vllm026", max_model_len=32768)
    assert cap["kv_capacity_tokens"] == plan.kv_capacity_tokens > 500_000
    assert cap["max_model_len"] == 32768


def test_without_facts_it_plans_for_this_machine_as_plan_does():
    # Recorded on the GPU host (scripts/gpu/bench_serve.py): without facts= the prediction used
    # no facts at all and stopped the bench with "no GPU to plan for" next to a live H100.
    here = load_or_gather(None, probe=False)
    if here.nvidia.gpus:
        assert plan_capacity(str(M7), {"max_model_len": 32768})["kv_capacity_tokens"] > 0
    else:
        with pytest.raises(QvError, match="no GPU"):
            plan_capacity(str(M7), {"max_model_len": 32768})
    assert plan_capacity(str(M7), {"device": "cpu", "kv_cache_memory_bytes": 1 << 30})["kv_capacity_tokens"] > 0
