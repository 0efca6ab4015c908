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
        self.transfer_started = time.monotonic()  # the rate counts transfer time, not listing and probing
        self.base = self.done

    def rate(self, now: float) -> float | None:
        """Bytes/s of this run, once there is a second of transfer and a few MB to go on."""
        el = now - getattr(self, "transfer_started", self.started)
        moved = self.done - getattr(self, "base", 0)
        if el < 1.0 or moved < (1 << 20):
            return None
        return moved / el

    def file_start(self, path: str, size: int, resumed: int) -> None:
        with self.lock:
            self.done += resumed
            self.base = getattr(self, "base", 0) + resumed  # on disk already: not part of the rate

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
            rate = self.rate(now)
            pct = 100.0 * self.done / self.total if self.total else 100.0
        speed = f"{rate / 1e6:.1f} MB/s  eta {(self.total - self.done) / rate:.0f}s" if rate else "measuring rate"
        self._say(f"  {pct:5.1f}%  {_mb(self.done)} / {_mb(self.total)}  {speed}")

    def file_done(self, path: str, status: str, detail: str = "") -> None:
        self._say(f"  {status:8s} {path}" + (f"  ({detail})" if status == "failed" else ""))

    def event(self, kind: str, **fields: Any) -> None:
        if kind == "switch":
            self._say(f"  switch   {fields['path']}: {fields['previous']} -> {fields['source']} ({fields['reason']})")
        elif kind == "retry":
            self._say(f"  retry    {fields['path']}: {fields['reason']}")
        elif kind == "note":
            self._say(f"  {fields.get('message', '')}")
        elif kind == "reach" and not any(r.get("ok") or r.get("pending") for r in fields.get("sources", {}).values()):
            pass  # the error line that follows names every source and why
        elif kind in ("reach", "probe"):
            for line in describe_sources(kind, fields):
                self._say(line)

    def finish(self, **summary: Any) -> None:
        el = time.monotonic() - self.started
        how = ""
        if "hashed" in summary:
            how = f" ({summary['hashed']} hashed in this run, {summary['unchanged']} unchanged since the manifest)"
        self._say(f"fetch: {summary.get('verified', 0)} files verified{how}, {_mb(summary.get('transferred', 0))} "
                  f"transferred in {el:.1f}s -> {summary.get('local_dir', '')}")


class RichReporter(PlainReporter):
    """Rich progress bars: one per file in flight and a total with rate and ETA."""

    def __init__(self, stream: IO[str] | None = None):
        super().__init__(stream)
        from rich.console import Console
        from rich.text import Text
        from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                   TransferSpeedColumn)

        self.console = Console(file=self.out)
        class EtaColumn(TimeRemainingColumn):
            """Blank until the task has moved for a second: no 129,159 s guesses from the first bytes."""

            def render(self, task):  # type: ignore[override]
                if task.elapsed is None or task.elapsed < 1.0 or not task.speed:
                    return Text("eta …", style="progress.remaining")
                return super().render(task)

        # transient: the bars are erased when they stop, so a summary or the Ctrl-C line follows
        # them once (a non-transient Progress re-draws the last frame on stop: two bars in the log).
        self.progress = Progress(TextColumn("{task.description}", justify="left"), BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), EtaColumn(), console=self.console, transient=True)
        self.tasks: dict[str, Any] = {}
        self.total_task = None
        self.stopped = False

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
        self.close()
        super().finish(**summary)

    def close(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.progress.stop()


def describe_sources(kind: str, fields: dict) -> list[str]:
    """The reachability probe and the --source auto sample as lines for a terminal or a log."""
    lines = []
    if kind == "reach":
        for name, r in fields.get("sources", {}).items():
            state = f"reachable ({r.get('ms', 0)} ms)" if r.get("ok") else r.get("reason", "")
            lines.append(f"source {name} ({r.get('endpoint', '')}): {state}")
    else:
        for name, r in fields.get("sources", {}).items():
            if "error" in r:
                continue  # already said by the reachability lines, or the listing error below
            mark = "  <- chosen" if name == fields.get("chosen") else ""
            lines.append(f"probe  {name}: listed in {r['latency_s'] * 1000:.0f} ms, sample {r['rate_mb_s']:.1f} MB/s{mark}")
        for name, r in fields.get("sources", {}).items():
            if "error" in r and not str(r["error"]).startswith(("DNS", "connection", "no answer", "no route", "TLS", "HTTP", "offline")):
                lines.append(f"probe  {name}: {r['error']}")
    return lines


def make_reporter(json_mode: bool, stream: IO[str] | None = None) -> Reporter:
    stream = stream or sys.stdout
    if json_mode:
        return JsonReporter(stream)
    if stream.isatty():
        return RichReporter(stream)
    return PlainReporter(stream)
