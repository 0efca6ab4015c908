"""Download sources as one table of adapters (``SOURCES``), chosen by name.

Each adapter says where its hub is (``endpoint``, from the same environment variables as the
official clients: HF_ENDPOINT, MODELSCOPE_ENDPOINT/MODELSCOPE_DOMAIN), which setting switches it
off (``offline``: HF_HUB_OFFLINE, MODELSCOPE_OFFLINE, QVDOCTOR_OFFLINE), which URL answers a cheap
reachability probe (``probe_url``), and how bytes move: HTTP sources ``list`` a repo (the revision
resolved to a commit) and leave the bytes to the ranged-GET engine; a source with its own
transport (git-lfs) has ``transfer`` instead. Implementations are imported only when used."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Callable
from urllib.parse import quote

from qvdoctor.errors import QvError
from qvdoctor.fetch.listing import Listing

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}$")
_TRUE = ("1", "true", "yes", "on")


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def _offline(*names: str) -> Callable[[], str | None]:
    """The first of ``names`` (or QVDOCTOR_OFFLINE) that is set to a true value, as ``NAME=value``."""

    def check() -> str | None:
        for name in (*names, "QVDOCTOR_OFFLINE"):
            if _env_true(name):
                return f"{name}={os.environ[name].strip()}"
        return None

    return check


def _hf_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _mirror_endpoint() -> str:
    return os.environ.get("QVDOCTOR_HF_MIRROR_ENDPOINT", "https://hf-mirror.com").rstrip("/")


def _ms_endpoint() -> str:
    ep = os.environ.get("MODELSCOPE_ENDPOINT") or os.environ.get("MODELSCOPE_DOMAIN") or "https://www.modelscope.cn"
    return (ep if "://" in ep else f"https://{ep}").rstrip("/")


def _git_endpoint() -> str:
    return os.environ.get("QVDOCTOR_GIT_ENDPOINT", _hf_endpoint()).rstrip("/")


def _hf_list(name: str) -> Callable[[str, str, str | None], Listing]:
    def list_(endpoint: str, repo_id: str, revision: str | None) -> Listing:
        from qvdoctor.fetch.sources.hf import list_hf

        return list_hf(name, endpoint, repo_id, revision)

    return list_


def _ms_list(endpoint: str, repo_id: str, revision: str | None) -> Listing:
    from qvdoctor.fetch.sources.modelscope import list_modelscope

    return list_modelscope(endpoint, repo_id, revision)


def _git_transfer(repo_id: str, revision: str | None, root, include, exclude, dry_run: bool, reporter,
                  verify_all: bool = False) -> dict:
    from qvdoctor.fetch.sources.gitlfs import fetch_git_lfs

    return fetch_git_lfs(repo_id, revision, root, include, exclude, dry_run, reporter, verify_all)


def _hf_probe(endpoint: str, repo_id: str, revision: str | None) -> str:
    return f"{endpoint}/api/models/{repo_id}/revision/{quote(revision or 'main', safe='')}"


def _ms_probe(endpoint: str, repo_id: str, revision: str | None) -> str:
    return f"{endpoint}/api/v1/models/{repo_id}/revisions"


def _git_probe(endpoint: str, repo_id: str, revision: str | None) -> str:
    return f"{endpoint}/{repo_id}.git/info/refs?service=git-upload-pack"


@dataclass(frozen=True)
class Source:
    """One download source."""

    name: str
    endpoint: Callable[[], str]
    offline: Callable[[], str | None]  # the setting that forbids asking this hub, or None
    probe_url: Callable[[str, str, str | None], str]  # (endpoint, repo id, revision) -> URL
    list: Callable[[str, str, str | None], Listing] | None = None  # HTTP: listing; bytes via the engine
    transfer: Callable[..., dict] | None = None  # its own transport (git-lfs)
    in_auto: bool = True  # probed by --source auto


SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("hf", _hf_endpoint, _offline("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"), _hf_probe, list=_hf_list("hf")),
    Source("hf-mirror", _mirror_endpoint, _offline("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"), _hf_probe,
           list=_hf_list("hf-mirror")),
    Source("modelscope", _ms_endpoint, _offline("MODELSCOPE_OFFLINE"), _ms_probe, list=_ms_list),
    Source("git-lfs", _git_endpoint, _offline("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"), _git_probe, transfer=_git_transfer,
           in_auto=False),
)}
HTTP_SOURCES = tuple(n for n, s in SOURCES.items() if s.in_auto)
ALL_SOURCES = ("auto", *SOURCES)


def source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise QvError(f"unknown source {name!r}", hint="one of: " + ", ".join(ALL_SOURCES)) from None


def check_repo_id(repo_id: str) -> str:
    if not _REPO_ID.match(repo_id or "") or ".." in repo_id or "--" in repo_id or repo_id.endswith(".git"):
        raise QvError(
            f"{repo_id!r} is not a repo id",
            hint="use owner/name, for example Qwen/Qwen2.5-VL-7B-Instruct",
        )
    return repo_id


def endpoint_for(name: str) -> str:
    return source(name).endpoint()


def list_repo(name: str, repo_id: str, revision: str | None) -> Listing:
    """List ``repo_id`` at ``revision`` (the source's default branch when None)."""
    s = source(name)
    if s.list is None:
        raise QvError(f"source {name!r} has no HTTP listing")
    return s.list(s.endpoint(), repo_id, revision)


def offline_sources() -> dict[str, str]:
    """Sources switched off by an offline setting: {name: 'HF_HUB_OFFLINE=1'}."""
    return {n: why for n, s in SOURCES.items() if (why := s.offline())}
