"""The memory vLLM's profile run charges before sizing the KV cache (memory_planning.md §2).

``profile_run`` encodes a batch of maximum-size dummy images or videos (outputs kept in the encoder
cache), runs the LLM over ``max_num_batched_tokens`` and the sampler over ``max_num_seqs`` rows.
The dummy sizes are exact arithmetic copied from vLLM (qwen2_vl.py, encoder_budget.py); the bytes
per patch / token / row are calibrated against a simulation of vLLM's op sequence on an H200
(memory_planning.md §2.3-2.4) and carry their expected error."""

from __future__ import annotations

import math
from dataclasses import dataclass

from qvdoctor.model.info import ModelInfo
from qvdoctor.plan.terms import CALIBRATED, ESTIMATED, EXACT, GIB, Term
from qvdoctor.plan.versions import VllmBehaviour

MAX_FRAMES_PER_VIDEO = 14  # qwen2_vl.py _MAX_FRAMES_PER_VIDEO
PIXEL_VALUES_PER_PATCH = 3 * 2 * 14 * 14  # 1176


@dataclass(frozen=True)
class MmDummy:
    modality: str | None  # None: no vision modality enabled (tower not built)
    tokens_per_item: int
    items: int
    image_tokens: int
    video_tokens: int
    video_frames: int
    image_size: tuple[int, int]  # (width, height) of the dummy image / video frame
    encoder_budget: int

    @property
    def tokens(self) -> int:
        return self.items * self.tokens_per_item

    @property
    def patches(self) -> int:
        return self.tokens * 4  # 2 × 2 spatial merge

    def to_dict(self) -> dict:
        return {**self.__dict__, "tokens": self.tokens, "patches": self.patches}


