"""Repos the emulators serve: file contents (in memory, or blobs on disk for big files) with the
hashes each hub publishes (sha256 of the content, git blob sha1, LFS pointer)."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

LFS_THRESHOLD = 10_000  # bytes; bigger files are LFS on the emulated hubs
_GEN_BLOCK = 4 << 20


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def pseudo_random(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


@dataclass
class EmuFile:
    path: str
    size: int
    sha256: str
    git_oid: str  # blob sha1 of the content (regular) or of the pointer (LFS)
    lfs: bool
    blob: Path | bytes

    def data(self) -> bytes:
        return self.blob if isinstance(self.blob, bytes) else self.blob.read_bytes()


@dataclass
class EmuRepo:
    repo_id: str
    files: dict[str, EmuFile]
    commit: str
    branches: dict[str, str] = field(default_factory=dict)  # name -> commit
    tags: dict[str, str] = field(default_factory=dict)
    gated: bool = False
    hostile: list[dict] = field(default_factory=list)  # raw listing entries served as-is

    def resolve(self, rev: str) -> str | None:
        if rev in self.branches:
            return self.branches[rev]
        if rev in self.tags:
            return self.tags[rev]
        if rev == self.commit:
            return rev
        return None


def _entry(path: str, data: bytes, lfs_threshold: int) -> EmuFile:
    sha = hashlib.sha256(data).hexdigest()
    lfs = len(data) > lfs_threshold
    oid = git_blob_sha1(lfs_pointer(sha, len(data)) if lfs else data)
    return EmuFile(path, len(data), sha, oid, lfs, data)


def big_blob(blob_dir: Path, name: str, size: int, seed: int) -> EmuFile:
    """A file of ``size`` pseudo-random bytes on disk (hashes cached next to it)."""
    blob_dir.mkdir(parents=True, exist_ok=True)
    path = blob_dir / f"{name.replace('/', '_')}.{size}.{seed}.bin"
    meta = path.with_suffix(".json")
    if not (path.exists() and meta.exists() and path.stat().st_size == size):
        h = hashlib.sha256()
        rng = random.Random(seed)
        with open(path, "wb") as f:
            left = size
            while left:
                block = rng.randbytes(min(_GEN_BLOCK, left))
                h.update(block)
                f.write(block)
                left -= len(block)
        meta.write_text(json.dumps({"sha256": h.hexdigest()}))
    sha = json.loads(meta.read_text())["sha256"]
    oid = git_blob_sha1(lfs_pointer(sha, size))
    return EmuFile(name, size, sha, oid, True, path)


def build_repo(repo_id: str, contents: dict, *, lfs_threshold: int = LFS_THRESHOLD, branch: str = "main",
               tags: dict[str, str] | None = None, gated: bool = False) -> EmuRepo:
    """``contents``: path -> bytes, or path -> int (that many pseudo-random bytes), or an EmuFile."""
    files: dict[str, EmuFile] = {}
    for i, (path, spec) in enumerate(sorted(contents.items())):
        if isinstance(spec, EmuFile):
            spec.path = path
            files[path] = spec
        elif isinstance(spec, int):
            files[path] = _entry(path, pseudo_random(spec, i + len(path)), lfs_threshold)
        else:
            files[path] = _entry(path, bytes(spec), lfs_threshold)
    commit = hashlib.sha1(json.dumps([(p, f.sha256) for p, f in sorted(files.items())]).encode()).hexdigest()
    repo = EmuRepo(repo_id, files, commit, {branch: commit}, {}, gated)
    for t in (tags or {}):
        repo.tags[t] = commit
    return repo
