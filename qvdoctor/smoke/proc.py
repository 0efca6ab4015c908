"""Run an engine in its own process group: stream and keep its log, sample its peak memory,
and leave no process behind on any exit path (normal end, timeout, exception, Ctrl-C)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def group_pids(pgid: int) -> list[int]:
    """Live processes in process group ``pgid`` (Linux /proc; engine workers inherit the group)."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()  # after "(comm)": state ppid pgrp ...
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            pids.append(int(name))
    return pids


def group_rss(pgid: int) -> int:
    """Sum of resident memory of the group's processes, bytes (shared pages count once per process)."""
    total = 0
    for pid in group_pids(pgid):
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except (OSError, ValueError, IndexError):
            continue
    return total


class GpuMeter:
    """GPU memory used by a process group, through NVML (falsy when there is no NVIDIA GPU).

    Per-process figures when NVML lists the group's PIDs; in a container with its own PID
    namespace it lists host PIDs, so the device-wide growth since the meter started is used."""

    def __init__(self) -> None:
        self.handles: list = []
        self.source = "none"
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nvml = pynvml
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
            self.baseline = self._device_used()
        except Exception:  # noqa: BLE001 - no driver, no library: fall back to RSS
            self.handles = []

    def __bool__(self) -> bool:
        return bool(self.handles)

    def _device_used(self) -> int:
        return sum(int(self.nvml.nvmlDeviceGetMemoryInfo(h).used) for h in self.handles)

    def used_by(self, pids: set[int]) -> int:
        total = 0
        for handle in self.handles:
            try:
                procs = self.nvml.nvmlDeviceGetComputeRunningProcesses(handle)
            except Exception:  # noqa: BLE001
                continue
            for p in procs:
                if p.pid in pids and p.usedGpuMemory:
                    total += int(p.usedGpuMemory)
        if total:
            self.source = "GPU memory of the engine processes (pynvml)"
            return total
        try:
            grown = max(0, self._device_used() - self.baseline)
        except Exception:  # noqa: BLE001
            return 0
        if grown:
            self.source = "GPU memory used on the device(s) since the attempt started (pynvml; PIDs not visible)"
        return grown


@dataclass
class ChildResult:
    returncode: int | None  # None: killed by us (timeout or interrupt)
    seconds: float
    peak_rss_bytes: int
    peak_gpu_bytes: int | None  # None when no GPU could be read
    timed_out: bool = False
    gpu_source: str = ""
    log_path: str = ""


def kill_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop the child and its whole process group: SIGTERM to the leader first (vLLM then shuts
    its engine down in order, so the log does not end in errors of our making), SIGTERM to the
    group when workers outlive the leader by 3 s (or the leader ignores SIGTERM for ``grace``
    s), SIGKILL to whatever is left 5 s later."""
    pgid = proc.pid

    def signal_group(sig: int) -> None:
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            pass

    def wait_gone(seconds: float, leader_only: bool = False) -> bool:
        deadline = time.monotonic() + seconds
        while True:
            if proc.poll() is not None and (leader_only or not group_pids(pgid)):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)

    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        wait_gone(grace, leader_only=True)
    if wait_gone(3.0):  # the leader's own shutdown takes its workers along
        return
    signal_group(signal.SIGTERM)
    if wait_gone(5.0):
        return
    signal_group(signal.SIGKILL)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    wait_gone(5.0)


class Child:
    """A command in a new session/process group, its output appended to ``log_path`` and passed
    line by line to ``on_line``. Use as a context manager: leaving the block kills the group."""

    def __init__(
        self,
        argv: Sequence[str],
        env: dict[str, str],
        log_path: Path,
        on_line: Callable[[str], None] | None = None,
        cwd: str | None = None,
    ) -> None:
        self.argv = list(argv)
        self.env = env
        self.log_path = Path(log_path)
        self.on_line = on_line
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None
        self.peak_rss = 0
        self.peak_gpu: int | None = None
        self.gpu_source = ""
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.started = 0.0

    def __enter__(self) -> "Child":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "a", encoding="utf-8", errors="replace")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: one killpg reaches every worker
        )
        self._threads = [
            threading.Thread(target=self._pump, daemon=True),
            threading.Thread(target=self._sample, daemon=True),
        ]
        for t in self._threads:
            t.start()
        return self

    def _pump(self) -> None:
        assert self.proc and self.proc.stdout
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace")
            with self._lock:
                self._log.write(line)
                self._log.flush()
            if self.on_line:
                try:
                    self.on_line(line.rstrip("\n"))
                except Exception:  # noqa: BLE001 - a display problem must not stop the log
                    pass

    def _sample(self) -> None:
        assert self.proc
        gpu = GpuMeter()
        if gpu:
            self.peak_gpu = 0
        while not self._stop.is_set():
            pids = group_pids(self.proc.pid)
            self.peak_rss = max(self.peak_rss, group_rss(self.proc.pid))
            if gpu:
                self.peak_gpu = max(self.peak_gpu or 0, gpu.used_by(set(pids)))
                self.gpu_source = gpu.source
            self._stop.wait(0.25)

    def note(self, line: str) -> None:
        """Add a line of our own to the kept log (and show it like the child's lines)."""
        with self._lock:
            self._log.write(line.rstrip("\n") + "\n")
            self._log.flush()
        if self.on_line:
            self.on_line(line)

    def alive(self) -> bool:
        return bool(self.proc) and self.proc.poll() is None

    def wait(self, timeout: float | None) -> ChildResult:
        assert self.proc
        timed_out = False
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_group(self.proc)
        return self.result(timed_out)

    def result(self, timed_out: bool = False) -> ChildResult:
        assert self.proc
        return ChildResult(
            returncode=None if timed_out else self.proc.returncode,
            seconds=time.monotonic() - self.started,
            peak_rss_bytes=self.peak_rss,
            peak_gpu_bytes=self.peak_gpu,
            timed_out=timed_out,
            log_path=str(self.log_path),
            gpu_source=self.gpu_source,
        )

    def __exit__(self, *exc) -> None:
        try:
            if self.proc is not None:
                # Also reaps workers left behind after the main process exited normally.
                kill_group(self.proc, grace=3.0 if self.proc.poll() is not None else 20.0)
        finally:
            self._stop.set()
            for t in self._threads:
                t.join(timeout=5)
            self._log.close()
