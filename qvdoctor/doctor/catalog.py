"""The check catalogue: declarative entries under ``checks/`` (one TOML file per check).

An entry has identity (``id``, ``family``, ``title``), a ``cause`` and a ``[fix]`` (text plus
machine-applicable ``flags``/``env``), and one or both of:

* ``[facts]`` — an environment check: ``each`` (``"gpu in gpus"``), ``applies``, ``fails``,
  ``status``, ``evidence`` and ``ok`` (text of the passing finding);
* ``[log]`` — a log signature: ``patterns`` with named groups, ``role`` and friends (see
  :mod:`qvdoctor.doctor.triage`).

Texts are templates (``{gpu.name}``); values that start with ``=`` are expressions
(:mod:`qvdoctor.doctor.expr`).
"""

from __future__ import annotations

import functools
from qvdoctor import tomlread as tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qvdoctor.errors import QvError
from qvdoctor.doctor.findings import FAMILIES, STATUSES


@dataclass(frozen=True)
class FactsRule:
    fails: str
    applies: str = "True"
    each: str | None = None  # "gpu in gpus"
    status: str = "fail"
    evidence: tuple[str, ...] = ()
    ok: str | None = None
    subject: str = ""


@dataclass(frozen=True)
class FixSpec:
    text: str = ""
    flags: dict[str, Any] | str = field(default_factory=dict)  # or "=expression" giving the table
    env: dict[str, Any] | str = field(default_factory=dict)


@dataclass(frozen=True)
class CheckEntry:
    id: str
    family: str
    title: str
    cause: str
    fix: FixSpec
    path: Path
    docs: str = ""
    facts: FactsRule | None = None
    log: dict[str, Any] | None = None  # interpreted by qvdoctor.doctor.triage


def catalog_dir() -> Path:
    """``checks/`` of a source checkout, or the copy packed into the wheel."""
    packed = Path(__file__).resolve().parents[1] / "_catalog"
    if packed.is_dir():
        return packed
    return Path(__file__).resolve().parents[2] / "checks"


def _entry(path: Path, data: dict[str, Any]) -> CheckEntry:
    def need(key: str) -> Any:
        if key not in data:
            raise QvError(f"check entry {path} has no '{key}'")
        return data[key]

    family = need("family")
    if family not in FAMILIES:
        raise QvError(f"check entry {path}: unknown family {family!r}", f"use one of: {', '.join(FAMILIES)}")
    facts = None
    if "facts" in data:
        raw = dict(data["facts"])
        raw["evidence"] = tuple(raw.get("evidence", ()))
        facts = FactsRule(**raw)
        if facts.status not in STATUSES:
            raise QvError(f"check entry {path}: unknown status {facts.status!r}")
    fix = FixSpec(**data.get("fix", {}))
    known = {"id", "family", "title", "cause", "fix", "docs", "facts", "log"}
    if set(data) - known:
        raise QvError(f"check entry {path}: unknown key(s) {sorted(set(data) - known)}")
    return CheckEntry(
        id=need("id"), family=family, title=need("title"), cause=need("cause"), fix=fix,
        path=path, docs=data.get("docs", ""), facts=facts, log=data.get("log"),
    )


@functools.lru_cache(maxsize=4)
def load_catalog(directory: Path | None = None) -> tuple[CheckEntry, ...]:
    """Every entry, sorted by path; duplicate ids are an error."""
    directory = directory or catalog_dir()
    entries: list[CheckEntry] = []
    seen: dict[str, Path] = {}
    for path in sorted(directory.rglob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise QvError(f"check entry {path} cannot be read: {exc}")
        try:
            entry = _entry(path, data)
        except TypeError as exc:
            raise QvError(f"check entry {path} is malformed: {exc}")
        if entry.id in seen:
            raise QvError(f"check id {entry.id!r} appears twice: {seen[entry.id]} and {path}")
        seen[entry.id] = path
        entries.append(entry)
    return tuple(entries)
