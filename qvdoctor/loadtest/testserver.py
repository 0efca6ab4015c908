"""A local OpenAI-compatible streaming chat server with exactly known behaviour.

* do-nothing (defaults): answers every request at once, ``max_tokens`` chunks as fast as it
  can write them; the client ceiling is measured against it;
* ``--slots N --ttft S --tpot S``: at most N requests run at once (the rest wait in a queue),
  the first token comes ``ttft`` after a request gets a slot, then one token every ``tpot``;
* ``--visual-tokens N``: each image/video item counts N visual tokens (+2 for vision
  start/end, as Qwen2.5-VL's template) in ``usage.prompt_tokens``; ``--misreport-usage K``
  adds K tokens per media item to the prompt count (the switch the usage check must catch);
* ``--fail-every K``: every K-th request is answered HTTP 500 at once;
* ``--preprocess S``: like vLLM's API server processing media, each request first passes one
  lane that takes S seconds per request, one at a time, before it joins the engine's queue (its
  TTFT counts the lane; the queue histogram does not);
* ``--unspellable``: like random (dummy) weights with a small tokenizer, every token decodes to
  "" (usage still counts them) unless the request restricts sampling with ``allowed_token_ids``;
* ``/metrics`` in vLLM 0.32's names (``--metric-names old``: the pre-0.10 ``gpu_`` names),
  with the multimodal cache counting a repeated media URL as a hit;
* ``GET /debug/requests``: what the server itself did for each timed request (``--ttft`` or
  ``--tpot`` set), as ``time.perf_counter()`` values — on Linux CLOCK_MONOTONIC, the same clock
  in every process, so a client on this machine can set them against its own: ``head`` (request
  headers read), ``arrival`` (body read and parsed), ``admit`` (got a slot), ``first`` (first
  token written), ``last`` (last token written), ``end`` (the stream's last byte written),
  ``itl`` (the gaps between token writes), ``tokens``, ``id`` (the client's ``x-request-id``
  header, if any). ``?clear=1`` empties the list after reading it. The tests set what a client
  measured against this record of the same requests.

Run: ``python -m qvdoctor.loadtest.testserver [--port 0] ...``; prints ``PORT <n>`` when ready.
:func:`spawn` starts one in a child process (own process group) and always stops it."""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

BOUNDS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0)


@dataclass
class Hist:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BOUNDS) + 1))
    total: float = 0.0
    n: int = 0

    def observe(self, v: float) -> None:
        self.n += 1
        self.total += v
        for i, b in enumerate(BOUNDS):
            if v <= b:
                self.counts[i] += 1
                return
        self.counts[-1] += 1

    def lines(self, name: str, labels: str) -> list[str]:
        out, acc = [f"# TYPE {name} histogram"], 0
        for b, c in zip(BOUNDS, self.counts):
            acc += c
            out.append(f'{name}_bucket{{{labels},le="{b}"}} {acc}')
        out.append(f'{name}_bucket{{{labels},le="+Inf"}} {self.n}')
        out += [f"{name}_sum{{{labels}}} {self.total}", f"{name}_count{{{labels}}} {self.n}"]
        return out


@dataclass
class Config:
    model: str = "test-model"
    slots: int = 0  # 0: unlimited
    ttft: float = 0.0
    tpot: float = 0.0
    visual_tokens: int = 0
    misreport_usage: int = 0
    fail_every: int = 0
    metric_names: str = "new"
    kv_blocks: int = 1000
    block_size: int = 16
    unspellable: bool = False
    preprocess: float = 0.0


class State:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.sem = asyncio.Semaphore(cfg.slots) if cfg.slots > 0 else None
        self.lane = asyncio.Lock()  # the API server's one lane (--preprocess)
        self.running = self.waiting = self.seen = 0
        self.counters = {"prompt_tokens": 0, "generation_tokens": 0, "mm_q": 0, "mm_h": 0, "pc_q": 0, "pc_h": 0,
                         "success": 0, "preemptions": 0}
        self.hist = {k: Hist() for k in ("ttft", "queue", "prefill", "decode", "e2e", "itl")}
        self.media_seen: set[int] = set()
        self.blobs: dict[tuple[int, int], bytes] = {}
        self.records: collections.deque[dict[str, Any]] = collections.deque(maxlen=100_000)

    def metrics(self) -> str:
        c, old = self.counters, self.cfg.metric_names == "old"
        lab = f'engine="0",model_name="{self.cfg.model}"'
        kv = (self.running / self.cfg.slots) if self.cfg.slots else 0.0
        lines = [
            f"vllm:num_requests_running{{{lab}}} {self.running}",
            f"vllm:num_requests_waiting{{{lab}}} {self.waiting}",
            f"vllm:{'gpu_cache_usage_perc' if old else 'kv_cache_usage_perc'}{{{lab}}} {kv}",
            f"vllm:num_preemptions_total{{{lab}}} {c['preemptions']}",
            f"vllm:prompt_tokens_total{{{lab}}} {c['prompt_tokens']}",
            f"vllm:generation_tokens_total{{{lab}}} {c['generation_tokens']}",
            f"vllm:request_success_total{{{lab},finished_reason=\"length\"}} {c['success']}",
            f"vllm:{'gpu_' if old else ''}prefix_cache_queries_total{{{lab}}} {c['pc_q']}",
            f"vllm:{'gpu_' if old else ''}prefix_cache_hits_total{{{lab}}} {c['pc_h']}",
            f'vllm:cache_config_info{{block_size="{self.cfg.block_size}",engine="0",num_gpu_blocks="{self.cfg.kv_blocks}"}} 1.0',
        ]
        if not old:
            lines += [f"vllm:mm_cache_queries_total{{{lab}}} {c['mm_q']}", f"vllm:mm_cache_hits_total{{{lab}}} {c['mm_h']}"]
        names = {"ttft": "vllm:time_to_first_token_seconds", "queue": "vllm:request_queue_time_seconds",
                 "prefill": "vllm:request_prefill_time_seconds", "decode": "vllm:request_decode_time_seconds",
                 "e2e": "vllm:e2e_request_latency_seconds",
                 "itl": "vllm:time_per_output_token_seconds" if old else "vllm:inter_token_latency_seconds"}
        for k, name in names.items():
            lines += self.hist[k].lines(name, lab)
        return "\n".join(lines) + "\n"


