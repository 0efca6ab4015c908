"""Which model runner a vLLM release uses for the model, and what that changes in its memory plan.

Read from vLLM's source (``vllm/config/vllm.py``, ``vllm/v1/worker/gpu_worker.py``,
``vllm/v1/worker/gpu/model_runner.py`` of 0.22.0-0.26.0 wheels) and measured on an H100 80GB HBM3
with vLLM 0.26.0 and the published Qwen2.5-VL-7B configuration (``tests/logs/real/gpu/``):

* **Which runner.** ``VllmConfig.use_v2_model_runner``: ``VLLM_USE_V2_MODEL_RUNNER`` (0/1) wins;
  otherwise V2 for a default-V2 model. 0.22.0 defaulted only Qwen3ForCausalLM, 0.23.0/0.24.0 a
  list (Llama, Mistral, Qwen3, DeepSeek-V2, Qwen2-MoE, Granite-MoE); **from 0.25.0 every
  generate-model that is not MoE, hybrid or attention-free** -- Qwen2.5-VL included. (The reference
  notes place this at 0.33: wrong.) Triton missing or an unsupported feature (prompt embeds,
  custom logits processors, ngram speculation, ...) falls back to V1.
* **V1** profiles the worst-case multimodal dummy (the vision encoder's peak is inside
  gpu_memory_utilization) and, since 0.21, subtracts an estimate of the CUDA-graph pool.
* **V2** profiles a text-only dummy (``_dummy_run(max_num_tokens, skip_attn=True)`` + sampler; no
  vision encoder) and ``profile_cudagraph_memory()`` returns 0: the graph pool and any image/video
  encoder pass come out of the (1 - utilization) headroom. A launch that starts fine can die at
  its first large video (:func:`encoder_headroom`).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Any

from qvdoctor.plan.terms import CALIBRATED, ESTIMATED, GIB
from qvdoctor.plan.versions import VllmBehaviour, _ge

V1 = "v1"
V2 = "v2"
ENV = "VLLM_USE_V2_MODEL_RUNNER"

#: First releases that default each architecture family to Model Runner V2 (vllm/config/vllm.py).
V2_DEFAULT_ALL_DENSE = "0.25.0"
V2_DEFAULT_LISTS = {
    "0.22.0": {"Qwen3ForCausalLM"},
    "0.23.0": {"Qwen3ForCausalLM", "LlamaForCausalLM", "MistralForCausalLM"},
    "0.24.0": {"Qwen3ForCausalLM", "LlamaForCausalLM", "MistralForCausalLM", "DeepseekV2ForCausalLM",
               "Qwen2MoeForCausalLM", "GraniteMoeForCausalLM"},
}
#: The releases whose memory terms below were measured (older ones keep the simulated estimates).
CALIBRATED_FROM = "0.25.0"

#: cudaMemGetInfo's total = NVML's total - what the driver reserves (NVML "reserved"):
#: H100 80GB HBM3, driver 580.159.04: 85,520,809,984 - 85,017,493,504 = 503,316,480 B (480 MiB).
NVML_RESERVED_BYTES = 503_316_480
#: "Model loading took 15.67 GiB" for 15.445 GiB of published 7B tensors: rotary caches and the
#: runner's persistent buffers, same for V1 and V2 (rounded to 0.01 GiB in the log).
LOAD_OVERHEAD_BYTES = int(0.225 * GIB)
#: "non-torch forward increase memory": 0.22-0.23 GiB on one GPU, every run.
NON_TORCH_BYTES = int(0.23 * GIB)
#: torch peak of the profile run per token of max_num_batched_tokens, in bytes per (hidden + 2·I/TP):
#: V2 2.09 GiB and V1 2.42 GiB (its 2.53 GiB less 0.11 GiB of encoder outputs) for 16,384 tokens of 7B.
LLM_BYTES_V2 = 3.30
LLM_BYTES_V1 = 3.82
#: Vision-encoder peak per patch over the published ViT's (1.92·hidden + 8.26·MLP/TP) simulation,
#: from V1's profile of 262,144 / 458,752 dummy patches: 7.57 / 13.23 GiB eager (31.0 KB/patch,
#: pixels included) and 8.82 GiB with torch.compile (36.1 KB/patch).
VIT_SCALE_EAGER = 0.933
VIT_SCALE_COMPILED = 1.100
#: CUDA graphs at capture sizes up to 512 (max_num_seqs 1024): V1 subtracts vLLM's estimate
#: (0.46 GiB; the pool then took 0.59), V2 subtracts nothing (its pool took 0.90 GiB).
CUDAGRAPH_V1_ESTIMATE_BYTES = int(0.46 * GIB)
CUDAGRAPH_V1_ACTUAL_BYTES = int(0.59 * GIB)
CUDAGRAPH_V2_POOL_BYTES = int(0.90 * GIB)
#: Margin the encoder check keeps: the caching allocator's fragmentation ate about 10 % in the
#: recorded OOM (577 MiB reserved-but-unallocated of 4.7 GiB of encoder activations).
ENCODER_MARGIN = 1.10


@dataclass(frozen=True)
class RunnerChoice:
    runner: str  # "v1" | "v2"
    why: str

    @property
    def label(self) -> str:
        return f"Model Runner {self.runner.upper()} ({self.why})"


def env_runner(env: dict[str, str] | None) -> str | None:
    """``VLLM_USE_V2_MODEL_RUNNER`` as vLLM reads it (``maybe_convert_bool``: "0"/"1"), or None."""
    value = (env or {}).get(ENV)
    if value is None or str(value).strip() == "":
        return None
    return V2 if str(value).strip().lower() in ("1", "true") else V1


def default_runner(version: str, architectures: list[str], is_moe: bool = False) -> RunnerChoice:
    """vLLM's default runner for a dense generate-model of ``architectures`` in ``version``."""
    if _ge(version, V2_DEFAULT_ALL_DENSE):
        if is_moe:
            return RunnerChoice(V1, f"vLLM {version} keeps MoE models on V1 unless listed")
        return RunnerChoice(V2, f"vLLM {version}'s default for non-MoE models (from 0.25.0)")
    for floor in sorted(V2_DEFAULT_LISTS, key=lambda v: tuple(int(p) for p in v.split(".")), reverse=True):
        if _ge(version, floor):
            if set(architectures) & V2_DEFAULT_LISTS[floor]:
                return RunnerChoice(V2, f"vLLM {version} defaults {', '.join(sorted(set(architectures) & V2_DEFAULT_LISTS[floor]))} to V2")
            break
    return RunnerChoice(V1, f"vLLM {version}'s default for this model (V2 by default from 0.25.0)")


