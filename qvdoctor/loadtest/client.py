"""One timed streaming chat completion: TTFT, inter-token gaps, end-to-end, the server's usage.

Timing follows ``vllm bench serve`` so the two agree: TTFT is the first chunk that carries
content, each later content chunk adds an inter-token latency, TPOT is
``(e2e - TTFT) / (output tokens - 1)`` with output tokens from ``usage`` (else the chunk count)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from qvdoctor.loadtest.httpclient import Connection, HttpError, sse_events

_EMPTY_CONTENT = (b'"content":""', b'"content":null', b'"content": ""', b'"content": null')


@dataclass
class RequestResult:
    ok: bool
    start: float  # perf_counter at send
    ttft: float | None = None  # seconds
    e2e: float | None = None
    itl: list[float] = field(default_factory=list)
    output_tokens: int = 0
    prompt_tokens: int | None = None
    cached_tokens: int | None = None
    error: str = ""
    status: int = 0
    media_items: int = 0
    visual_expected: int | None = None  # qvdoctor's arithmetic for the media sent

    @property
    def tpot(self) -> float | None:
        if self.ttft is None or self.e2e is None or self.output_tokens < 2:
            return None
        return (self.e2e - self.ttft) / (self.output_tokens - 1)


def _has_content(payload: bytes) -> bool:
    """True when a chunk carries generated text, without a JSON parse on the hot path."""
    i = payload.find(b'"content"')
    if i < 0:
        return payload.find(b'"reasoning_content":"') >= 0 and payload.find(b'"reasoning_content":""') < 0
    tail = payload[i:i + 16]
    return not any(tail.startswith(e) for e in _EMPTY_CONTENT)


async def stream_chat(conn: Connection, path: str, body: bytes, timeout: float, *,
                      media_items: int = 0, visual_expected: int | None = None) -> RequestResult:
    """POST ``body`` (a JSON chat request with ``stream: true``) on ``conn`` and time it."""
    res = RequestResult(ok=False, start=time.perf_counter(), media_items=media_items, visual_expected=visual_expected)
    try:
        await asyncio.wait_for(_run(conn, path, body, res), timeout)
    except asyncio.TimeoutError:
        conn.close()
        res.ok, res.error = False, f"timed out after {timeout:g} s"
    except HttpError as exc:
        res.ok, res.error, res.status = False, str(exc), exc.status
    except asyncio.CancelledError:
        conn.close()
        raise
    return res


async def _run(conn: Connection, path: str, body: bytes, res: RequestResult) -> None:
    st = res.start
    status, headers = await conn.request("POST", path, body)
    res.status = status
    if status != 200:
        text = (await conn.read_all(headers)).decode("utf-8", "replace")
        try:
            text = json.loads(text).get("error", {}).get("message", text) if text.startswith("{") else text
        except (ValueError, AttributeError):
            pass
        raise HttpError(f"HTTP {status}: {str(text).strip().splitlines()[0][:200] if str(text).strip() else ''}", status)
    first = last = None
    chunks = 0
    usage: dict[str, Any] | None = None
    error = ""
    async for now, payloads in sse_events(conn, headers):
        for p in payloads:
            if p == b"[DONE]":
                continue
            if b'"usage":{' in p or b'"usage": {' in p:
                ev = json.loads(p)
                usage = ev.get("usage") or usage
            elif b'"error"' in p[:12]:
                try:
                    error = str(json.loads(p).get("error", {}).get("message", p[:200]))
                except (ValueError, AttributeError):
                    error = p[:200].decode("utf-8", "replace")
            if _has_content(p):
                if first is None:
                    first = now
                else:
                    res.itl.append(now - last)
                last = now
                chunks += 1
    end = time.perf_counter()
    if error:
        raise HttpError(f"error in the stream: {error}", 200)
    if first is None:
        raise HttpError("the stream ended without any generated content", 200)
    res.ttft = first - st
    res.e2e = end - st
    res.output_tokens = int((usage or {}).get("completion_tokens") or chunks)
    if usage:
        res.prompt_tokens = usage.get("prompt_tokens")
        details = usage.get("prompt_tokens_details") or {}
        res.cached_tokens = details.get("cached_tokens")
    res.ok = True


def chat_body(model: str, content: list[dict[str, Any]], max_tokens: int, ignore_eos: bool = True) -> bytes:
    """A streaming chat request with usage in the last chunk."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if ignore_eos:
        body["ignore_eos"] = True
    return json.dumps(body, separators=(",", ":")).encode()
