"""The evaluation context of check entries: facts plus the helper functions checks may call."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from qvdoctor import compat
from qvdoctor.facts.snapshot import Facts, LibraryFacts

from qvdoctor.doctor.expr import unwrap as _unwrap

GIB = 1024**3
MIB = 1024**2


def _lib_runs_on(lib: LibraryFacts, cc: str, driver_cuda: str | None = None) -> bool:
    from qvdoctor.kernels import runs_on

    return runs_on(lib.sass, lib.ptx, cc, driver_cuda, lib.ptx_isa)


# Libraries every Qwen2.5-VL serving run loads; others (torch's linalg, NVSHMEM, FlashAttention)
# only matter when the feature that needs them is used.
SERVING_LIBRARIES = re.compile(r"/(libtorch_cuda\.so|_C\.abi3\.so|_C\.so|_C\.cpython[^/]*\.so|_moe_C[^/]*\.so|cumem_allocator[^/]*\.so)$")


def is_serving_library(lib: LibraryFacts) -> bool:
    return bool(SERVING_LIBRARIES.search(lib.path)) and "flash_attn" not in lib.path


def _divisors(n: int | None) -> list[int]:
    return [d for d in range(1, int(n) + 1) if n and n % d == 0] if n else []


def _fmt_bytes(n: float | None) -> str:
    if n is None:
        return "unknown"
    for unit, size in (("GiB", GIB), ("MiB", MIB), ("KiB", 1024)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def _quant_problems(model: Any, tp: int) -> list[str]:
    from qvdoctor.plan.parallel import quant_problems

    return quant_problems(model, tp) if model is not None and tp else []


def _quant_min_cc(method: str | None) -> str | None:
    from qvdoctor.plan.parallel import QUANT_MIN_CC

    return QUANT_MIN_CC.get(str(method)) if method else None


def _flag_line(flags: dict[str, Any] | None) -> str:
    """``{"mm_encoder_attn_backend": "TORCH_SDPA"}`` -> ``--mm-encoder-attn-backend TORCH_SDPA`` (shell-quoted)."""
    from qvdoctor.doctor.expr import unwrap
    from qvdoctor.launch import flag_args

    return shlex.join(flag_args(dict(unwrap(flags) or {})))


def _attention_flag(backend: str) -> str:
    """vLLM >= 0.13's attention backend flag, as one shell-safe line: --attention-config '{"backend":"X"}'."""
    return _flag_line({"attention_config": {"backend": backend}})


def _attention_setting(backend: str, vllm_version: str | None) -> str:
    """How ``vllm_version`` selects an attention backend: the variable before 0.13, the flag from then on
    (the rule :func:`qvdoctor.launch.for_release` applies to a patch)."""
    from qvdoctor.launch import ATTENTION_ENV, takes_attention_flag

    return _attention_flag(backend) if takes_attention_flag(vllm_version) else f"{ATTENTION_ENV}={backend}"


def _runnable_backend(min_cc: str | None, vllm_version: str | None) -> str:
    """A decoder attention backend that runs on every GPU here: FLASH_ATTN from compute capability 8.0,
    below it (or on unknown GPUs) what the release uses there (XFORMERS before 0.10.2, TRITON_ATTN after)."""
    if min_cc and not compat.version_lt(min_cc, "8.0"):
        return "FLASH_ATTN"
    row = compat.pre_ampere(vllm_version)
    return row["decoder"] if row else "XFORMERS"


