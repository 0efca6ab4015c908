"""Progress renderers for the engine's events: rich bars on a TTY, plain lines otherwise,
JSON lines with ``--json``. All are thread-safe; none ever sees a token."""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import IO, Any


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


class Reporter:
    """Base: counts bytes, subclasses render."""

    def __init__(self, stream: IO[str] | None = None):
        self.out = stream or sys.stdout
        self.lock = threading.Lock()
        self.total = 0
        self.done = 0
        self.files = 0
        self.started = time.monotonic()

    def start(self, files: int, total_bytes: int, **info: Any) -> None:
        self.files, self.total = files, total_bytes

    def file_start(self, path: str, size: int, resumed: int) -> None:
        with self.lock:
            self.done += resumed

    def advance(self, path: str, n: int) -> None:
        with self.lock:
            self.done += n

    def file_done(self, path: str, status: str, detail: str = "") -> None:
        pass

    def event(self, kind: str, **fields: Any) -> None:
        pass

    def finish(self, **summary: Any) -> None:
        pass


class JsonReporter(Reporter):
    """One JSON object per line; byte progress at most every 0.5 s per file."""

    def __init__(self, stream: IO[str] | None = None):
        super().__init__(stream)
        self.per_file: dict[str, list[float]] = {}

    def _emit(self, **obj: Any) -> None:
        obj["t"] = round(time.monotonic() - self.started, 3)
        line = json.dumps(obj, sort_keys=True)
        with self.lock:
            self.out.write(line + "\n")
            self.out.flush()

    def start(self, files: int, total_bytes: int, **info: Any) -> None:
        super().start(files, total_bytes)
        self._emit(event="start", files=files, bytes=total_bytes, **info)

    def file_start(self, path: str, size: int, resumed: int) -> None:
        super().file_start(path, size, resumed)
        with self.lock:
            self.per_file[path] = [resumed, size, 0.0]
        self._emit(event="file_start", path=path, size=size, resumed=resumed)

    def advance(self, path: str, n: int) -> None:
        super().advance(path, n)
        now = time.monotonic()
        with self.lock:
            st = self.per_file.setdefault(path, [0, 0, 0.0])
            st[0] += n
            if now - st[2] < 0.5:
                return
            st[2] = now
            done, size = st[0], st[1]
        self._emit(event="progress", path=path, done=done, size=size, total_done=self.done, total=self.total)

    def file_done(self, path: str, status: str, detail: str = "") -> None:
        key = "sha256" if status in ("verified", "present") else "reason"
        self._emit(event="file_done", path=path, status=status, **{key: detail})

    def event(self, kind: str, **fields: Any) -> None:
        self._emit(event=kind, **fields)

    def finish(self, **summary: Any) -> None:
        self._emit(event="done", **summary)


class PlainReporter(Reporter):
    """Plain lines for logs and pipes: one per file and a total line every few seconds."""

    def __init__(self, stream: IO[str] | None = None, every: float = 5.0):
        super().__init__(stream)
        self.every = every
        self.last = time.monotonic()

    def _say(self, text: str) -> None:
        with self.lock:
            self.out.write(text + "\n")
            self.out.flush()

    def start(self, files: int, total_bytes: int, **info: Any) -> None:
        super().start(files, total_bytes)
        self._say(f"fetch: {info.get('repo_id', '')} @ {info.get('commit', '')[:12]} from {info.get('source', '')}: "
                  f"{files} files, {_mb(total_bytes)}")

    def advance(self, path: str, n: int) -> None:
        super().advance(path, n)
        now = time.monotonic()
        with self.lock:
            if now - self.last < self.every:
                return
            self.last = now
            rate = self.done / max(now - self.started, 1e-6)
            eta = (self.total - self.done) / rate if rate > 0 else 0
            pct = 100.0 * self.done / self.total if self.total else 100.0
        self._say(f"  {pct:5.1f}%  {_mb(self.done)} / {_mb(self.total)}  {rate / 1e6:.1f} MB/s  eta {eta:.0f}s")

    def file_done(self, path: str, status: str, detail: str = "") -> None:
        self._say(f"  {status:8s} {path}" + (f"  ({detail})" if status == "failed" else ""))

    def event(self, kind: str, **fields: Any) -> None:
        if kind == "switch":
            self._say(f"  switch   {fields['path']}: {fields['previous']} -> {fields['source']} ({fields['reason']})")
        elif kind == "retry":
            self._say(f"  retry    {fields['path']}: {fields['reason']}")
        elif kind == "note":
            self._say(f"  {fields.get('message', '')}")

    def finish(self, **summary: Any) -> None:
        el = time.monotonic() - self.started
        self._say(f"fetch: {summary.get('verified', 0)} files verified, {_mb(summary.get('transferred', 0))} transferred "
                  f"in {el:.1f}s -> {summary.get('local_dir', '')}")


class RichReporter(PlainReporter):
    """Rich progress bars: one per file in flight and a total with rate and ETA."""

    def __init__(self, stream: IO[str] | None = None):
        super().__init__(stream)
        from rich.console import Console
        from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                   TransferSpeedColumn)

        self.console = Console(file=self.out)
        self.progress = Progress(TextColumn("{task.description}", justify="left"), BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), TimeRemainingColumn(), console=self.console, transient=False)
        self.tasks: dict[str, Any] = {}
        self.total_task = None

    def _say(self, text: str) -> None:
        self.progress.console.print(text, markup=False, highlight=False)

    def start(self, files: int, total_bytes: int, **info: Any) -> None:
        Reporter.start(self, files, total_bytes)
        self.progress.start()
        self.total_task = self.progress.add_task(f"total ({files} files)", total=total_bytes)

    def file_start(self, path: str, size: int, resumed: int) -> None:
        Reporter.file_start(self, path, size, resumed)
        with self.lock:
            self.tasks[path] = self.progress.add_task(path[-40:], total=size, completed=resumed)
        self.progress.advance(self.total_task, resumed)

    def advance(self, path: str, n: int) -> None:
        Reporter.advance(self, path, n)
        task = self.tasks.get(path)
        if task is not None:
            self.progress.advance(task, n)
        self.progress.advance(self.total_task, n)

    def file_done(self, path: str, status: str, detail: str = "") -> None:
        with self.lock:
            task = self.tasks.pop(path, None)
        if task is not None:
            self.progress.remove_task(task)
        if status == "failed":
            self._say(f"failed {path}: {detail}")

    def finish(self, **summary: Any) -> None:
        self.progress.stop()
        super().finish(**summary)

    def close(self) -> None:
        self.progress.stop()


def make_reporter(json_mode: bool, stream: IO[str] | None = None) -> Reporter:
    stream = stream or sys.stdout
    if json_mode:
        return JsonReporter(stream)
    if stream.isatty():
        return RichReporter(stream)
    return PlainReporter(stream)