def choose_runner(behaviour: VllmBehaviour, model: Any, facts: Any = None, requested: str | None = None,
                  env: dict[str, str] | None = None) -> RunnerChoice:
    """The runner the launch will get: ``requested`` ("v1"/"v2"), else ``VLLM_USE_V2_MODEL_RUNNER``
    in the launch's ``env``, then in the facts' environment, else vLLM's default for the version."""
    if requested in (V1, V2):
        return RunnerChoice(requested, "asked for")
    for where, e in (("the launch's environment", env),
                     ("the facts' environment", getattr(getattr(facts, "system", None), "env", None))):
        r = env_runner(e)
        if r is not None:
            return RunnerChoice(r, f"{ENV}={e[ENV]} in {where}")
    archs = list(getattr(model, "architectures", None) or [])
    is_moe = bool(getattr(model, "num_experts", 0) or 0)
    return default_runner(behaviour.version, archs, is_moe)


def calibrated(behaviour: VllmBehaviour) -> bool:
    """Whether the measured 0.26 terms apply (the same profiling code from 0.25.0 on)."""
    return _ge(behaviour.version, CALIBRATED_FROM)


def vllm_total_bytes(gpu: Any, provenance: str | None) -> tuple[int, str]:
    """The total vLLM budgets from (``cudaMemGetInfo``), from the facts' GPU total.

    A live or recorded snapshot holds NVML's total, which counts the driver's reservation; a
    published-spec snapshot holds the nominal size and is used as is."""
    total = int(gpu.memory_total_bytes)
    if provenance in ("live", "recorded") and total > NVML_RESERVED_BYTES * 4:
        return total - NVML_RESERVED_BYTES, (f"NVML total {total / GIB:.2f} GiB - {NVML_RESERVED_BYTES >> 20} MiB the driver reserves "
                                             "(cudaMemGetInfo's total, measured on an H100 with driver 580)")
    return total, f"{total / GIB:.2f} GiB from the facts ({provenance or 'unknown'} snapshot)"


def load_overhead_bytes(behaviour: VllmBehaviour, legacy: int) -> int:
    return LOAD_OVERHEAD_BYTES if calibrated(behaviour) else legacy


