"""Findings: what a check concluded, with its evidence, cause and a machine-applicable fix."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

STATUSES = ("fail", "warn", "fixed", "ok", "info")  # "fixed": a problem the recommended launch fixes
FAMILIES = (
    "kernel-arch",
    "attention-backend",
    "quant-alignment",
    "kv-cache",
    "oom",
    "multiproc",
    "dtype",
    "parallel-divisibility",
    "version",
    "shm-nccl",
    "network",
    "video-backend",
    "mm-limits",
    "other",
)
_STATUS_RANK = {"fail": 0, "warn": 1, "fixed": 2, "info": 3, "ok": 4}


@dataclass
class Patch:
    """Changes to the launch: ``vllm serve`` flags (snake_case keys) and environment variables.

    A flag value of ``None`` removes the flag; ``True`` renders as a bare switch."""

    flags: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.flags or self.env)

    def merged(self, other: "Patch") -> "Patch":
        """``other`` after this one; two dicts for one flag combine key by key (``other`` wins)."""
        flags = dict(self.flags)
        for key, value in other.flags.items():
            mine = flags.get(key)
            flags[key] = {**mine, **value} if isinstance(mine, dict) and isinstance(value, dict) else value
        return Patch(flags, {**self.env, **other.env})


@dataclass
class Evidence:
    """One piece of evidence: a fact (``source`` names it) or a log line (``line`` is 1-based)."""

    text: str
    source: str = "facts"
    line: int | None = None


@dataclass
class Finding:
    id: str
    family: str
    status: str
    title: str
    cause: str = ""
    fix: str = ""
    evidence: list[Evidence] = field(default_factory=list)
    patch: Patch = field(default_factory=Patch)
    docs: str = ""
    subject: str = ""  # what the finding is about, e.g. "GPU 0" or a library path
    role: str = ""  # for log triage: "root", "contributing", "benign"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["patch"] = {"flags": self.patch.flags, "env": self.patch.env}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Finding":
        data = dict(data)
        data["evidence"] = [Evidence(**e) for e in data.get("evidence", [])]
        data["patch"] = Patch(**data.get("patch", {}))
        return cls(**data)


def worst_status(findings: list[Finding]) -> str:
    """The most severe status among findings ("ok" for none)."""
    return min((f.status for f in findings), key=_STATUS_RANK.__getitem__, default="ok")


def sort_key(finding: Finding) -> tuple[int, str]:
    return (_STATUS_RANK[finding.status], finding.family)


def combined_patch(findings: list[Finding]) -> Patch:
    """All fixes of failing and warning findings, applied in order (later ones win)."""
    patch = Patch()
    for finding in findings:
        if finding.status in ("fail", "warn"):
            patch = patch.merged(finding.patch)
    return patch
