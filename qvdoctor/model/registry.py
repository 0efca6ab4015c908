"""The local model registry: what ``qvdoctor fetch`` fetched, so a repo id resolves offline.

One JSON file, ``$QVDOCTOR_CACHE/models.json`` (default ``~/.cache/qvdoctor/models.json``), with
one entry per (repo id, directory): revision, commit, source, directory, manifest, whether the
whole repo was fetched, and when. ``find`` answers from this file and the local Hugging Face
cache only — it never asks a hub — and says where it found the model."""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

FORMAT = "qvdoctor-model-registry/1"


def registry_path() -> Path:
    from qvdoctor.tinymodel import default_cache_root

    return default_cache_root() / "models.json"


@dataclass
class Found:
    """Where a repo id was found locally."""

    repo_id: str
    directory: Path
    where: str  # "qvdoctor registry" | "Hugging Face cache"
    commit: str | None = None
    source: str | None = None
    complete: bool = True

    def describe(self) -> str:
        extra = ", ".join(x for x in (f"fetched from {self.source}" if self.source else "",
                                      f"commit {self.commit[:12]}" if self.commit else "",
                                      "" if self.complete else "small files only") if x)
        return f"{self.repo_id}: found in the {self.where} at {self.directory}" + (f" ({extra})" if extra else "")


def _load() -> list[dict]:
    try:
        data = json.loads(registry_path().read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("models"), list):
        return []
    return [e for e in data["models"] if isinstance(e, dict) and e.get("repo_id") and e.get("directory")]


def record(repo_id: str, *, revision: str | None, commit: str | None, source: str | None, directory: Path,
           manifest: Path, complete: bool) -> None:
    """Add or refresh the entry for ``repo_id`` in ``directory`` (atomic, one writer at a time).
    A registry that cannot be written is not worth failing a finished download for."""
    path = registry_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(".models.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = [e for e in _load() if not (e["repo_id"] == repo_id and e["directory"] == str(directory))]
            entries.append({
                "repo_id": repo_id, "revision": revision, "commit": commit, "source": source,
                "directory": str(directory), "manifest": str(manifest), "complete": complete,
                "fetched": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            })
            tmp = path.with_name(f"models.json.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"format": FORMAT, "models": entries}, indent=1, sort_keys=True))
            os.replace(tmp, path)
    except OSError:
        pass


def entries(repo_id: str | None = None) -> list[dict]:
    return [e for e in _load() if repo_id is None or e["repo_id"] == repo_id]


def _usable(e: dict) -> bool:
    d = Path(e["directory"])
    return (d / "config.json").is_file() and Path(e.get("manifest") or d / ".qvdoctor" / "manifest.json").is_file()


def hf_cache_roots() -> list[Path]:
    roots = [os.environ.get("HF_HUB_CACHE"), os.environ.get("HF_HOME") and str(Path(os.environ["HF_HOME"]) / "hub"),
             str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface" / "hub")]
    return [Path(r).expanduser() for r in dict.fromkeys(filter(None, roots))]


def _hf_cache(repo_id: str) -> Found | None:
    for root in hf_cache_roots():
        repo = root / ("models--" + repo_id.replace("/", "--"))
        snaps = repo / "snapshots"
        if not snaps.is_dir():
            continue
        ref = repo / "refs" / "main"
        cands = []
        if ref.is_file():
            cands.append(snaps / ref.read_text().strip())
        cands += sorted(snaps.iterdir())
        for cand in cands:
            if (cand / "config.json").is_file():
                return Found(repo_id, cand, "Hugging Face cache", commit=cand.name)
    return None


def find(repo_id: str, revision: str | None = None, need_weights: bool = False) -> Found | None:
    """The newest usable registry entry for ``repo_id`` (matching ``revision`` when given: a
    branch/tag name or a commit), else its snapshot in the Hugging Face cache. No network."""
    cands = [e for e in entries(repo_id) if _usable(e)]
    if revision:
        cands = [e for e in cands if revision in (e.get("revision"), e.get("commit"))]
    if need_weights:
        cands = [e for e in cands if e.get("complete")]
    cands.sort(key=lambda e: (bool(e.get("complete")), e.get("fetched") or ""), reverse=True)
    if cands:
        e = cands[0]
        return Found(repo_id, Path(e["directory"]), "qvdoctor registry", e.get("commit"), e.get("source"),
                     bool(e.get("complete")))
    return _hf_cache(repo_id)
