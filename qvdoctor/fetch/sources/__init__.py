"""Sources: each lists a repo through its hub's own API (resolving the revision to a commit) and
says how to GET each file. ``endpoint_for`` reads the same environment variables as the
official clients (HF_ENDPOINT, MODELSCOPE_ENDPOINT/MODELSCOPE_DOMAIN)."""

from __future__ import annotations

import os
import re

from qvdoctor.errors import QvError
from qvdoctor.fetch.listing import Listing

HTTP_SOURCES = ("hf", "hf-mirror", "modelscope")
ALL_SOURCES = ("auto", *HTTP_SOURCES, "git-lfs")
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}$")


def check_repo_id(repo_id: str) -> str:
    if not _REPO_ID.match(repo_id or "") or ".." in repo_id or "--" in repo_id or repo_id.endswith(".git"):
        raise QvError(
            f"{repo_id!r} is not a repo id",
            hint="use owner/name, for example Qwen/Qwen2.5-VL-7B-Instruct",
        )
    return repo_id


def endpoint_for(source: str) -> str:
    if source == "hf":
        return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    if source == "hf-mirror":
        return os.environ.get("QVDOCTOR_HF_MIRROR_ENDPOINT", "https://hf-mirror.com").rstrip("/")
    if source == "modelscope":
        ep = os.environ.get("MODELSCOPE_ENDPOINT") or os.environ.get("MODELSCOPE_DOMAIN") or "https://www.modelscope.cn"
        return (ep if "://" in ep else f"https://{ep}").rstrip("/")
    if source == "git-lfs":
        return os.environ.get("QVDOCTOR_GIT_ENDPOINT", endpoint_for("hf")).rstrip("/")
    raise QvError(f"unknown source {source!r}", hint="one of: " + ", ".join(ALL_SOURCES))


def list_repo(source: str, repo_id: str, revision: str | None) -> Listing:
    """List ``repo_id`` at ``revision`` (the source's default branch when None)."""
    if source in ("hf", "hf-mirror"):
        from qvdoctor.fetch.sources.hf import list_hf

        return list_hf(source, endpoint_for(source), repo_id, revision)
    if source == "modelscope":
        from qvdoctor.fetch.sources.modelscope import list_modelscope

        return list_modelscope(endpoint_for(source), repo_id, revision)
    raise QvError(f"unknown source {source!r}", hint="one of: " + ", ".join(ALL_SOURCES))
