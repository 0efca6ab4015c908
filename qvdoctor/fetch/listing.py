"""What a source says about a repo, and how to reach one file's bytes."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Callable, Sequence


@dataclass
class RemoteFile:
    """One file of a listing. ``sha256`` is the content hash when the source publishes it;
    ``git_oid`` the git blob sha1 (Hugging Face gives only this for non-LFS files)."""

    path: str
    size: int
    sha256: str | None = None
    git_oid: str | None = None
    lfs: bool = False


@dataclass
class Origin:
    """Where one file's bytes can be fetched with ranged GETs."""

    source: str  # "hf", "hf-mirror", "modelscope"
    url: str
    headers: dict[str, str] = field(default_factory=dict)  # may hold a token: never print


@dataclass
class Listing:
    """A repo at a revision resolved to a commit, as one source lists it."""

    source: str
    endpoint: str  # no credentials
    repo_id: str
    revision: str
    commit: str
    files: list[RemoteFile]
    origin_for: Callable[[RemoteFile], Origin] | None = None
    gated: bool = False


def select(files: list[RemoteFile], include: Sequence[str], exclude: Sequence[str]) -> list[RemoteFile]:
    """huggingface_hub's allow/ignore pattern rules: fnmatch, a trailing '/' means the folder."""

    def norm(p: str) -> str:
        return p + "*" if p.endswith("/") else p

    inc = [norm(p) for p in include]
    exc = [norm(p) for p in exclude]
    return [f for f in files if (not inc or any(fnmatch.fnmatch(f.path, p) for p in inc))
            and not any(fnmatch.fnmatch(f.path, p) for p in exc)]
