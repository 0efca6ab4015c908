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

from qvdoctor.loadtest.httpclient import READ_LIMIT, ChunkedDecoder, Connection, HttpError



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


_CONTENT = (b'"content":"', b'"content": "', b'"reasoning_content":"', b'"reasoning":"')
_EMPTY = (b'"content":""', b'"content": ""', b'"reasoning_content":""', b'"reasoning":""')


def content_events(block: bytes) -> int:
    """Events in ``block`` (complete SSE events) that carry generated text: counted with
    ``bytes.count`` (no JSON parse on the hot path; a quote inside a JSON string is escaped, so
    the key patterns only match keys)."""
    return sum(block.count(c) for c in _CONTENT) - sum(block.count(e) for e in _EMPTY)


def _timeout(seconds: float) -> Any:
    return asyncio.timeout(seconds) if hasattr(asyncio, "timeout") else None


async def stream_chat(conn: Connection, path: str, body: bytes, timeout: float, *,
                      media_items: int = 0, visual_expected: int | None = None) -> RequestResult:
    """POST ``body`` (a JSON chat request with ``stream: true``) on ``conn`` and time it."""
    res = RequestResult(ok=False, start=time.perf_counter(), media_items=media_items, visual_expected=visual_expected)
    try:
        cm = _timeout(timeout)
        if cm is None:  # Python 3.10
            await asyncio.wait_for(_run(conn, path, body, res), timeout)
        else:
            async with cm:
                await _run(conn, path, body, res)
    except asyncio.TimeoutError:
        conn.close()
        res.ok, res.error = False, f"timed out after {timeout:g} s"
    except HttpError as exc:
        res.ok, res.error, res.status = False, str(exc), exc.status
    except (ConnectionError, OSError, ValueError) as exc:
        conn.close()
        res.ok, res.error = False, f"broken response ({type(exc).__name__}: {exc})"
    except asyncio.CancelledError:
        conn.close()
        raise
    return res


def _events_with(block: bytes, key: bytes) -> list[dict[str, Any]]:
    out = []
    for ev in block.split(b"\n\n"):
        ev = ev.strip()
        if key in ev and ev.startswith(b"data:"):
            try:
                out.append(json.loads(ev[5:]))
            except ValueError:
                continue
    return out


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
    reader = conn.reader
    assert reader is not None
    chunked = headers.get(b"transfer-encoding", b"").lower() == b"chunked"
    left = int(headers[b"content-length"]) if not chunked and b"content-length" in headers else -1
    if not chunked and left < 0:
        conn.reusable = False
    dec = ChunkedDecoder() if chunked else None
    clock = time.perf_counter
    first = last = 0.0
    chunks = 0
    itl = res.itl
    usage: dict[str, Any] | None = None
    error = ""
    pending = b""
    while True:
        data = await reader.read(READ_LIMIT)
        now = clock()
        if not data:
            if dec is not None or left > 0:
                conn.close()
                raise HttpError("response cut short (connection closed)")
            break
        if dec is not None:
            data = dec.feed(data)
        else:
            left -= len(data)
        pending = pending + data if pending else data
        cut = pending.rfind(b"\n\n")
        if cut >= 0:
            block, pending = pending[:cut], pending[cut + 2:]
            n = content_events(block)
            if n:
                if chunks == 0:
                    first = now
                    itl.extend([0.0] * (n - 1))
                else:
                    itl.append(now - last)
                    if n > 1:
                        itl.extend([0.0] * (n - 1))
                last = now
                chunks += n
            if b'"usage":{' in block or b'"usage": {' in block:
                for ev in _events_with(block, b'"usage"'):
                    usage = ev.get("usage") or usage
            if b'"error"' in block:
                for ev in _events_with(block, b'"error"'):
                    if isinstance(ev.get("error"), dict):
                        error = str(ev["error"].get("message", ev["error"]))
        if (dec is not None and dec.done) or left == 0:
            break
    end = clock()
    if error:
        raise HttpError(f"error in the stream: {error}", 200)
    if chunks == 0:
        made = (usage or {}).get("completion_tokens")
        if made:  # random (dummy) weights sample ids the tokenizer spells as "": no text, no timing
            raise HttpError(f"the server generated {made} tokens but streamed no text (random weights? their ids may "
                            "decode to nothing): restrict sampling to spellable ids with --extra-body "
                            "'{\"allowed_token_ids\": [...]}'", 200)
        raise HttpError("the stream ended without any generated content", 200)
    res.ttft = first - st
    res.e2e = end - st
    res.output_tokens = int((usage or {}).get("completion_tokens") or chunks)
    if usage:
        res.prompt_tokens = usage.get("prompt_tokens")
        details = usage.get("prompt_tokens_details") or {}
        res.cached_tokens = details.get("cached_tokens")
    res.ok = True


def chat_body(model: str, content: list[dict[str, Any]], max_tokens: int, ignore_eos: bool = True,
              extra: dict[str, Any] | None = None) -> bytes:
    """A streaming chat request with usage in the last chunk; ``extra`` (``--extra-body``) on top."""
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
    body.update(extra or {})
    return json.dumps(body, separators=(",", ":")).encode()
