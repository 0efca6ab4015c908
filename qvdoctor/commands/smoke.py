"""``qvdoctor smoke``: one real video inference; patch the flags until the engine runs."""

from __future__ import annotations

from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    app.command(
        "smoke",
        help=(
            "Run one real video inference (vLLM offline, vllm serve, or transformers) with flags "
            "planned for this machine; when the engine fails, triage its log, apply the fix and "
            "retry. Ends with the 'vllm serve' command that worked. "
            "Exit 0: an attempt succeeded, 2: none did, 3: bad input.\n\n"
            "Example: qvdoctor smoke --video clip.mp4 --model Qwen/Qwen2.5-VL-3B-Instruct --emit-serve-cmd serve.sh"
        ),
    )(smoke)


def smoke(
    video: Optional[str] = typer.Option(None, "--video", help="Video file; without it a synthetic clip is generated."),
    model: Optional[str] = typer.Option(None, "--model", help="Model directory, cached repo id, or 'tiny-random'."),
    prompt: str = typer.Option("Describe this video.", "--prompt", help="Question asked about the video."),
    backend: str = typer.Option("vllm", "--backend", help="vllm (offline LLM), vllm-serve, or transformers."),
    max_attempts: int = typer.Option(4, "--max-attempts", help="Most engine launches to try."),
    flag: List[str] = typer.Option([], "--flag", metavar="KEY=VALUE", help="Set a vLLM flag (max_model_len=8192, limit_mm_per_prompt='{\"video\":2}', name=none removes it); env:NAME=VALUE sets an environment variable."),
    num_videos: int = typer.Option(1, "--num-videos", help="Copies of the video in the prompt."),
    max_tokens: int = typer.Option(32, "--max-tokens", help="Tokens to generate."),
    timeout: float = typer.Option(900.0, "--timeout", help="Seconds one attempt may take."),
    workdir: Optional[str] = typer.Option(None, "--workdir", help="Where attempts keep their logs (default: a new directory under ~/.cache/qvdoctor/smoke)."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    emit_serve_cmd: Optional[str] = typer.Option(None, "--emit-serve-cmd", metavar="FILE", help="Write the final 'vllm serve' command line to FILE."),
    emit_config: Optional[str] = typer.Option(None, "--emit-config", metavar="FILE", help="Write a YAML file for 'vllm serve --config FILE'."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Stream the engine's log to stderr."),
    load_format: Optional[str] = typer.Option(None, "--load-format", help="dummy: random weights of the real shapes (the model directory needs only config.json, preprocessor_config.json and a tokenizer); checks a configuration before the weights are downloaded."),
) -> int:
    import json
    import signal
    import sys

    import importlib.util

    from qvdoctor.errors import EXIT_FAIL, EXIT_OK, QvError

    missing = [m for m in ("numpy", "av", "PIL") if importlib.util.find_spec(m) is None]
    if missing:
        raise QvError(f"qvdoctor smoke decodes video with PyAV and numpy; missing: {', '.join(missing)}",
                      "pip install 'qvdoctor[video]' (or: pip install av numpy pillow)")
    from qvdoctor.smoke import SmokeOptions, run_smoke
    from qvdoctor.smoke.report import render_text
    from qvdoctor.smoke.session import default_workdir

    workdir = workdir or str(default_workdir())

    def on_event(kind: str, data: dict) -> None:
        if kind == "attempt-start":
            flags = " ".join(f"{k}={v}" for k, v in data["flags"].items())
            print(f"attempt {data['number']}: {flags}", file=sys.stderr, flush=True)
        elif kind == "attempt-failed":
            f = data.get("finding")
            print(f"  failed: {f['id'] + ': ' + (f.get('cause') or '') if f else 'no known signature'}", file=sys.stderr, flush=True)
        elif kind == "patch":
            p = data["patch"]
            changes = ", ".join(f"{k}={v}" for k, v in {**p["flags"], **p["env"]}.items())
            print(f"  patch: {changes}", file=sys.stderr, flush=True)
        elif kind == "attempt-ok":
            print("  ok", file=sys.stderr, flush=True)

    def on_line(line: str) -> None:
        print("  | " + line, file=sys.stderr, flush=True)

    def _term(signum, frame):  # SIGTERM cleans up like Ctrl-C: engines are stopped, logs kept
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _term)
    try:
        report = run_smoke(
            SmokeOptions(video=video, model=model, prompt=prompt, backend=backend, max_attempts=max_attempts,
                         flags=list(flag), num_videos=num_videos, max_tokens=max_tokens, timeout_s=timeout,
                         workdir=workdir, emit_serve_cmd=emit_serve_cmd, emit_config=emit_config,
                         load_format=load_format),
            on_event=on_event,
            on_line=on_line if verbose else None,
        )
    except KeyboardInterrupt:  # the engine's process group is already stopped when this arrives
        print(f"error: interrupted; the engine was stopped (logs kept in {workdir})", file=sys.stderr)
        raise typer.Exit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    if json_out:
        print(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        print(render_text(report))
    return EXIT_OK if report.ok else EXIT_FAIL