def _video_max_pixels(plan: Any) -> int | None:
    """The largest per-frame max_pixels (a multiple of 28×28, at most the launch's) at which the
    plan's video fits its largest max_model_len; ``None`` when even the smallest frames do not."""
    from qvdoctor.plan.core import TEXT_MARGIN

    plan = _unwrap(plan)
    frames = max(v.nframes for v in (plan.video_client, plan.video_server) if v is not None)
    unit = 28 * 28
    budget = (plan.max_model_len_fit - TEXT_MARGIN) // max(1, -(-frames // 2))
    best = budget * unit
    if plan.max_pixels:
        best = min(best, plan.max_pixels // unit * unit)
    from qvdoctor.model.vision_tokens import VIDEO_MIN_PIXELS

    return best if best >= VIDEO_MIN_PIXELS else None  # below it qwen-vl-utils and vLLM resize up again


def _kv_dict(text: Any) -> dict[str, Any] | None:
    """``image=4,audio=1`` (the key=value syntax older vLLM took for dict flags) as a dict, numbers as
    numbers; ``None`` when the text is not of that form."""
    if not isinstance(text, str):
        return None
    out: dict[str, Any] = {}
    for part in text.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep or not key.strip().isidentifier() or not value.strip():
            return None
        value = value.strip()
        out[key.strip()] = int(value) if value.isdigit() else float(value) if value.replace(".", "", 1).isdigit() else value
    return out or None


FUNCTIONS: dict[str, Any] = {
    "len": lambda x: len(x) if x is not None else 0,
    "min": min,
    "max": max,
    "any": any,
    "all": all,
    "sorted": sorted,
    "int": int,
    "float": float,
    "str": str,
    "round": round,
    "abs": abs,
    "values": lambda d: list(d.values()) if d else [],
    "join": lambda xs, sep=", ": sep.join(str(x) for x in xs or []),
    "version_lt": compat.version_lt,
    "version_ge": lambda a, b: bool(compat.version_key(a)) and bool(compat.version_key(b)) and not compat.version_lt(a, b),
    "cc_lt": lambda a, b: compat.version_lt(a, b),
    "cc_ge": lambda a, b: bool(a) and not compat.version_lt(a, b),
    "cuda_of": compat.cuda_of,
    "driver_floor": compat.driver_floor,
    "minor_compat_floor": compat.minor_compat_floor,
    "pre_ampere": compat.pre_ampere,
    "divisors": _divisors,
    "round_down": lambda x, m: (int(x) // int(m)) * int(m),
    "gib": lambda n: round(n / GIB, 1) if n is not None else None,
    "mib": lambda n: round(n / MIB) if n is not None else None,
    "fmt_bytes": _fmt_bytes,
    "is_serving_library": is_serving_library,
    "sm": lambda cc: "sm_" + str(cc).replace(".", "") if cc else None,
    "snake": lambda name: str(name).replace("-", "_") if name else None,  # a CLI flag's engine-argument name
    "kv_dict": _kv_dict,
    # the same dict as one shell-safe JSON word for a command line: '{"image":4,"audio":1}'
    "json_arg": lambda text: shlex.quote(json.dumps(_kv_dict(text), separators=(",", ":"))) if _kv_dict(text) else None,
    "quant_problems": _quant_problems,
    "quant_min_cc": _quant_min_cc,
    "flag_line": _flag_line,
    "attention_flag": _attention_flag,
    "attention_setting": _attention_setting,  # VLLM_ATTENTION_BACKEND=X before vLLM 0.13, the flag from 0.13
    "runnable_backend": _runnable_backend,
    "video_max_pixels": _video_max_pixels,
}


def build_context(facts: Facts, model: Any = None, extra: dict[str, Any] | None = None, launch: Any = None) -> dict[str, Any]:
    """Names visible to check expressions. ``extra`` adds e.g. ``log`` numbers or ``plan`` results.

    ``launch`` (a :class:`qvdoctor.launch.Launch`) is what the checks judge: ``flags`` are its
    flags, ``env`` the machine's environment with the launch's on top, ``serve_dtype`` the data
    type it serves in. Without one, checks judge a plain ``vllm serve`` on this machine."""
    from qvdoctor.consistency import serve_dtype
    from qvdoctor.launch import Launch

    launch = launch if launch is not None else Launch()
    packages = facts.packages
    gpus = facts.nvidia.gpus
    ccs = sorted({g.cc for g in gpus}, key=compat.version_key)
    driver_cuda = facts.nvidia.cuda_driver_version

    def missing_ccs(lib: LibraryFacts) -> list[str]:
        """The GPUs' compute capabilities this library has no loadable kernel for."""
        return [cc for cc in ccs if not _lib_runs_on(lib, cc, driver_cuda)]

    names: dict[str, Any] = {
        **FUNCTIONS,
        "facts": facts,
        "nvidia": facts.nvidia,
        "gpus": gpus,
        "gpu": gpus[0] if gpus else None,
        "ccs": ccs,
        "min_cc": ccs[0] if ccs else None,
        "driver": facts.nvidia.driver_version,
        "driver_cuda": driver_cuda,
        "packages": packages,
        "pkg": packages.get,
        "version": lambda name: packages[name].version if name in packages else None,
        "torch": packages.get("torch"),
        "vllm": packages.get("vllm"),
        "transformers": packages.get("transformers"),
        "xformers": packages.get("xformers"),
        "flash_attn": packages.get("flash_attn"),
        "libraries": facts.libraries,
        "probe": facts.probe,
        "system": facts.system,
        "env": {**facts.system.env, **launch.env},
        "launch": launch,
        "flags": launch.flags,
        "serve_dtype": serve_dtype(launch, model),
        "model": model,
        "cluster": None,  # qvdoctor cluster: the ClusterView (qvdoctor/cluster/view.py) for checks/cluster/
        "plan": None,  # the plan (qvdoctor.plan.Plan) and its settings, given through ``extra``
        "tp": None,
        "pp": None,
        "n_gpus": None,
        "missing_ccs": missing_ccs,
        "runs_on": lambda lib, cc: _lib_runs_on(lib, cc, driver_cuda),
    }
    xformers_libs = [lib for lib in facts.libraries if lib.package == "xformers" and not lib.error]
    names["launch_has"] = lambda wanted: all(launch.flags.get(k) == v for k, v in dict(_unwrap(wanted) or {}).items())
    names["xformers_runs"] = not any(missing_ccs(lib) for lib in xformers_libs)
    names.update(extra or {})
    return names
