"""Refuse repo paths that could escape ``--local-dir``; resolve targets inside it."""

from __future__ import annotations

import fcntl
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from qvdoctor.errors import QvError

RESERVED = ".qvdoctor"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_repo_path(path: str) -> str:
    """Return ``path`` if it is a plain relative POSIX path, else raise ``QvError``."""
    bad = None
    if not path or "\x00" in path:
        bad = "contains NUL" if path else "is empty"
    elif path.startswith("/") or "\\" in path or (len(path) > 1 and path[1] == ":"):
        bad = "is absolute or uses backslashes"
    else:
        parts = path.split("/")
        if any(p in ("", ".", "..") for p in parts):
            bad = "has '..', '.' or empty components"
        elif parts[0] in (RESERVED, ".git"):
            bad = f"writes into {parts[0]}/"
        elif _CONTROL.search(path):
            bad = "contains control characters"
    if bad:
        raise QvError(
            f"refusing file name {path!r} from the server: it {bad}",
            hint="the source is broken or hostile; nothing was written for this repo",
        )
    return path


def target_path(root: Path, path: str) -> Path:
    """Final location of ``path`` under ``root``; refuses symlinks that lead outside it."""
    check_repo_path(path)
    target = root / path
    real_root = os.path.realpath(root)
    real_parent = os.path.realpath(target.parent)
    if real_parent != real_root and not real_parent.startswith(real_root + os.sep):
        raise QvError(
            f"refusing to write {path!r}: {target.parent} leads outside {root} through a symlink",
            hint="remove the symlink or pick another --local-dir",
        )
    if target.is_symlink():
        raise QvError(f"refusing to replace symlink {target}", hint="remove it or pick another --local-dir")
    return target


@contextmanager
def dir_lock(root: Path, reporter) -> Iterator[None]:
    """One fetch per directory at a time; a second one waits, then finds the files done."""
    lock_path = root / ".qvdoctor" / "lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            reporter.event("note", message=f"waiting for another qvdoctor fetch into {root}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
