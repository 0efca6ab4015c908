"""``qvdoctor bench``: predict, then measure, what a multimodal OpenAI-compatible server holds."""

from __future__ import annotations

from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    app.command(
        "bench",
        help=(
            "Load an OpenAI-compatible server (vLLM first) with streaming chat requests carrying "
            "video/image (unique per request), sweep concurrency or rate, find the knee, and set "
            "it next to the plan's prediction. Exit 0: fine, 1: warnings (usage mismatch, failed "
            "requests, client-bound points), 2: no point met the SLOs, 3: could not run; 130: "
            "interrupted (points so far written). --from-json FILE --report DIR renders a saved "
            "--json result (e.g. from a host without matplotlib) without measuring."
        ),
    )(bench)


def bench(
    url: Optional[str] = typer.Option(None, "--url", help="The server's OpenAI base URL, e.g. http://127.0.0.1:8000/v1 (required unless --from-json)."),
    model: Optional[str] = typer.Option(None, "--model", help="Served model name (default: the first of /v1/models)."),
    video: Optional[str] = typer.Option(None, "--video", help="A video file to send (as a data: URL, made unique per request)."),
    image: Optional[str] = typer.Option(None, "--image", help="An image file to send."),
    synthetic_video: Optional[str] = typer.Option(None, "--synthetic-video", metavar="SECONDS@WxH[@FPS]", help="A generated clip (default 4 fps), e.g. 4@320x240."),
    same_media: bool = typer.Option(False, "--same-media", help="Send the same media in every request (caches will hit)."),
    prompt: Optional[str] = typer.Option(None, "--prompt", help="The question asked with the media."),
    concurrency: Optional[str] = typer.Option(None, "--concurrency", metavar="C1,C2,...", help="Concurrencies to sweep (closed loop; default 1,2,4,8,16,32)."),
    rate: Optional[str] = typer.Option(None, "--rate", metavar="R1,R2,...", help="Request rates to sweep (req/s, Poisson arrivals) instead of concurrencies."),
    requests: Optional[int] = typer.Option(None, "--requests", help="Requests per point (default max(16, 4 x load))."),
    duration: Optional[float] = typer.Option(None, "--duration", help="Seconds per point at most."),
    max_time: float = typer.Option(1800.0, "--max-time", help="Seconds for the whole run at most."),
    timeout: float = typer.Option(600.0, "--timeout", help="Seconds one request may take."),
    max_tokens: int = typer.Option(64, "--max-tokens", help="Tokens generated per request (ignore_eos is set)."),
    no_ignore_eos: bool = typer.Option(False, "--no-ignore-eos", help="Do not send vLLM's ignore_eos (servers that reject it)."),
    extra_body: Optional[str] = typer.Option(None, "--extra-body", metavar="JSON", help="A JSON object merged into every request body (e.g. '{\"top_k\": 1}')."),
    slo: Optional[str] = typer.Option(None, "--slo", metavar="ttft=500ms,tpot=50ms", help="SLOs on the p90 (ttft, tpot, itl, e2e; ms or s; ttft_p99=... picks a percentile)."),
    full_sweep: bool = typer.Option(False, "--full-sweep", help="Measure every load, also past saturation (no early stop)."),
    no_ceiling: bool = typer.Option(False, "--no-ceiling", help="Skip the client-ceiling measurement."),
    plan_model: Optional[str] = typer.Option(None, "--plan-model", help="Checkpoint directory to plan the launch from (the prediction)."),
    plan_setting: List[str] = typer.Option([], "--plan-setting", metavar="KEY=VALUE", help="A plan setting (device=cpu, kv_cache_memory_bytes=N, facts=FILE, max_model_len=N, max_num_seqs=N, ...)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the media nonce and arrival times."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    report: Optional[str] = typer.Option(None, "--report", metavar="DIR", help="Write report.md, points.csv, PNG plots and report.html to DIR."),
    from_json: Optional[str] = typer.Option(None, "--from-json", metavar="FILE", help="Measure nothing: render the result a --json run saved in FILE (with --report DIR: the report files; the table; --json: the result again). Exit codes from the saved points, as after a run."),
) -> int:
    from qvdoctor.loadtest.command import run

    return run(dict(locals()))
