"""``qvdoctor plan``: whether a Qwen2.5-VL checkpoint fits the GPUs, with which flags, and why.

Layout: :mod:`versions` (what each vLLM release does), :mod:`parallel` (valid TP sizes),
:mod:`weights` (bytes per rank), :mod:`kv` (vLLM's exact block arithmetic), :mod:`profile` (the
profile-run peak incl. the multimodal dummy), :mod:`core` (the plan), :mod:`recommend` (flags),
:mod:`render` (table / markdown / csv / bars)."""

from __future__ import annotations

from typing import Any

from qvdoctor.plan.core import Plan, PlanSettings, VideoSpec, make_plan

__all__ = ["Plan", "PlanSettings", "VideoSpec", "make_plan", "plan_for", "recommend_flags"]


def _facts(facts: Any) -> Any:
    if facts is None or hasattr(facts, "gpus"):
        return facts
    from qvdoctor.facts.snapshot import load_facts

    return load_facts(facts)


def plan_for(model: Any, facts: Any = None, **settings: Any) -> Plan:
    """A plan for ``model`` (directory, cached repo id or :class:`~qvdoctor.model.info.ModelInfo`)
    on ``facts`` (a :class:`~qvdoctor.facts.snapshot.Facts`, a snapshot path, or ``None`` with
    ``device="cpu"``); ``settings`` are :class:`PlanSettings` fields."""
    from qvdoctor.model.info import ModelInfo, load_model_info

    info = model if isinstance(model, ModelInfo) else load_model_info(str(model))
    video = settings.pop("video", None)
    if isinstance(video, dict):
        video = VideoSpec(**video)
    return make_plan(info, _facts(facts), PlanSettings(video=video, **settings))


def recommend_flags(model_path_or_facts: Any, facts: Any = None, **settings: Any) -> dict[str, Any]:
    """snake_case vLLM engine arguments for serving ``model_path_or_facts`` on ``facts``.

    ``model_path_or_facts``: a model directory / cached repo id / ModelInfo. ``facts``: Facts,
    a snapshot path, or None (then ``device="cpu"`` and ``kv_cache_memory_bytes`` are needed).
    ``settings``: any :class:`PlanSettings` field (tp, pp, gpus, max_model_len,
    gpu_memory_utilization, kv_cache_dtype, kv_cache_memory_bytes, vllm_version, device, video,
    pin_kv, ...)."""
    return dict(plan_for(model_path_or_facts, facts, **settings).recommended_flags)
