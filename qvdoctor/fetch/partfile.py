"""A part file and its resume journal under ``<local-dir>/.qvdoctor/partial/``.

The journal is append-only: a JSON header (path, size, expected hash, chunk size) and then one
``<chunk> <bytes done>`` line after every block written to the part file. Data is written
before the line that claims it, so after ``kill -9`` the journal never claims bytes the part
file lacks and the next run continues each chunk from its exact byte. (After a power loss the
order is not guaranteed; the final hash check catches that and the file is fetched again.)
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

from qvdoctor.errors import QvError


def part_key(path: str, size: int, expect: str) -> str:
    return hashlib.sha256(f"{path}\0{size}\0{expect}".encode()).hexdigest()[:40]


def disk_full(path: Path | str, exc: OSError) -> QvError:
    import shutil

    try:
        free = shutil.disk_usage(path).free
    except OSError:
        free = 0
    return QvError(
        f"disk full while writing {path} ({free / 1e6:.1f} MB free): {exc.strerror}",
        hint="free space (or pick another --local-dir) and run the same command again; finished and partial files are kept",
    )


class PartFile:
    def __init__(self, partial_dir: Path, path: str, size: int, expect: str, layout: list[tuple[int, int]]):
        self.dir = partial_dir
        self.key = part_key(path, size, expect)
        self.part = partial_dir / f"{self.key}.part"
        self.journal = partial_dir / f"{self.key}.journal"
        self.starts = [a for a, _ in layout]
        sig = hashlib.sha256(",".join(f"{a}-{b}" for a, b in layout).encode()).hexdigest()[:16]
        self.header = {"path": path, "size": size, "expect": expect, "layout": sig}
        self.fd: int | None = None
        self.jfd: int | None = None

    def open(self) -> dict[int, int]:
        """Open (creating if needed) and return ``{chunk: bytes done}`` from a valid journal."""
        self.dir.mkdir(parents=True, exist_ok=True)
        done = self._load()
        if not done:
            self._remove()
        self.fd = os.open(self.part, os.O_RDWR | os.O_CREAT, 0o644)
        if not done:
            self.jfd = os.open(self.journal, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
            os.write(self.jfd, (json.dumps(self.header, sort_keys=True) + "\n").encode())
        else:
            self.jfd = os.open(self.journal, os.O_WRONLY | os.O_APPEND)
        return done

    def _load(self) -> dict[int, int]:
        try:
            lines = self.journal.read_bytes().split(b"\n")
            if json.loads(lines[0]) != self.header or not self.part.exists():
                return {}
        except (OSError, ValueError):
            return {}
        done: dict[int, int] = {}
        for line in lines[1:]:
            fields = line.split()
            if len(fields) != 2:
                continue  # the torn last line of a killed run
            try:
                idx, n = int(fields[0]), int(fields[1])
            except ValueError:
                continue
            done[idx] = max(done.get(idx, 0), n)
        psize = self.part.stat().st_size
        # Never trust a claim beyond what the part file holds.
        return {i: n for i, n in done.items() if n > 0 and i < len(self.starts) and self.starts[i] + n <= psize}

    def write_at(self, offset: int, data: memoryview) -> None:
        assert self.fd is not None
        try:
            while data:
                n = os.pwrite(self.fd, data, offset)
                data = data[n:]
                offset += n
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise disk_full(self.dir, exc) from None
            raise

    def record(self, idx: int, done: int) -> None:
        assert self.jfd is not None
        try:
            os.write(self.jfd, f"{idx} {done}\n".encode())
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise disk_full(self.dir, exc) from None
            raise

    def read_at(self, offset: int, n: int) -> bytes:
        assert self.fd is not None
        out = bytearray()
        while len(out) < n:
            b = os.pread(self.fd, n - len(out), offset + len(out))
            if not b:
                break
            out += b
        return bytes(out)

    def sync(self) -> None:
        if self.fd is not None:
            os.fdatasync(self.fd)

    def finish(self, target: Path) -> None:
        """Make the verified part file the final file (atomic rename), drop the journal."""
        assert self.fd is not None
        os.ftruncate(self.fd, self.header["size"])
        os.fsync(self.fd)
        self.close()
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.part, target)
        try:
            self.journal.unlink()
        except FileNotFoundError:
            pass

    def close(self) -> None:
        for name in ("fd", "jfd"):
            fd = getattr(self, name)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)

    def _remove(self) -> None:
        for p in (self.part, self.journal):
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    def discard(self) -> None:
        self.close()
        self._remove()
