"""The transfer engine: ranged chunks of each file over several connections, several files at
once, each chunk resumed from its exact byte, sha256 (and the git blob sha1 where that is the
only published hash) fed in file order from the buffers the bytes arrived in, and the final name
given only after the hash matched. Stalls and repeated errors move a file to its next origin
(another source listing the same sha256), continuing the same part file."""

from __future__ import annotations

import hashlib
import mmap
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from qvdoctor.errors import QvError
from qvdoctor.fetch.http import HttpClient, HttpError, Response, redact_url, set_socket_timeout
from qvdoctor.fetch.http import origin as http_origin
from qvdoctor.fetch.listing import Origin, RemoteFile
from qvdoctor.fetch.partfile import PartFile
from qvdoctor.fetch.paths import target_path

BLOCK = 1 << 20  # bytes per pwrite/journal line
PIECE = 32 << 10  # bytes per socket read at first (see _fetch_chunk)
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass
class Settings:
    # Connections are all opened at once: a throttled link (hf-mirror caps each connection)
    # needs them from the first second; starting narrow and widening once the throttle was
    # measured cost a third of a second on a 72 MB repo. ``total_connections`` (aria2c -x 8 -j 5
    # opens up to 40) is shared by the large files in flight, at most ``max_per_file`` each, so
    # two shards get 20 connections each and four or more get 10 (hfd.sh's bound).
    connections: int | None = None  # --connections N: exactly N per file
    max_per_file: int = 20
    total_connections: int = 40
    max_files: int = 4  # large files transferred at once
    chunk_size: int = 8 << 20
    stall_timeout: float = 20.0  # seconds without a byte on a connection
    backoff: float = 0.5  # first retry delay, doubled per error, capped at 10 s
    switch_after: int = 3  # consecutive errors on one origin before trying the next
    max_errors: int = 12  # consecutive errors without progress before a file fails
    max_hash_failures: int = 3

    @classmethod
    def from_env(cls, connections: int | None = None) -> "Settings":
        s = cls()
        if connections:  # an explicit --connections is used as given
            s.connections = s.max_per_file = connections
            s.total_connections = max(s.total_connections, connections * s.max_files)
        s.chunk_size = int(_env_float("QVDOCTOR_FETCH_CHUNK_BYTES", s.chunk_size))
        s.stall_timeout = _env_float("QVDOCTOR_FETCH_STALL_TIMEOUT", s.stall_timeout)
        s.backoff = _env_float("QVDOCTOR_FETCH_BACKOFF", s.backoff)
        s.max_files = int(_env_float("QVDOCTOR_FETCH_MAX_FILES", s.max_files))
        s.max_errors = int(_env_float("QVDOCTOR_FETCH_MAX_ERRORS", s.max_errors))
        s.max_hash_failures = int(_env_float("QVDOCTOR_FETCH_MAX_HASH_FAILURES", s.max_hash_failures))
        return s