def llm_bytes_per_token(runner: str, behaviour: VllmBehaviour) -> float:
    if not calibrated(behaviour):
        return 3.75
    return LLM_BYTES_V2 if runner == V2 else LLM_BYTES_V1


def vit_scale(behaviour: VllmBehaviour, enforce_eager: bool) -> float:
    if not calibrated(behaviour):
        return 1.0
    return VIT_SCALE_EAGER if enforce_eager else VIT_SCALE_COMPILED


def non_torch_bytes(behaviour: VllmBehaviour, multi: bool) -> tuple[int, int, str]:
    """``(bytes, error, kind)`` of the non-torch increase during profiling."""
    if calibrated(behaviour) and not multi:
        return NON_TORCH_BYTES, int(0.05 * GIB), CALIBRATED
    return int((0.6 if multi else 0.4) * GIB), int(0.3 * GIB), ESTIMATED


def cudagraph_bytes(behaviour: VllmBehaviour, runner: str, max_num_seqs: int) -> tuple[int, int, int]:
    """``(subtracted before the KV cache, pool outside the budget, error)`` at these capture sizes."""
    sizes = min(2 * max_num_seqs, 512)
    shape = 0.25 + 0.75 * sizes / 512
    if not calibrated(behaviour):
        est = int(shape * GIB)
        return (est, 0, int(0.5 * GIB)) if behaviour.cudagraph_subtracted else (0, est, int(0.5 * GIB))
    if runner == V2:
        return 0, int(CUDAGRAPH_V2_POOL_BYTES * shape), int(0.15 * GIB)
    est = int(CUDAGRAPH_V1_ESTIMATE_BYTES * shape)
    return est, int((CUDAGRAPH_V1_ACTUAL_BYTES - CUDAGRAPH_V1_ESTIMATE_BYTES) * shape), int(0.15 * GIB)


# -- the vision encoder's headroom at request time ---------------------------------------------------
@dataclass
class EncoderHeadroom:
    """The largest image/video a launch admits against the memory left for its encoder pass."""

    runner: str
    modality: str
    tokens: int  # visual tokens of the largest admitted request (all its items)
    patches: int
    why: str
    per_patch_bytes: int
    peak_bytes: int  # encoder activation peak for it
    reserved_patches: int  # what the profile run already reserved (V1's dummy), 0 on V2
    total_bytes: int
    activation_bytes: int  # the profiled peak, given back after start-up
    cudagraph_bytes: int  # graph pool outside the budget
    headroom_bytes: int
    fails: bool
    utilization_fit: float | None = None
    max_pixels_fit: int | None = None

    @property
    def alternatives_text(self) -> str:
        """The fixes that keep Model Runner V2, with their numbers."""
        alts = []
        if self.utilization_fit:
            alts.append(f"--gpu-memory-utilization {self.utilization_fit}")
        if self.max_pixels_fit:
            alts.append(f"--mm-processor-kwargs '{{\"max_pixels\": {self.max_pixels_fit}}}' (frames the encoder can take)")
        return ("Or leave the encoder room on V2: " + ", or ".join(alts) + ".") if alts else ""

    @property
    def ok_text(self) -> str:
        if self.reserved_patches >= self.patches:
            return f"the profile run reserved the encoder's peak for the largest {self.modality} ({self.tokens:,} tokens)"
        return (f"the largest {self.modality} ({self.tokens:,} tokens) needs about {self.peak_bytes / GIB:.2f} GiB in the "
                f"encoder; {self.headroom_bytes / GIB:.2f} GiB is left")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok_text": self.ok_text, "alternatives_text": self.alternatives_text}


