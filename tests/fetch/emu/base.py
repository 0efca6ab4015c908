"""Server plumbing shared by the emulators: a threaded HTTP/1.1 server on 127.0.0.1, range
parsing, and a body sender that injects faults (per-connection bandwidth cap, dropped
connections, stalls, corrupted bytes, lying Content-Length, 5xx bursts, ignored ranges, a 403
with the server's own rule on every request)."""

from __future__ import annotations

import json
import os
import random
import re
import socket
import threading
import time
from dataclasses import dataclass, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PIECE = 64 << 10


@dataclass
class Faults:
    rate: float = 0.0  # bytes/s per connection for bodies; 0 = unlimited
    drop_p: float = 0.0  # a body is cut (connection closed) at a random byte
    drop_after: int = 0  # every body is cut after this many bytes (0 = off)
    stall_p: float = 0.0  # a body stops sending for stall_s at a random byte
    stall_s: float = 2.0
    corrupt_p: float = 0.0  # one byte of the body is flipped
    error_p: float = 0.0  # the answer is a 503 instead of the body
    burst_5xx: int = 0  # the next N body requests get a 503
    lie_p: float = 0.0  # Content-Length is wrong (bigger or smaller than the body)
    ignore_range: bool = False  # answer a Range with 200 and the whole body
    range_200: bool = False  # answer a Range with 200 + Content-Range (ModelScope's quirk)
    down_after: int = 0  # once this server has sent this many body bytes, every body request gets 503
    forbid: str = ""  # every request gets 403 with this text (a mirror refusing by its own rule)
    seed: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def update(self, **kw) -> None:
        with self._lock:
            for k, v in kw.items():
                if k not in {f.name for f in fields(self)}:
                    raise KeyError(k)
                setattr(self, k, v)
            if "seed" in kw:
                self._rng = random.Random(self.seed)

    def clear(self) -> None:
        self.update(**{f.name: f.default for f in fields(self) if f.name != "seed"})

    def plan(self, length: int) -> dict:
        """Decide, for one body of ``length`` bytes, which faults fire and where."""
        with self._lock:
            r = self._rng
            p: dict = {}
            if self.burst_5xx > 0:
                self.burst_5xx -= 1
                p["error"] = True
                return p
            if self.error_p and r.random() < self.error_p:
                p["error"] = True
                return p
            if length > 0:
                if self.drop_after and self.drop_after < length:
                    p["drop"] = self.drop_after
                if self.drop_p and r.random() < self.drop_p:
                    p["drop"] = min(p.get("drop", length), r.randrange(length))
                if self.stall_p and r.random() < self.stall_p:
                    p["stall"] = r.randrange(length)
                if self.corrupt_p and r.random() < self.corrupt_p:
                    p["corrupt"] = r.randrange(length)
                if self.lie_p and r.random() < self.lie_p:
                    p["lie"] = r.choice([-1, 1]) * max(1, r.randrange(max(1, length // 2)))
            return p

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class EmuServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, handler_cls, port: int = 0, faults: Faults | None = None):
        super().__init__(("127.0.0.1", port), handler_cls)
        self.faults = faults or Faults()
        self.stats_lock = threading.Lock()
        self.body_bytes = 0
        self.requests: list[tuple[str, str, str]] = []  # (method, path, range)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> "EmuServer":
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def handle_error(self, request, client_address) -> None:
        """Clients hang up mid-body all the time here (kills, aborted ranges): not an error."""

    def count(self, n: int) -> None:
        with self.stats_lock:
            self.body_bytes += n

    def streaming(self, delta: int) -> None:
        """Track bodies being sent at once (``max_streams`` is the peak)."""
        with self.stats_lock:
            self.streams = getattr(self, "streams", 0) + delta
            self.max_streams = max(getattr(self, "max_streams", 0), self.streams)


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class EmuHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: EmuServer

    def log_message(self, fmt, *args):  # quiet
        pass

    # -- helpers ---------------------------------------------------------------------------
    def send_body(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, obj, headers: dict | None = None) -> None:
        self.send_body(status, json.dumps(obj).encode(), "application/json; charset=utf-8", headers)

    def send_plain(self, status: int, text: str = "", headers: dict | None = None) -> None:
        self.send_body(status, text.encode(), "text/plain; charset=utf-8", headers)

    def read_body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    # Every emulator routes GET and HEAD through ``route``; POST is only for its admin API unless
    # a handler (git's LFS batch) overrides it.
    def do_GET(self):  # noqa: N802
        if not self.forbidden():
            self.route()

    def do_HEAD(self):  # noqa: N802
        if not self.forbidden():
            self.route()

    def forbidden(self) -> bool:
        rule = self.server.faults.forbid
        if rule and not self.path.startswith("/_emu/"):
            self.send_plain(403, rule)
            return True
        return False

    def do_POST(self):  # noqa: N802
        if not self.admin():
            self.read_body()
            self.send_plain(404, "not emulated")

    def route(self) -> None:
        raise NotImplementedError

    def admin(self) -> bool:
        """``/_emu/faults`` (GET/POST JSON) and ``/_emu/stats``: control from another process."""
        if not self.path.startswith("/_emu/"):
            return False
        if self.path.startswith("/_emu/faults"):
            if self.command == "POST":
                self.server.faults.update(**json.loads(self.read_body() or b"{}"))
            self.send_json(200, self.server.faults.as_dict())
        elif self.path.startswith("/_emu/stats"):
            if self.command == "POST":
                self.read_body()
                with self.server.stats_lock:
                    self.server.body_bytes = 0
                    self.server.requests.clear()
            self.send_json(200, {"body_bytes": self.server.body_bytes, "requests": len(self.server.requests)})
        else:
            self.send_plain(404, "no such admin route")
        return True

    def send_blob(self, blob: "Path | bytes", size: int, headers: dict, *, status: int = 200,
                  allow_range: bool = True) -> None:
        """Answer with ``blob`` honouring Range (206), or the configured faults."""
        faults = self.server.faults
        rng_header = self.headers.get("Range")
        with self.server.stats_lock:
            self.server.requests.append((self.command, self.path, rng_header or ""))
        start, end = 0, size
        partial = False
        if rng_header and allow_range and not faults.ignore_range:
            m = _RANGE.match(rng_header.strip())
            if m and (m.group(1) or m.group(2)):
                a, b = m.group(1), m.group(2)
                if a == "":
                    start, end = max(0, size - int(b)), size
                else:
                    start, end = int(a), (min(int(b) + 1, size) if b else size)
                if start >= size or start >= end:
                    self.send_plain(416, "range not satisfiable", {**headers, "Content-Range": f"bytes */{size}"})
                    return
                partial = True
        length = end - start
        if faults.down_after and self.server.body_bytes >= faults.down_after:
            self.send_plain(503, "emulated outage", {"Retry-After": "0"})
            return
        plan = faults.plan(length) if self.command != "HEAD" else {}
        if plan.get("error"):
            self.send_plain(503, "emulated 5xx", {"Retry-After": "0"})
            return
        code = status
        hdrs = dict(headers)
        hdrs["Accept-Ranges"] = "bytes"
        if partial:
            hdrs["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
            code = 200 if faults.range_200 else 206
        clen = length + plan.get("lie", 0)
        self.send_response(code)
        self.send_header("Content-Length", str(max(0, clen)))
        for k, v in hdrs.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD":
            return
        cut = plan.get("drop")
        send_len = length if cut is None else cut
        if plan.get("lie", 0) < 0:
            send_len = min(send_len, max(0, clen))  # claims less: stop where it says and hang up
        self._stream(blob, start, send_len, faults.rate, plan)
        self.wfile.flush()
        if cut is not None or plan.get("lie"):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _stream(self, blob, start: int, length: int, rate: float, plan: dict) -> None:
        sock = self.connection
        if isinstance(blob, Path) and not rate and not plan:
            try:
                with open(blob, "rb") as f:
                    sent = sock.sendfile(f, start, length) if length else 0
                self.server.count(sent)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            return
        fh = open(blob, "rb") if isinstance(blob, Path) else None
        self.server.streaming(+1)
        try:
            t0 = time.monotonic()
            sent = 0
            stall = plan.get("stall")
            corrupt = plan.get("corrupt")
            while sent < length:
                if stall is not None and sent >= stall:
                    self.wfile.flush()
                    time.sleep(self.server.faults.stall_s)
                    stall = None
                n = min(PIECE if not rate else max(4096, min(PIECE, int(rate / 20))), length - sent)
                if stall is not None:
                    n = min(n, stall - sent)
                if fh is not None:
                    piece = bytearray(os.pread(fh.fileno(), n, start + sent))
                else:
                    piece = bytearray(blob[start + sent : start + sent + n])
                if corrupt is not None and sent <= corrupt < sent + len(piece):
                    piece[corrupt - sent] ^= 0xFF
                if rate:
                    ahead = (sent + len(piece)) / rate - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
                self.wfile.write(piece)
                sent += len(piece)
                self.server.count(len(piece))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            self.server.streaming(-1)
            if fh is not None:
                fh.close()