class TransferError(Exception):
    """A failed attempt on one chunk; ``fatal`` ones are not retried on the same origin."""

    def __init__(self, message: str, fatal: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.fatal = fatal
        self.retry_after = retry_after


HASH = object()  # task: hash chunks already on disk


@dataclass
class Chunk:
    idx: int
    start: int
    end: int
    done: int = 0
    state: str = "pending"  # pending | active | done
    not_before: float = 0.0
    buf: bytearray | mmap.mmap | None = None
    confirm: bool = False  # repair pass: accept only when a fresh fetch equals the bytes on disk


@dataclass
class Result:
    path: str
    size: int
    sha256: str
    git_oid: str | None
    sources: list[str]
    transferred: int = 0


@dataclass
class FileJob:
    file: RemoteFile
    origins: list[Origin]
    target: Path
    part: PartFile | None = None
    chunks: list[Chunk] = field(default_factory=list)
    cursor: int = 0
    ready: dict[int, bytearray | None] = field(default_factory=dict)
    active: int = 0
    origin_idx: int = 0
    errors_in_row: int = 0
    errors_on_origin: int = 0
    hash_failures: int = 0
    state: str = "waiting"  # waiting | running | finishing | done | failed
    error: str = ""
    sha256: "hashlib._Hash | None" = None
    sha1: "hashlib._Hash | None" = None
    location: dict[int, str] = field(default_factory=dict)
    used_sources: list[str] = field(default_factory=list)
    transferred: int = 0
    hash_lock: threading.Lock = field(default_factory=threading.Lock)
    needs_hash: bool = False
    no_range: bool = False

    @property
    def origin(self) -> Origin:
        return self.origins[self.origin_idx]


class Engine:
    def __init__(
        self,
        root: Path,
        jobs: list[tuple[RemoteFile, list[Origin]]],
        settings: Settings,
        reporter,
        on_verified: Callable[[Result], None],
        http: HttpClient | None = None,
    ):
        self.root = root
        self.partial_dir = root / ".qvdoctor" / "partial"
        self.s = settings
        self.reporter = reporter
        self.on_verified = on_verified
        self.http = http or HttpClient(timeout=max(settings.stall_timeout, 5.0))
        self.cond = threading.Condition()
        self.waiting = [FileJob(f, o, target_path(root, f.path)) for f, o in jobs]
        self.open: list[FileJob] = []
        self.finished: list[FileJob] = []
        self.fatal: BaseException | None = None
        self.window = settings.max_per_file + 4
        self.large_waiting = sum(1 for j in self.waiting if j.file.size > self.chunk_for(j.file.size))
        self.started = time.monotonic()
        self.bytes_in = 0
        self.active_total = 0
        self.buffers: dict[int, list] = {}  # chunk size -> mappings free for reuse

    # -- chunk buffers -------------------------------------------------------------------
    def _take_buffer(self, n: int):
        """A buffer for one chunk: a hashed chunk's (its pages already mapped), else a new one."""
        with self.cond:
            free = self.buffers.get(n)
            if free:
                return free.pop()
        return _buffer(n)

    def _give_buffer(self, buf) -> None:
        """With the lock held: keep a hashed chunk's mapping for the next chunk of that size."""
        if isinstance(buf, mmap.mmap):
            free = self.buffers.setdefault(len(buf), [])
            if len(free) < 16:  # bounded: at most 16 chunks (128 MiB) kept mapped
                free.append(buf)

    # -- public --------------------------------------------------------------------------
    def run(self) -> list[FileJob]:
        per_file = [max(1, min(self.s.max_per_file, len(self.layout(j.file.size)))) for j in self.waiting]
        # Enough workers for max_files large files at full width, plus a few for small files.
        nworkers = max(1, min(self.s.total_connections + 8, 72, sum(per_file)))
        threads = [threading.Thread(target=self._worker, name=f"fetch-{i}", daemon=True) for i in range(nworkers)]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.2)
        except KeyboardInterrupt:
            with self.cond:
                self.fatal = KeyboardInterrupt()
                self.cond.notify_all()
            # Workers stop at their next piece; wait briefly for them, so no write lands after
            # the part files are closed (a reused descriptor number would take it). One still
            # reading on a slow link is left to the exit, its files unclosed (see finally).
            deadline = time.monotonic() + 1.0
            for t in threads:
                t.join(max(0.0, deadline - time.monotonic()))
            raise
        finally:
            if not any(t.is_alive() for t in threads):  # else the process is exiting: the OS closes them
                for job in self.open + self.finished:
                    if job.part is not None:
                        job.part.close()
        if self.fatal is not None:
            raise self.fatal
        return self.finished

    # -- scheduling ------------------------------------------------------------------------
    def _open_job(self, job: FileJob) -> None:
        """Called with the lock held: set up chunks from the journal."""
        f = job.file
        expect = f.sha256 or f.git_oid or ""
        layout = self.layout(f.size)
        if f.size > self.chunk_for(f.size):
            self.large_waiting -= 1
        job.part = PartFile(self.partial_dir, f.path, f.size, expect, layout)
        done = job.part.open()
        job.chunks = [Chunk(i, a, b) for i, (a, b) in enumerate(layout)]
        resumed = 0
        for c in job.chunks:
            c.done = min(done.get(c.idx, 0), c.end - c.start)
            resumed += c.done
            if c.done == c.end - c.start:
                c.state = "done"
                job.ready[c.idx] = None  # on disk; hashed from there when the cursor gets here
        job.sha256 = hashlib.sha256()
        job.sha1 = hashlib.sha1(b"blob %d\0" % f.size) if f.git_oid and not f.sha256 else None
        job.state = "running"
        job.needs_hash = bool(job.chunks) and job.chunks[0].state == "done"
        self.open.append(job)
        self.reporter.file_start(f.path, f.size, resumed)

    def chunk_for(self, size: int) -> int:
        """Chunk size for a file: a twentieth of it, between 1 MiB and ``chunk_size`` (8 MiB), so
        a mid-sized file (a 36 MB shard) spreads over 20 connections in one round. Depends on
        the size only, so a journal stays valid whatever --connections the next run uses."""
        top = self.s.chunk_size
        return max(min(top, 1 << 20), min(top, -(-size // 20)))

    def layout(self, size: int) -> list[tuple[int, int]]:
        """Chunk boundaries: ``chunk_for`` sized. A file of more than 20 chunks (over 160 MiB)
        has its last 8 chunks' worth cut eight times finer, so its connections finish together
        (no long tail); a smaller one is 20 equal chunks, one round of its connections (finer
        pieces there only add requests). A function of the size only, so a journal stays valid
        across runs."""
        cs = self.chunk_for(size)
        if size <= 20 * cs:
            return [(a, min(a + cs, size)) for a in range(0, size, cs)]
        fine = max(1, cs // 8)
        tail_start = max(0, size - 8 * cs)
        tail_start -= tail_start % cs
        out = [(a, min(a + cs, tail_start)) for a in range(0, tail_start, cs)]
        out += [(a, min(a + fine, size)) for a in range(tail_start, size, fine)]
        return out

    def _width(self) -> int:
        """Connections per file now: --connections as given, else the shared budget split over
        the files with chunks still to fetch (with the lock held)."""
        if self.s.connections:
            return self.s.connections
        busy = sum(1 for j in self.open if j.state == "running" and len(j.chunks) > 1) + self.large_waiting
        busy = min(busy, self.s.max_files)
        return max(1, min(self.s.max_per_file, self.s.total_connections // max(1, busy)))

    def _take(self, job: FileJob, now: float) -> Chunk | None:
        if job.state != "running" or job.active >= (1 if job.no_range else self._width()):
            return None
        if self.active_total >= self.s.total_connections:
            return None
        limit = job.cursor + self.window
        for c in job.chunks[job.cursor:limit]:
            if c.state == "pending" and c.not_before <= now:
                c.state = "active"
                job.active += 1
                self.active_total += 1
                return c
        return None

    def _next(self) -> tuple[FileJob, Chunk | None] | None:
        with self.cond:
            while True:
                if self.fatal is not None:
                    return None
                now = time.monotonic()
                for job in list(self.open):
                    if job.state == "running" and not job.chunks:
                        job.state = "finishing"
                        return job, None  # empty file: straight to verification
                    if job.needs_hash:
                        job.needs_hash = False
                        return job, HASH  # resumed with finished chunks: hash them from disk
                    c = self._take(job, now)
                    if c is not None:
                        return job, c
                running = [j for j in self.open if j.state == "running"]
                # Work-conserving: a worker with nothing to do opens the next file, up to a cap.
                if self.waiting and len(running) < self.s.max_files * 4:
                    self._open_job(self.waiting.pop(0))
                    continue
                if not self.waiting and not self.open:
                    return None
                self.cond.wait(0.1)

    def _worker(self) -> None:
        try:
            while True:
                task = self._next()
                if task is None:
                    return
                job, chunk = task
                if chunk is None:
                    self._finish(job)
                    continue
                if chunk is HASH:
                    self._advance_hash(job)
                    continue
                try:
                    self._fetch_chunk(job, chunk)
                except TransferError as exc:
                    self._chunk_failed(job, chunk, exc)
                    continue
                self._chunk_done(job, chunk)
        except BaseException as exc:  # noqa: BLE001 - stop everyone, re-raised by run()
            with self.cond:
                if self.fatal is None:
                    self.fatal = exc
                self.cond.notify_all()

    # -- one chunk -------------------------------------------------------------------------
    def _request(self, job: FileJob, pos: int, end: int) -> Response:
        idx = job.origin_idx
        origin = job.origin
        url = job.location.get(idx, origin.url)
        headers = dict(origin.headers) if http_origin(url) == http_origin(origin.url) else {}
        headers["Range"] = f"bytes={pos}-{end - 1}"
        try:
            resp = self.http.request("GET", url, headers)
        except HttpError as exc:
            job.location.pop(idx, None)
            raise TransferError(f"{origin.source}: {exc.reason}") from None
        if resp.url != origin.url and resp.status < 300:
            job.location[idx] = resp.url  # the CDN URL, reused by the next chunks
        if resp.status in (200, 206):
            return resp
        body = resp.read(4096)
        resp.release()
        job.location.pop(idx, None)
        err = resp.headers.get("x-error-code", "")
        msg = resp.headers.get("x-error-message") or body[:200].decode("utf-8", "replace").strip()
        where = f"{origin.source} {redact_url(resp.url)}"
        if err == "GatedRepo" or (resp.status in (401, 403) and url == origin.url):
            raise TransferError(f"{where}: HTTP {resp.status} {err or 'access denied'}", fatal=True)
        if resp.status == 404:
            raise TransferError(f"{where}: HTTP 404 {err or 'not found'}", fatal=True)
        if resp.status == 416:
            raise TransferError(f"{where}: HTTP 416 range not satisfiable (listing says {job.file.size} bytes)", fatal=True)
        retry_after = None
        if resp.status in (429, 503):
            retry_after = _retry_after(resp.headers)
        raise TransferError(f"{where}: HTTP {resp.status} {msg[:120]}", retry_after=retry_after)

    def _open_range(self, job: FileJob, pos: int, end: int) -> tuple[Response, int, int, bool]:
        """GET bytes [pos, end); returns (response, bytes to skip, bytes to read, lying?)."""
        size = job.file.size
        resp = self._request(job, pos, end)
        set_socket_timeout(resp, self.s.stall_timeout)
        src = job.origin.source
        skip = 0
        cr = resp.headers.get("content-range")
        if cr:
            m = _CONTENT_RANGE.match(cr)
            if not m:
                resp.release(False)
                raise TransferError(f"{src}: bad Content-Range {cr!r}")
            first, last, total = int(m.group(1)), int(m.group(2)), m.group(3)
            if total != "*" and int(total) != size:
                resp.release(False)
                raise TransferError(f"{src}: server says {job.file.path} has {total} bytes, listing says {size}", fatal=True)
            if first != pos:
                resp.release(False)
                raise TransferError(f"{src}: asked for byte {pos}, got a range starting at {first}")
            body_len = last - first + 1
        elif resp.status == 200:  # Range ignored: the whole file comes; skip to our position
            skip = pos
            body_len = size
            job.no_range = True
        else:
            resp.release(False)
            raise TransferError(f"{src}: 206 without Content-Range")
        want = end - pos
        clen = resp.headers.get("content-length")
        lying = clen is not None and clen.isdigit() and int(clen) != body_len
        if lying and int(clen) < want + skip:
            want = max(0, int(clen) - skip)  # read what it admits to; the rest comes later
        want = min(want, body_len - skip)
        try:
            while skip:
                dropped = resp.read(min(skip, BLOCK))
                if not dropped:
                    raise TransferError(f"{src}: body ended early")
                skip -= len(dropped)
        except TransferError:
            resp.release(False)
            raise
        except Exception as exc:  # noqa: BLE001
            resp.release(False)
            raise TransferError(f"{src}: {type(exc).__name__} while skipping to byte {pos}") from None
        return resp, want, body_len, lying

    def _fetch_chunk(self, job: FileJob, c: Chunk) -> None:
        if c.confirm:
            return self._confirm_chunk(job, c)
        length = c.end - c.start
        if c.buf is None:
            c.buf = self._take_buffer(length)
            if c.done:
                assert job.part is not None
                c.buf[: c.done] = job.part.read_at(c.start, c.done)
        pos = c.start + c.done
        resp, want, body_len, lying = self._open_range(job, pos, c.end)
        src = job.origin.source
        got = 0
        piece = PIECE
        try:
            view = memoryview(c.buf)
            assert job.part is not None
            while got < want:
                if self.fatal is not None:
                    raise TransferError(f"{src}: stopped")
                off = c.done
                end = off + min(BLOCK, want - got)
                n = 0
                try:
                    # Fill a whole block before writing it: one pwrite, one journal line and
                    # one progress update per MiB, not per socket read.
                    # Read in pieces (a readinto waits until its view is full): Ctrl-C is
                    # seen within one piece, and a piece is what a stop can lose. Pieces grow
                    # to a whole block while they arrive fast (fewer calls) and shrink back on
                    # a slow connection (a stop is seen within about 0.1 s).
                    while off + n < end and self.fatal is None:
                        t = time.monotonic()
                        k = resp.readinto(view[off + n : min(end, off + n + piece)])
                        if not k:
                            break
                        n += k
                        took = time.monotonic() - t
                        if took < 0.02 and piece < BLOCK:
                            piece *= 2
                        elif took > 0.1 and piece > PIECE:
                            piece //= 2
                finally:
                    if n:  # what arrived is kept even when the read then failed
                        job.part.write_at(c.start + off, view[off : off + n])
                        c.done += n
                        got += n
                        job.part.record(c.idx, c.done)
                        with self.cond:
                            job.transferred += n
                            job.errors_in_row = 0
                            self.bytes_in += n
                        self.reporter.advance(job.file.path, n)
                if off + n < end:
                    if self.fatal is not None:
                        raise TransferError(f"{src}: stopped")
                    raise TransferError(f"{src}: connection closed after {got} of {want} bytes")
        except TransferError:
            resp.release(False)
            raise
        except QvError:
            resp.release(False)
            raise
        except Exception as exc:  # noqa: BLE001 - timeouts, resets, IncompleteRead
            resp.release(False)
            reason = "stalled" if isinstance(exc, TimeoutError) else type(exc).__name__
            raise TransferError(f"{src}: {reason} at byte {c.start + c.done}") from None
        resp.release(got == body_len and not lying)
        if c.done < length:
            if lying:
                raise TransferError(f"{src}: Content-Length does not match the range it sent ({body_len} bytes)")
            raise TransferError(f"{src}: short body ({c.done}/{length})")

    def _confirm_chunk(self, job: FileJob, c: Chunk) -> None:
        """Repair after a hash mismatch: a chunk is accepted once two fetches agree byte for byte."""
        length = c.end - c.start
        buf = self._take_buffer(length)
        resp, want, body_len, lying = self._open_range(job, c.start, c.end)
        src = job.origin.source
        got = 0
        try:
            view = memoryview(buf)
            while got < want:
                n = resp.readinto(view[got:want])
                if not n:
                    break
                got += n
                with self.cond:
                    job.transferred += n
        except Exception as exc:  # noqa: BLE001
            resp.release(False)
            raise TransferError(f"{src}: {type(exc).__name__} while re-checking {job.file.path}") from None
        resp.release(got == body_len and not lying)
        if got < length:
            raise TransferError(f"{src}: short body while re-checking ({got}/{length})")
        assert job.part is not None
        if job.part.read_at(c.start, length) == bytes(buf):
            c.confirm = False
            c.buf = buf
            return
        job.part.write_at(c.start, memoryview(buf))
        raise TransferError(f"{src}: bytes {c.start}-{c.end - 1} of {job.file.path} differ between two fetches; fetching a third copy",
                            retry_after=0.0)

    def _chunk_done(self, job: FileJob, c: Chunk) -> None:
        with self.cond:
            c.state = "done"
            job.active -= 1
            self.active_total -= 1
            job.errors_on_origin = 0
            job.errors_in_row = 0
            job.ready[c.idx] = c.buf
            c.buf = None
            if job.origin.source not in job.used_sources:
                job.used_sources.append(job.origin.source)
            self.cond.notify_all()
        self._advance_hash(job)

    def _chunk_failed(self, job: FileJob, c: Chunk, exc: TransferError) -> None:
        with self.cond:
            job.active -= 1
            self.active_total -= 1
            c.state = "pending"
            if job.state != "running" or self.fatal is not None:
                return
            job.errors_in_row += 1
            job.errors_on_origin += 1
            delay = exc.retry_after if exc.retry_after is not None else min(10.0, self.s.backoff * 2 ** min(job.errors_in_row - 1, 6))
            c.not_before = time.monotonic() + delay
            switch = (exc.fatal or job.errors_on_origin >= self.s.switch_after) and len(job.origins) > 1
            if switch:
                old = job.origin.source
                job.origin_idx = (job.origin_idx + 1) % len(job.origins)
                job.errors_on_origin = 0
                c.not_before = 0.0
                self.reporter.event("switch", path=job.file.path, source=job.origin.source, previous=old, reason=str(exc))
            elif exc.fatal or job.errors_in_row >= self.s.max_errors:
                self._fail(job, str(exc))
                return
            else:
                self.reporter.event("retry", path=job.file.path, reason=str(exc), delay=round(delay, 2))
            if job.errors_in_row >= self.s.max_errors * 2:
                self._fail(job, str(exc))
            self.cond.notify_all()

    def _fail(self, job: FileJob, reason: str) -> None:
        """With the lock held."""
        if job.hash_failures and "hash mismatch" not in reason:
            reason = f"hash mismatch, then the repair failed: {reason}"
        job.state = "failed"
        job.error = reason
        if job in self.open:
            self.open.remove(job)
        self.finished.append(job)
        if job.part is not None:
            for ch in job.chunks:
                ch.buf = None
            job.ready.clear()
        self.reporter.file_done(job.file.path, "failed", reason)
        self.cond.notify_all()

    # -- hashing and the final rename ------------------------------------------------------
    def _advance_hash(self, job: FileJob) -> None:
        if not job.hash_lock.acquire(blocking=False):
            # Someone else is hashing this file; they will pick our chunk up when they loop.
            return
        try:
            while True:
                with self.cond:
                    if job.state != "running" or job.cursor >= len(job.chunks):
                        break
                    c = job.chunks[job.cursor]
                    if c.state != "done":
                        break
                    buf = job.ready.pop(job.cursor, None)
                if buf is None:
                    assert job.part is not None
                    buf = job.part.read_at(c.start, c.end - c.start)
                assert job.sha256 is not None
                job.sha256.update(buf)
                if job.sha1 is not None:
                    job.sha1.update(buf)
                with self.cond:
                    job.cursor += 1
                    self._give_buffer(buf)
                    self.cond.notify_all()
        finally:
            job.hash_lock.release()
        with self.cond:
            # A chunk may have completed between our last check and the release.
            again = job.state == "running" and job.cursor < len(job.chunks) and job.chunks[job.cursor].state == "done"
            last = job.state == "running" and job.cursor == len(job.chunks) and job.chunks
            if last:
                job.state = "finishing"
        if again:
            self._advance_hash(job)
        elif last:
            self._finish(job)

    def _finish(self, job: FileJob) -> None:
        f = job.file
        assert job.sha256 is not None and job.part is not None
        sha256 = job.sha256.hexdigest()
        ok = (f.sha256 is None or sha256 == f.sha256) and (job.sha1 is None or job.sha1.hexdigest() == f.git_oid)
        if ok:
            target = target_path(self.root, f.path)  # re-checked: the tree may have changed
            job.part.finish(target)
            result = Result(f.path, f.size, sha256, f.git_oid, job.used_sources or [job.origin.source], job.transferred)
            self.on_verified(result)
            with self.cond:
                job.state = "done"
                if job in self.open:
                    self.open.remove(job)
                self.finished.append(job)
                self.cond.notify_all()
            self.reporter.file_done(f.path, "verified", sha256)
            return
        got = sha256 if f.sha256 else job.sha1.hexdigest()  # type: ignore[union-attr]
        with self.cond:
            job.hash_failures += 1
            reason = f"hash mismatch for {f.path}: expected {f.sha256 or f.git_oid}, got {got}"
            if job.hash_failures >= self.s.max_hash_failures:
                job.part.discard()
                self._fail(job, reason + f" ({job.hash_failures} times)")
                return
            if job.hash_failures > 1 and len(job.origins) > 1:
                job.origin_idx = (job.origin_idx + 1) % len(job.origins)
            self.reporter.event("retry", path=f.path, reason=reason + "; re-checking every chunk against a second fetch", delay=0)
            # Keep the part file: every chunk is fetched again and accepted once two copies agree.
            for ch in job.chunks:
                ch.state, ch.confirm, ch.buf, ch.not_before = "pending", True, None, 0.0
            job.ready, job.cursor = {}, 0
            job.sha256 = hashlib.sha256()
            job.sha1 = hashlib.sha1(b"blob %d\0" % f.size) if f.git_oid and not f.sha256 else None
            job.state = "running"
            self.cond.notify_all()
        if not job.chunks:
            with self.cond:
                job.part.discard()
                self._fail(job, reason)


def _buffer(n: int):
    """Memory for one chunk's bytes. Large ones are anonymous mappings: their pages appear as the
    bytes land, where ``bytearray(n)`` would first zero every page (a tenth of the CPU here)."""
    return mmap.mmap(-1, n) if n >= BLOCK else bytearray(n)


def _retry_after(headers: dict[str, str]) -> float | None:
    ra = headers.get("retry-after", "")
    if ra.strip().isdigit():
        return min(float(ra), 60.0)
    m = re.search(r";\s*t=(\d+)", headers.get("ratelimit", ""))
    if m:
        return min(float(m.group(1)) + 1, 60.0)
    return None
