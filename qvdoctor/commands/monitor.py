"""``qvdoctor monitor``: a live view of a running vLLM server's /metrics (and local GPUs)."""

from __future__ import annotations

from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    app.command(
        "monitor",
        help=(
            "Watch a running vLLM server: running/waiting requests, KV-cache use, preemptions, "
            "prompt and generation tokens/s, TTFT and queue-time percentiles from its histograms, "
            "and local GPUs through NVML. Reads every vLLM release's metric names. "
            "--once --json prints one sample for scripts. Exit 3: the server cannot be read."
        ),
    )(monitor)


def monitor(
    url: str = typer.Option(..., "--url", help="The server's base URL (http://HOST:PORT or .../v1); /metrics is read."),
    interval: float = typer.Option(2.0, "--interval", help="Seconds between samples."),
    once: bool = typer.Option(False, "--once", help="Take one sample (rates over --interval) and exit."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (with --once: one object)."),
    duration: Optional[float] = typer.Option(None, "--duration", help="Stop after this many seconds."),
    no_gpu: bool = typer.Option(False, "--no-gpu", help="Do not read local GPUs through NVML."),
) -> int:
    from qvdoctor.loadtest.monitor import run

    return run(url=url, interval=interval, once=once, json_out=json_out, duration=duration, gpu=not no_gpu)
