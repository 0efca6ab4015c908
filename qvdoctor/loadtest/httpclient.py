"""A raw asyncio HTTP/1.1 client for streamed (SSE) responses, with keep-alive connections.

Why not httpx/aiohttp: per streamed token the work here is one chunk header, one read and a
bytes split; no per-chunk object layers. Reads use a 4 MiB stream limit (a small read buffer
is a known way for a load generator to become the bottleneck). Measured against httpx and
``vllm bench serve`` in bench/bench_client.py."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import AsyncIterator
from urllib.parse import urlsplit

READ_LIMIT = 4 * 1024 * 1024


class ChunkedDecoder:
    """Incremental HTTP/1.1 chunked transfer decoding (every complete chunk of a socket read at once)."""

    def __init__(self) -> None:
        self.buf = b""
        self.done = False

    def feed(self, data: bytes) -> bytes:
        buf = self.buf + data if self.buf else data
        out = []
        pos, n = 0, len(buf)
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            size = int(buf[pos:eol].split(b";", 1)[0], 16)
            if size == 0:
                if n - (eol + 2) >= 2:  # the empty trailer line
                    self.done = True
                    pos = n
                break
            end = eol + 2 + size
            if end + 2 > n:
                break
            out.append(buf[eol + 2:end])
            pos = end + 2
        self.buf = buf[pos:]
        return b"".join(out) if len(out) != 1 else out[0]



class HttpError(Exception):
    """A non-200 answer (``status`` > 0) or a broken connection (``status`` 0)."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    base_path: str  # e.g. "/v1"

    @classmethod
    def parse(cls, url: str) -> "Endpoint":
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"{url!r} is not an http://HOST:PORT/... URL")
        return cls(parts.hostname, parts.port or 80, parts.path.rstrip("/"))

    @property
    def root(self) -> str:
        return f"http://{self.host}:{self.port}"


class Connection:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, endpoint: Endpoint):
        self.endpoint = endpoint
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.reusable = False

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.endpoint.host, self.endpoint.port, limit=READ_LIMIT)
        self.reusable = True

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None
        self.reusable = False

    async def _head(self, method: str, path: str, body: bytes, content_type: str) -> tuple[int, dict[bytes, bytes]]:
        if self.writer is None or not self.reusable:
            self.close()
            await self.open()
        assert self.reader is not None and self.writer is not None
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.endpoint.host}:{self.endpoint.port}\r\n"
                f"Content-Type: {content_type}\r\nAccept: */*\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self.writer.write(body)
        await self.writer.drain()
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self.close()
            raise HttpError(f"connection closed before the response ({type(exc).__name__})") from None
        lines = raw.split(b"\r\n")
        try:
            status = int(lines[0].split(b" ", 2)[1])
        except (IndexError, ValueError):
            self.close()
            raise HttpError(f"not an HTTP response: {lines[0][:80]!r}") from None
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            if b":" in line:
                k, v = line.split(b":", 1)
                headers[k.strip().lower()] = v.strip()
        if headers.get(b"connection", b"").lower() == b"close":
            self.reusable = False
        return status, headers

    async def body_chunks(self, headers: dict[bytes, bytes]) -> AsyncIterator[bytes]:
        """The response body as it arrives (chunked, Content-Length or until close)."""
        reader = self.reader
        assert reader is not None
        try:
            if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
                # One socket read, then every complete chunk in it: one await per read, not three per chunk.
                dec = ChunkedDecoder()
                while not dec.done:
                    data = await reader.read(READ_LIMIT)
                    if not data:
                        raise asyncio.IncompleteReadError(dec.buf, None)
                    out = dec.feed(data)
                    if out:
                        yield out
            elif b"content-length" in headers:
                left = int(headers[b"content-length"])
                while left > 0:
                    data = await reader.read(min(left, READ_LIMIT))
                    if not data:
                        raise asyncio.IncompleteReadError(b"", left)
                    left -= len(data)
                    yield data
            else:
                self.reusable = False
                while True:
                    data = await reader.read(READ_LIMIT)
                    if not data:
                        return
                    yield data
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            self.close()
            raise HttpError(f"response cut short ({type(exc).__name__})") from None

    async def request(self, method: str, path: str, body: bytes = b"",
                      content_type: str = "application/json") -> tuple[int, dict[bytes, bytes]]:
        """Send a request and read its status line and headers; the body follows via
        :meth:`body_chunks` (read it to the end before the next request)."""
        try:
            return await self._head(method, path, body, content_type)
        except (ConnectionError, OSError) as exc:
            self.close()
            raise HttpError(f"cannot reach {self.endpoint.root}: {exc}") from None

    async def read_all(self, headers: dict[bytes, bytes]) -> bytes:
        return b"".join([c async for c in self.body_chunks(headers)])


async def get(endpoint: Endpoint, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    """One GET on a fresh connection (for /metrics, /v1/models, /health)."""
    conn = Connection(endpoint)

    async def go() -> tuple[int, bytes]:
        status, headers = await conn.request("GET", path)
        return status, await conn.read_all(headers)

    try:
        return await asyncio.wait_for(go(), timeout)
    except asyncio.TimeoutError:
        raise HttpError(f"GET {path} timed out after {timeout:g} s") from None
    finally:
        conn.close()
