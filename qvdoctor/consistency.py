"""Consistency rules: whether a launch can run this model on this machine at all, and the nearest
launch that can.

These are the rules vLLM itself enforces before it allocates anything (divisibility of every
tensor-parallel split, the GPUs there are, the model's context limit, data types the GPU has), so
a launch that breaks one never starts. Every recommendation passes them: a patch (from a check, a
log, or the user) enters a launch only through :func:`repair`, which moves each value to the
nearest one that holds and says why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qvdoctor.doctor.findings import Patch
from qvdoctor.launch import Launch, for_release

KV_CACHE_DTYPES = ("auto", "fp8", "fp8_e4m3", "fp8_e5m2")
DTYPES = ("auto", "bfloat16", "float16", "float32", "half", "float", "bf16", "fp16")
FP8_KV_MIN_CC = (8, 9)
BF16_MIN_CC = (8, 0)


@dataclass(frozen=True)
class Problem:
    """One rule a launch breaks: ``rule`` names it, ``message`` says it with the numbers."""

    rule: str
    message: str


def _cc(cc: Any) -> tuple[int, int]:
    try:
        major, minor = str(cc).split(".")
        return int(major), int(minor)
    except (ValueError, AttributeError):
        return (0, 0)


def gpu_count(facts: Any) -> int | None:
    """GPUs the facts show; ``None`` when there are no facts (nothing to check against)."""
    if facts is None:
        return None
    return len(facts.nvidia.gpus)


def lowest_cc(facts: Any) -> tuple[int, int] | None:
    gpus = facts.nvidia.gpus if facts is not None else []
    return min((_cc(g.cc) for g in gpus), default=None)


def _data_mode_available(vllm_version: str | None) -> bool:
    from qvdoctor.plan.versions import LATEST_KNOWN, VllmBehaviour

    return VllmBehaviour(vllm_version or LATEST_KNOWN).has_mm_encoder_tp_mode


def tp_verdict(model: Any, tp: int, vllm_version: str | None = None, data_mode: bool = False) -> Any:
    from qvdoctor.plan.parallel import tp_verdict as verdict

    return verdict(model, tp, vision_data_mode=data_mode, data_mode_available=_data_mode_available(vllm_version))


def valid_tp_sizes(model: Any, upto: int, vllm_version: str | None = None) -> list[int]:
    """Every tensor-parallel size from 1 to ``upto`` that splits all of the model's sharded
    dimensions (attention and KV heads, MLP, vision tower, quantization groups)."""
    return [t for t in range(1, max(1, upto) + 1) if tp_verdict(model, t, vllm_version).ok]


def model_max_len(model: Any) -> int:
    """The longest context vLLM accepts for the model without overrides (its derived max_model_len)."""
    return int(model.max_position_embeddings)


def serve_dtype(launch: Launch, model: Any) -> str:
    """The data type the launch serves in (``auto`` resolved through the checkpoint's)."""
    value = str(launch.flags.get("dtype") or "auto").lower()
    if value == "auto":
        value = str((model.torch_dtype if model is not None else None) or "bfloat16").lower()
    return {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "float": "float32"}.get(value, value)


def problems(launch: Launch, model: Any, facts: Any) -> list[Problem]:
    """Every consistency rule ``launch`` breaks for ``model`` on ``facts``."""
    out: list[Problem] = []
    flags = launch.flags
    tp = int(flags.get("tensor_parallel_size") or 1)
    pp = int(flags.get("pipeline_parallel_size") or 1)
    n = gpu_count(facts)
    on_gpu = bool(n)
    if tp < 1 or pp < 1:
        out.append(Problem("parallel-size", f"tensor/pipeline parallel sizes must be at least 1 (TP {tp}, PP {pp})"))
        return out
    if on_gpu and tp * pp > n:
        out.append(Problem("tp-exceeds-gpus", f"TP {tp} × PP {pp} = {tp * pp} GPUs, but the machine has {n}"))
    if model is not None:
        v = tp_verdict(model, tp, launch.vllm_version, data_mode=flags.get("mm_encoder_tp_mode") == "data")
        if not v.ok:
            valid = valid_tp_sizes(model, max(tp, n or 1, 8), launch.vllm_version)
            out.append(Problem("tp-invalid", f"TP {tp} does not split {model.name or 'the model'}: {v.problems[0]} (valid sizes: {', '.join(map(str, valid))})"))
        elif v.needs_flags and any(flags.get(k) != val for k, val in v.needs_flags.items()):
            out.append(Problem("tp-needs-flags", f"TP {tp} needs {' '.join(f'--{k.replace(chr(95), chr(45))} {val}' for k, val in v.needs_flags.items())}: {v.notes[0] if v.notes else ''}"))
        if pp > model.num_hidden_layers:
            out.append(Problem("pp-exceeds-layers", f"PP {pp} is more stages than the {model.num_hidden_layers} layers"))
        mml = flags.get("max_model_len")
        if mml is not None and int(mml) > model_max_len(model):
            out.append(Problem("max-model-len", f"max_model_len {mml} is above the model's limit {model_max_len(model)} (max_position_embeddings)"))
    mml = flags.get("max_model_len")
    if mml is not None and int(mml) < 1:
        out.append(Problem("max-model-len", f"max_model_len must be positive, not {mml}"))
    dtype = str(flags.get("dtype") or "auto").lower()
    if dtype not in DTYPES:
        out.append(Problem("dtype", f"--dtype {dtype} is not one vLLM knows ({', '.join(DTYPES)})"))
    cc = lowest_cc(facts)
    if on_gpu and cc is not None and cc < BF16_MIN_CC and serve_dtype(launch, model) == "bfloat16":
        out.append(Problem("dtype", f"bfloat16 needs compute capability 8.0; the lowest GPU here has {cc[0]}.{cc[1]}"))
    kvd = str(flags.get("kv_cache_dtype") or "auto")
    if kvd not in KV_CACHE_DTYPES:
        out.append(Problem("kv-cache-dtype", f"--kv-cache-dtype {kvd} is not one of {', '.join(KV_CACHE_DTYPES)}"))
    elif kvd != "auto" and on_gpu and cc is not None and cc < FP8_KV_MIN_CC:
        out.append(Problem("kv-cache-dtype", f"an fp8 KV cache needs compute capability 8.9; the lowest GPU here has {cc[0]}.{cc[1]}"))
    util = flags.get("gpu_memory_utilization")
    if util is not None and not 0 < float(util) <= 1:
        out.append(Problem("gpu-memory-utilization", f"gpu_memory_utilization must be in (0, 1], not {util}"))
    limits = flags.get("limit_mm_per_prompt")
    if isinstance(limits, dict) and any(not isinstance(v, int) or v < 0 for v in limits.values()):
        out.append(Problem("limit-mm-per-prompt", f"limit_mm_per_prompt values must be counts >= 0: {limits}"))
    return out


def nearest_parallel(model: Any, tp: int, pp: int, facts: Any, vllm_version: str | None = None) -> tuple[int, int] | None:
    """The valid (TP, PP) nearest to the request: the largest tensor-parallel size the model
    splits within the GPUs asked for (at most the GPUs there are), then pipeline stages to use
    the rest of them. ``None`` when not even TP 1 works."""
    n = gpu_count(facts)
    total = min(tp * pp, n) if n else tp * pp
    layers = model.num_hidden_layers if model is not None else total
    best: tuple[int, int] | None = None
    for t in (valid_tp_sizes(model, total, vllm_version) if model is not None else range(1, total + 1)):
        p = min(pp, total // t) if t == tp else min(total // t, layers)
        if best is None or (t, t * p) > (best[0], best[0] * best[1]):
            best = (t, p)
    return best


def repair(launch: Launch, model: Any, facts: Any) -> tuple[Launch, list[str]]:
    """The nearest launch that breaks no rule, and one line per change. Values are only ever
    lowered or switched to what the hardware has, never raised past what was asked."""
    out, notes = _repair(launch, model, facts)
    return out, list(notes.values())


def _repair(launch: Launch, model: Any, facts: Any) -> tuple[Launch, dict[str, str]]:
    """:func:`repair`, its notes keyed by the flag each one changed."""
    out = launch.copy()
    notes: dict[str, str] = {}
    flags = out.flags
    pp = int(flags.get("pipeline_parallel_size") or 1)
    tp = int(flags.get("tensor_parallel_size") or 1)
    why = [p.message for p in problems(Launch({"tensor_parallel_size": tp, "pipeline_parallel_size": pp}, vllm_version=launch.vllm_version), model, facts)
           if p.rule in ("tp-invalid", "tp-exceeds-gpus")]
    if why:
        best = nearest_parallel(model, tp, pp, facts, launch.vllm_version)
        if best is not None and best != (tp, pp):
            tp, new_pp = best
            flags["tensor_parallel_size"] = tp
            if new_pp > 1 or "pipeline_parallel_size" in flags:
                flags["pipeline_parallel_size"] = new_pp
            notes["tensor_parallel_size"] = (f"tensor parallel {launch.flags.get('tensor_parallel_size', 1)} -> {tp}"
                                             + (f", pipeline parallel {new_pp}" if new_pp != pp else "") + f": {why[0]}")
    if model is not None:
        v = tp_verdict(model, tp, launch.vllm_version)
        for key, val in v.needs_flags.items():
            if flags.get(key) != val:
                flags[key] = val
                notes[key] = f"--{key.replace('_', '-')} {val}: {v.notes[0] if v.notes else 'needed at TP ' + str(tp)}"
        mml = flags.get("max_model_len")
        if mml is not None and int(mml) > model_max_len(model):
            flags["max_model_len"] = model_max_len(model)
            notes["max_model_len"] = f"max_model_len {mml} -> {model_max_len(model)}: the model's limit (max_position_embeddings)"
    n = gpu_count(facts)
    cc = lowest_cc(facts)
    if n and cc is not None and cc < BF16_MIN_CC and serve_dtype(out, model) == "bfloat16":
        flags["dtype"] = "float16"
        notes["dtype"] = f"dtype float16: compute capability {cc[0]}.{cc[1]} has no bfloat16"
    kvd = str(flags.get("kv_cache_dtype") or "auto")
    if kvd != "auto" and n and cc is not None and cc < FP8_KV_MIN_CC:
        flags["kv_cache_dtype"] = "auto"
        notes["kv_cache_dtype"] = f"kv_cache_dtype auto: an fp8 KV cache needs compute capability 8.9 (lowest here {cc[0]}.{cc[1]})"
    return out, notes


def repair_patch(patch: Patch, base: Launch, model: Any, facts: Any) -> tuple[Patch, list[str]]:
    """``patch`` as it must be to keep ``base`` consistent once applied: e.g. a TP taken from a
    log's numbers becomes the nearest size the model can split and the machine holds; and in the form
    ``base``'s vLLM release takes (an attention backend is a flag from 0.13 on)."""
    patch = for_release(patch, base.vllm_version)
    patched, notes = _repair(base.apply(patch), model, facts)
    keys = set(patch.flags)
    for key in list(keys):
        keys |= _GOES_WITH.get(key, set())
    flags = {k: patched.flags.get(k) for k in keys if k in patch.flags or patched.flags.get(k) != base.flags.get(k)}
    return Patch(flags, dict(patch.env)), [note for key, note in notes.items() if key in keys]


#: flags a repair may have to change together with the one a patch sets
_GOES_WITH = {"tensor_parallel_size": {"pipeline_parallel_size", "mm_encoder_tp_mode"},
              "pipeline_parallel_size": {"tensor_parallel_size"}}