def dummy_image(max_pixels: int, unit: int, factorised: bool, min_pixels: int = 3136) -> tuple[int, int, int]:
    """``(width, height, tokens)`` of vLLM's 'image size with most features'."""
    if factorised:
        max_seq = max_pixels // (unit * unit)
        hf, wf = 1, max_seq
        for seq in range(max_seq, 0, -1):
            hf = next(d for d in range(math.isqrt(seq), 0, -1) if seq % d == 0)
            wf = seq // hf
            if wf / hf <= 200:
                break
        return unit * wf, unit * hf, hf * wf
    from qvdoctor.model.vision_tokens import hf_smart_resize

    h, w = hf_smart_resize(9999999, 9999999, unit, min_pixels, max_pixels)
    return w, h, (h // unit) * (w // unit)


def mm_dummy(model: ModelInfo, behaviour: VllmBehaviour, max_model_len: int, max_num_batched_tokens: int,
             max_num_seqs: int, limits: dict[str, int] | None = None, max_pixels: int | None = None) -> MmDummy:
    """The dummy batch vLLM encodes during profiling (V1, chunked prefill on)."""
    limits = {"image": 999, "video": 999, **(limits or {})}
    vis = model.vision
    if vis is None or (limits["image"] <= 0 and limits["video"] <= 0):
        return MmDummy(None, 0, 0, 0, 0, 0, (0, 0), 0)
    unit = vis.merge_unit
    width, height, img_tokens = dummy_image(max_pixels or model.image_max_pixels, unit, behaviour.dummy_image_factorised,
                                            model.image_min_pixels)
    frames = 1
    while math.ceil((frames + 1) / vis.temporal_patch_size) * img_tokens <= max_model_len:
        frames += 1
        if frames > 10_000:
            break
    frames = max(min(frames, MAX_FRAMES_PER_VIDEO), 1)
    vid_tokens = math.ceil(frames / vis.temporal_patch_size) * img_tokens
    per_item = {m: t for m, t in (("image", img_tokens), ("video", vid_tokens)) if limits[m] > 0}
    modality, tpi = max(per_item.items(), key=lambda kv: (kv[1], kv[0]))
    budget = max(max_num_batched_tokens, max(per_item.values()))
    per_prompt = max(1, min(limits[modality], max_model_len // tpi))
    items = max(1, min(budget // tpi, max_num_seqs * per_prompt))
    return MmDummy(modality, tpi, items, img_tokens, vid_tokens if limits["video"] > 0 else 0, frames, (width, height), budget)


def vit_bytes_per_patch(model: ModelInfo, vision_tp: int) -> float:
    """Peak activation per ViT patch: ≈ 2·hidden + 8.25·MLP/TP bytes (fits the simulated 30.0 /
    16.2 / 10.3 KiB per patch at TP 1 / 2 / 4 within 10 %)."""
    vis = model.vision
    assert vis is not None
    return 1.92 * vis.hidden_size + 8.26 * vis.intermediate_size / vision_tp


def activation_terms(model: ModelInfo, dummy: MmDummy, tp: int, vision_tp: int, max_num_batched_tokens: int,
                     max_num_seqs: int, dtype_bytes: int, runner: str = "v1", behaviour: VllmBehaviour | None = None,
                     enforce_eager: bool = False) -> tuple[Term, list[Term]]:
    """The profiled peak (the largest of the three phases) and its parts, for one rank.

    ``runner`` "v2" (Model Runner V2) profiles text only: no vision-encoder phase, no encoder
    outputs (see :mod:`qvdoctor.plan.runner`)."""
    from qvdoctor.plan import runner as mr

    beh = behaviour or VllmBehaviour("0.0.0")
    parts: list[Term] = []
    vit = enc = 0.0
    if dummy.modality is not None and runner == mr.V2:
        parts.append(Term("ViT on the dummy (not profiled)", 0, EXACT,
                          "Model Runner V2 profiles a text-only dummy: the vision encoder's peak is not reserved", 0))
    if dummy.modality is not None and runner != mr.V2:
        per_patch = vit_bytes_per_patch(model, vision_tp) * mr.vit_scale(beh, enforce_eager)
        vit = dummy.patches * (per_patch + PIXEL_VALUES_PER_PATCH * dtype_bytes)
        enc = dummy.tokens * model.vision.out_hidden_size * dtype_bytes  # type: ignore[union-attr]
        parts.append(Term("ViT peak on the dummy", int(vit), CALIBRATED,
                          f"{dummy.items} × {dummy.modality} of {dummy.tokens_per_item:,} tokens = {dummy.patches:,} patches × "
                          f"({per_patch / 1024:.1f} KiB + {PIXEL_VALUES_PER_PATCH * dtype_bytes} B pixels)"
                          + (f" ({'eager' if enforce_eager else 'torch.compile'}, measured on vLLM 0.26)" if mr.calibrated(beh) else ""),
                          int(vit * (0.03 if mr.calibrated(beh) else 0.2))))
        parts.append(Term("encoder outputs kept", int(enc), EXACT,
                          f"{dummy.tokens:,} tokens × {model.vision.out_hidden_size} × {dtype_bytes} B", 0))  # type: ignore[union-attr]
    coef = mr.llm_bytes_per_token(runner, beh)
    llm_per_token = coef * (model.hidden_size + 2 * model.intermediate_size / tp)
    llm = max_num_batched_tokens * llm_per_token
    llm_err = 0.05 if mr.calibrated(beh) else 0.3
    parts.append(Term("LLM dummy forward", int(llm), CALIBRATED,
                      f"{max_num_batched_tokens:,} tokens × {llm_per_token / 1024:.1f} KiB ({coef} B × (hidden + 2·I/TP)"
                      + (f", measured for Model Runner {runner.upper()} on vLLM 0.26" if mr.calibrated(beh) else "") + ")",
                      int(llm * llm_err)))
    samp_per_row = (12 if mr.calibrated(beh) else 16) * model.vocab_size
    samp_err = 4 if mr.calibrated(beh) else 20
    samp = max_num_seqs * samp_per_row
    parts.append(Term("sampler dummy", int(samp), ESTIMATED,
                      f"{max_num_seqs} rows × {model.vocab_size:,} vocab × {samp_per_row // model.vocab_size} B (4-36 B by backend"
                      + ("; at most 14 B here: the whole V2 profile peaked at 2.09 GiB with 1,024 rows on vLLM 0.26)" if mr.calibrated(beh) else ")"),
                      int(max_num_seqs * model.vocab_size * samp_err)))
    phases = {"vision encoder": vit, "encoder outputs + LLM forward": enc + llm, "encoder outputs + sampler": enc + samp}
    phase = max(phases, key=phases.__getitem__)
    peak = phases[phase]
    vit_err = 0.03 if mr.calibrated(beh) else 0.2
    err = {"vision encoder": vit * vit_err, "encoder outputs + LLM forward": llm * llm_err, "encoder outputs + sampler": max_num_seqs * model.vocab_size * samp_err}[phase]
    where = "Model Runner V2, text-only dummy" if runner == mr.V2 else "Model Runner V1"
    return Term("peak activation (profile run)", int(peak), CALIBRATED if phase != "encoder outputs + sampler" else ESTIMATED,
                f"max of the profile phases ({where}): {phase}", int(err)), parts


def non_torch_term(tp: int, pp: int, behaviour: VllmBehaviour | None = None) -> Term:
    from qvdoctor.plan import runner as mr

    multi = tp * pp > 1
    b, err, kind = mr.non_torch_bytes(behaviour or VllmBehaviour("0.0.0"), multi)
    return Term("non-torch memory", b, kind,
                "cuBLAS/NCCL workspaces allocated after the init snapshot" + (" (NCCL/custom all-reduce buffers)" if multi else "")
                + (" (0.22-0.23 GiB measured on vLLM 0.26, one GPU)" if kind == CALIBRATED else ""),
                err)


def cudagraph_term(behaviour: VllmBehaviour, max_num_seqs: int, enforce_eager: bool, runner: str = "v1") -> Term | None:
    from qvdoctor.plan import runner as mr

    if enforce_eager:
        return Term("CUDA graphs", 0, EXACT, "--enforce-eager: no graphs captured", 0)
    if not behaviour.cudagraph_subtracted:
        return None
    sizes = min(2 * max_num_seqs, 512)
    sub, pool, err = mr.cudagraph_bytes(behaviour, runner, max_num_seqs)
    if runner == mr.V2 and mr.calibrated(behaviour):
        return Term("CUDA graphs", 0, EXACT, f"Model Runner V2 subtracts no graph estimate: its pool (≈{pool / GIB:.2f} GiB at capture "
                    f"sizes up to {sizes}) comes out of the (1 − utilization) headroom", 0)
    if mr.calibrated(behaviour):
        return Term("CUDA graphs", sub, CALIBRATED, f"vLLM's estimate for capture sizes up to {sizes}, subtracted before the KV cache "
                    f"(0.46 GiB measured at 512; the pool itself takes ≈{(sub + pool) / GIB:.2f} GiB)", err)
    return Term("CUDA graphs", sub, ESTIMATED, f"graph pool for capture sizes up to {sizes} (subtracted before the KV cache since vLLM 0.20)",
                err)