def _prompt_tokens(state: State, body: dict[str, Any]) -> int:
    words, items = 0, 0
    for msg in body.get("messages") or []:
        content = msg.get("content")
        if isinstance(content, str):
            words += len(content.split())
            continue
        for part in content or []:
            kind = part.get("type")
            if kind == "text":
                words += len(str(part.get("text", "")).split())
            elif kind in ("image_url", "video_url"):
                items += 1
                url = (part.get(kind) or {}).get("url", "")
                h = hash(url)
                state.counters["mm_q"] += 1
                if h in state.media_seen:
                    state.counters["mm_h"] += 1
                state.media_seen.add(h)
    return 10 + words + items * (state.cfg.visual_tokens + 2 + state.cfg.misreport_usage)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def _chat(state: State, body: dict[str, Any], writer: asyncio.StreamWriter, head_t: float = 0.0,
                request_id: str | None = None) -> None:
    cfg = state.cfg
    arrival = time.perf_counter()
    max_tokens = int(body.get("max_completion_tokens") or body.get("max_tokens") or 16)
    prompt = _prompt_tokens(state, body)
    spelled = not (cfg.unspellable and not body.get("allowed_token_ids"))  # dummy weights: tokens, no text
    if cfg.preprocess > 0:
        async with state.lane:
            await asyncio.sleep(cfg.preprocess)
    queued = time.perf_counter()
    state.waiting += 1
    if state.sem is not None:
        await state.sem.acquire()
    state.waiting -= 1
    state.running += 1
    admit = time.perf_counter()
    try:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        head = '{"id":"chatcmpl-test","object":"chat.completion.chunk","created":%d,"model":"%s","choices":[' % (int(time.time()), cfg.model)
        role = _chunk(b"data: " + (head + '{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}').encode() + b"\n\n")
        first = last = None
        gaps: list[float] = []
        if cfg.ttft <= 0 and cfg.tpot <= 0:  # do-nothing: the whole stream in one write (the client is what is measured)
            key = (max_tokens, prompt, spelled)
            blob = state.blobs.get(key)
            if blob is None:
                parts = [role]
                for i in range(max_tokens):
                    fin = '"length"' if i == max_tokens - 1 else "null"
                    parts.append(_chunk(b"data: " + (head + '{"index":0,"delta":{"content":"%s"},"finish_reason":%s}]}' % (f"t{i} " if spelled else "", fin)).encode() + b"\n\n"))
                usage = {"prompt_tokens": prompt, "completion_tokens": max_tokens, "total_tokens": prompt + max_tokens}
                parts.append(_chunk(b"data: " + (head + '],"usage":' + json.dumps(usage) + "}").encode() + b"\n\n"))
                parts.append(_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
                blob = state.blobs[key] = b"".join(parts)
            writer.write(blob)
            await writer.drain()
            state.counters["prompt_tokens"] += prompt
            state.counters["generation_tokens"] += max_tokens
            state.counters["success"] += 1
            return
        for i in range(max_tokens):
            due = admit + cfg.ttft + i * cfg.tpot
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            fin = '"length"' if i == max_tokens - 1 else "null"
            ev = head + '{"index":0,"delta":{"content":"%s"},"finish_reason":%s}]}' % (f"t{i} " if spelled else "", fin)
            if i == 0:  # like vLLM: the role chunk goes out with the first token, not before
                writer.write(role)
            writer.write(_chunk(b"data: " + ev.encode() + b"\n\n"))
            await writer.drain()
            now = time.perf_counter()
            if first is None:
                first = now
            else:
                state.hist["itl"].observe(now - last)
                gaps.append(now - last)
            last = now
        usage = {"prompt_tokens": prompt, "completion_tokens": max_tokens, "total_tokens": prompt + max_tokens}
        ev = head + '],"usage":' + json.dumps(usage) + "}"
        writer.write(_chunk(b"data: " + ev.encode() + b"\n\n") + _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        await writer.drain()
        end = time.perf_counter()
        c = state.counters
        c["prompt_tokens"] += prompt
        c["generation_tokens"] += max_tokens
        c["success"] += 1
        c["pc_q"] += prompt
        h = state.hist
        h["queue"].observe(admit - queued)
        h["prefill"].observe((first or end) - admit)
        h["ttft"].observe((first or end) - arrival)
        h["decode"].observe(end - (first or end))
        h["e2e"].observe(end - arrival)
        state.records.append({"id": request_id, "head": head_t, "arrival": arrival, "admit": admit, "first": first,
                              "last": last, "end": end, "tokens": max_tokens, "itl": gaps})
    finally:
        state.running -= 1
        if state.sem is not None:
            state.sem.release()


def _plain(status: str, body: bytes, ctype: str = "application/json") -> bytes:
    return (f"HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {len(body)}\r\n\r\n").encode() + body


async def _handle(state: State, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                raw = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            head_t = time.perf_counter()
            lines = raw.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            length, request_id = 0, None
            for line in lines[1:]:
                low = line.lower()
                if low.startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
                elif low.startswith("x-request-id:"):
                    request_id = line.split(":", 1)[1].strip()
            body = await reader.readexactly(length) if length else b""
            if path.endswith("/chat/completions") and method == "POST":
                state.seen += 1
                if state.cfg.fail_every and state.seen % state.cfg.fail_every == 0:
                    writer.write(_plain("500 Internal Server Error", b'{"error":{"message":"injected failure","code":500}}'))
                    await writer.drain()
                    continue
                try:
                    req = json.loads(body)
                except ValueError:
                    writer.write(_plain("400 Bad Request", b'{"error":{"message":"body is not JSON"}}'))
                    continue
                await _chat(state, req, writer, head_t, request_id)
            elif path == "/metrics":
                writer.write(_plain("200 OK", state.metrics().encode(), "text/plain; version=0.0.4"))
            elif path.split("?")[0] == "/debug/requests":
                out = json.dumps({"requests": list(state.records)}).encode()
                if path.endswith("?clear=1"):
                    state.records.clear()
                writer.write(_plain("200 OK", out))
            elif path.endswith("/models"):
                writer.write(_plain("200 OK", json.dumps({"object": "list", "data": [{"id": state.cfg.model, "object": "model"}]}).encode()))
            elif path == "/health":
                writer.write(_plain("200 OK", b""))
            else:
                writer.write(_plain("404 Not Found", b'{"error":{"message":"not found"}}'))
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def serve(cfg: Config, port: int = 0, host: str = "127.0.0.1") -> None:
    state = State(cfg)
    server = await asyncio.start_server(lambda r, w: _handle(state, r, w), host, port, limit=1 << 24, backlog=1024)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m qvdoctor.loadtest.testserver", description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--model", default="test-model")
    ap.add_argument("--slots", type=int, default=0)
    ap.add_argument("--ttft", type=float, default=0.0)
    ap.add_argument("--tpot", type=float, default=0.0)
    ap.add_argument("--visual-tokens", type=int, default=0)
    ap.add_argument("--misreport-usage", type=int, default=0)
    ap.add_argument("--fail-every", type=int, default=0)
    ap.add_argument("--metric-names", choices=("new", "old"), default="new")
    ap.add_argument("--kv-blocks", type=int, default=1000)
    ap.add_argument("--block-size", type=int, default=16)
    ap.add_argument("--unspellable", action="store_true")
    ap.add_argument("--preprocess", type=float, default=0.0)
    a = ap.parse_args(argv)
    cfg = Config(a.model, a.slots, a.ttft, a.tpot, a.visual_tokens, a.misreport_usage, a.fail_every, a.metric_names,
                 a.kv_blocks, a.block_size, a.unspellable, a.preprocess)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        import uvloop  # type: ignore[import-not-found]

        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(serve(cfg, a.port))
    except KeyboardInterrupt:
        pass


@contextlib.contextmanager
def spawn(*args: str, cpu: int | None = None) -> Iterator[str]:
    """Start a test server in a child process (its own process group); yields its base URL
    ``http://127.0.0.1:PORT/v1``; the child is killed on every exit path. ``cpu`` pins it."""
    argv = [sys.executable, "-m", "qvdoctor.loadtest.testserver", *args]
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        argv = ["taskset", "-c", str(cpu), *argv] if _has_taskset() else argv
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [_root(), os.environ.get("PYTHONPATH", "")] if p)}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                            start_new_session=True, env=env, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the test server did not start (exit {proc.poll()})")
        yield f"http://127.0.0.1:{int(line.split()[1])}/v1"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _has_taskset() -> bool:
    import shutil

    return shutil.which("taskset") is not None


if __name__ == "__main__":
    main()