def largest_request(plan: Any) -> tuple[str, int, str, int | None]:
    """``(modality, visual tokens, why, frames)`` of the largest multimodal input one engine step
    encodes. vLLM's scheduler admits no item larger than the encoder budget (``max(
    max_num_batched_tokens, the largest dummy item)``, the same for V1 and V2), and no request
    longer than max_model_len."""
    model = plan.model
    limits = {"image": 999, "video": 999, **(plan.limit_mm_per_prompt or {})}
    limits = {k: (v.get("count", 1) if isinstance(v, dict) else int(v)) for k, v in limits.items()}
    text = 32  # the chat template around the items
    cap = max(0, plan.max_model_len - text)
    budget = plan.dummy.encoder_budget or cap
    # what the encoder sees is what vLLM's processor made of the frames (max_pixels applies there)
    v = plan.video_server if plan.video_server is not None else plan.video_client
    if v is not None and limits.get("video", 0) > 0:
        n = min(limits["video"], max(1, cap // max(1, v.tokens)))
        frames = getattr(v, "nframes", None) or getattr(v, "frames", None)
        return "video", min(cap, n * min(v.tokens, budget)), f"{n} × the planned video, {v.tokens:,} tokens each", frames
    unit = model.vision.merge_unit
    per_image = (plan.max_pixels or model.image_max_pixels) // (unit * unit)
    if limits.get("video", 0) > 0:
        return "video", min(cap, budget), (f"any video up to the encoder budget of {budget:,} tokens (frames are not capped)"
                                           if budget < cap else f"any video up to max_model_len {plan.max_model_len:,}"), None
    n = limits.get("image", 0)
    return "image", min(cap, n * min(per_image, budget)), f"{min(n, max(1, cap // max(1, per_image)))} image(s) of max_pixels", None


def encoder_headroom(plan: Any, runner: str, behaviour: VllmBehaviour, enforce_eager: bool,
                     vit_per_patch: float) -> EncoderHeadroom | None:
    """Largest admitted request vs. the memory its vision-encoder pass can use (rank 0)."""
    model = plan.model
    if model.vision is None or not plan.ranks or plan.ranks[0].budget is None:
        return None
    rank = plan.ranks[0]
    modality, tokens, why, frames = largest_request(plan)
    if tokens <= 0:
        return None
    patches = tokens * 4
    per_patch = int(vit_per_patch)
    peak = patches * per_patch
    total = rank.total_bytes
    act = next((t.bytes for t in rank.terms if t.name.startswith("peak activation")), 0)
    _, pool, _ = cudagraph_bytes(behaviour, runner, plan.max_num_seqs)
    if enforce_eager:
        pool = 0
    headroom = total - rank.budget.bytes + act - pool
    reserved = plan.dummy.patches if runner == V1 and plan.dummy.modality else 0
    fails = patches > reserved and peak * ENCODER_MARGIN > headroom
    util_fit = pixels_fit = None
    if fails:
        need = peak * ENCODER_MARGIN - act + pool
        util_fit = math.floor((1 - need / total) * 100) / 100 if need < total else None
        if util_fit is not None and util_fit <= 0.05:
            util_fit = None
        if frames:
            # within the headroom, and within max_num_batched_tokens so that the encoder budget
            # (which shrinks with max_pixels) still admits the video
            tokens_fit = min(int(headroom / ENCODER_MARGIN / per_patch / 4), plan.max_num_batched_tokens)
            per_pair = tokens_fit / max(1, math.ceil(frames / 2))
            unit = model.vision.merge_unit
            pixels = int(per_pair) * unit * unit
            pixels_fit = pixels if pixels >= model.image_min_pixels else None
    return EncoderHeadroom(runner, modality, tokens, patches, why, per_patch, peak, reserved, total, act, pool,
                           headroom, fails, util_fit, pixels_fit)


def facts_env(facts: Any) -> dict[str, str]:
    return dict(getattr(getattr(facts, "system", None), "env", None) or {})


def process_env() -> dict[str, str]:
    """This process's runner override (used when planning for this machine live)."""
    return {ENV: os.environ[ENV]} if ENV in os.environ else {}


def attach(plan: Any, choice: RunnerChoice, behaviour: VllmBehaviour, enforce_eager: bool) -> None:
    """Record the runner the plan assumed and the encoder headroom of its launch on ``plan``."""
    from qvdoctor.plan.profile import PIXEL_VALUES_PER_PATCH, vit_bytes_per_patch

    plan.runner = choice.runner
    plan.runner_label = choice.label
    plan.notes.append(f"memory planned for {choice.label}"
                      + ("; V2 profiles text only: images/videos are encoded out of the (1 − utilization) headroom"
                         if choice.runner == V2 else ""))
    if plan.model.vision is None or plan.device != "cuda":
        return
    vis_tp = 1 if plan.mm_encoder_tp_mode == "data" else plan.tp
    dtype_bytes = {"float32": 4}.get(plan.dtype, 2)
    per_patch = vit_bytes_per_patch(plan.model, vis_tp) * vit_scale(behaviour, enforce_eager) + PIXEL_VALUES_PER_PATCH * dtype_bytes
    plan.encoder = encoder_headroom(plan, choice.runner, behaviour, enforce_eager, per_patch)
