"""Implementation of ``qvdoctor plan`` (imported only when the command runs)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from qvdoctor.errors import EXIT_FAIL, EXIT_OK, EXIT_WARN, QvError


def settings_from_options(o: dict[str, Any]) -> Any:
    from qvdoctor.plan import PlanSettings, VideoSpec
    from qvdoctor.plan.video_probe import parse_size, probe_video

    video = None
    if o.get("video") is not None:
        if o.get("video_seconds") is not None or o.get("video_size") is not None:
            raise QvError("--video and --video-seconds/--video-size do not go together", "give a file, or its duration and size")
        video = probe_video(o["video"])
    elif o.get("video_seconds") is not None or o.get("video_size") is not None:
        if o.get("video_seconds") is None or o.get("video_size") is None:
            raise QvError("--video-seconds and --video-size go together", "e.g. --video-seconds 60 --video-size 1920x1080")
        if o["video_seconds"] <= 0 or o.get("video_fps", 30.0) <= 0:
            raise QvError("--video-seconds and --video-fps must be positive")
        w, h = parse_size(o["video_size"])
        video = VideoSpec(float(o["video_seconds"]), w, h, float(o.get("video_fps", 30.0)))
    if o.get("kv_cache_dtype") not in (None, "auto", "fp8", "fp8_e4m3", "fp8_e5m2"):
        raise QvError(f"unknown --kv-cache-dtype {o['kv_cache_dtype']!r}", "use auto or fp8")
    if o.get("mm_encoder_tp_mode") not in (None, "weights", "data"):
        raise QvError(f"unknown --mm-encoder-tp-mode {o['mm_encoder_tp_mode']!r}", "use weights or data")
    for key in ("gpus", "tp", "pp", "max_num_seqs", "max_num_batched_tokens", "kv_cache_memory_bytes"):
        if o.get(key) is not None and o[key] < 1:
            raise QvError(f"--{key.replace('_', '-')} must be at least 1, not {o[key]}")
    return PlanSettings(
        gpus=o.get("gpus"), tp=o.get("tp"), pp=o.get("pp"), max_model_len=o.get("max_model_len"),
        gpu_memory_utilization=o.get("gpu_memory_utilization"), kv_cache_dtype=o.get("kv_cache_dtype"),
        kv_cache_memory_bytes=o.get("kv_cache_memory_bytes"), vllm_version=o.get("vllm_version"),
        device=o.get("device", "cuda"), max_num_seqs=o.get("max_num_seqs"),
        max_num_batched_tokens=o.get("max_num_batched_tokens"), mm_encoder_tp_mode=o.get("mm_encoder_tp_mode"),
        enforce_eager=bool(o.get("enforce_eager")), video=video, pin_kv=bool(o.get("pin_kv")),
    )


def build(model: str, facts_file: Path | None, options: dict[str, Any]) -> tuple[Any, Any, Any]:
    """``(facts, model_info, plan)`` for the options of ``plan`` / ``diagnose --model``."""
    from qvdoctor.doctor.diagnose import load_or_gather
    from qvdoctor.model.info import load_model_info
    from qvdoctor.plan import make_plan

    settings = settings_from_options(options)
    info = load_model_info(model)
    facts = None
    if settings.device == "cuda" or facts_file is not None:
        facts = load_or_gather(facts_file, probe=False)
    return facts, info, make_plan(info, facts, settings)


def model_and_plan(model: str, facts: Any) -> tuple[Any, Any]:
    """For ``diagnose --model``: the model facts, and a plan with default settings when the facts
    show a GPU to plan for (otherwise ``None``: the model's own checks still run)."""
    from qvdoctor.model.info import load_model_info
    from qvdoctor.plan import PlanSettings, make_plan

    info = load_model_info(model)
    if not facts.gpus:
        return info, None
    return info, make_plan(info, facts, PlanSettings())


def plan_names(plan: Any) -> dict[str, Any]:
    """The names checks see for a plan: ``plan``, ``tp``, ``pp``, ``n_gpus``."""
    return {"plan": plan, "tp": plan.tp, "pp": plan.pp, "n_gpus": plan.n_gpus}


def run(**o: Any) -> int:
    from qvdoctor.doctor.context import build_context
    from qvdoctor.doctor.rules import run_checks
    from qvdoctor.facts.snapshot import Facts
    from qvdoctor.doctor.findings import worst_status
    from qvdoctor.plan import render

    if o.get("sweep"):  # plan --sweep (loadtest issue #16): its own module
        from qvdoctor.plan.sweep import run_sweep

        return run_sweep(o)
    if o.get("plot"):
        raise QvError("--plot goes with --sweep", "e.g. --sweep concurrency=1,8,32 --plot mem.png")
    fmt = o.get("fmt", "table")
    if fmt not in ("table", "markdown", "csv"):
        raise QvError(f"unknown --format {fmt!r}", "use table, markdown or csv")
    facts, info, plan = build(o["model"], o.get("facts"), o)
    snapshot = facts if facts is not None else Facts(label="vllm-cpu", provenance="live")
    findings = [f for f in run_checks(build_context(snapshot, model=info, extra=plan_names(plan)))
                if f.family in ("parallel-divisibility", "quant-alignment", "dtype", "kv-cache", "oom", "mm-limits")]
    if o.get("json_out"):
        print(render.to_json(plan, findings=[f.to_dict() for f in findings]))
    elif fmt == "markdown":
        sys.stdout.write(render.to_markdown(plan))
    elif fmt == "csv":
        sys.stdout.write(render.to_csv(plan))
    else:
        render.print_plan(plan)
        if findings:
            from qvdoctor.doctor.render import print_findings

            print()
            print_findings([f for f in findings if f.status != "ok"] or findings)
    status = worst_status(findings)
    return {"fail": EXIT_FAIL, "warn": EXIT_WARN}.get(status, EXIT_OK)
