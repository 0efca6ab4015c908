"""Accuracy of log triage on real thread excerpts (``tests/logs/threads/``).

Each case is a log quoted verbatim in a public GitHub thread, with the root-cause family, the fix
the thread confirmed and how the run ended. The split (dev / held-out) is recorded in the index
and was fixed before any signature was written from the dev cases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from qvdoctor import tomlread as tomllib
from qvdoctor.doctor.findings import Finding

THREADS = Path(__file__).resolve().parents[3] / "tests" / "logs" / "threads"
TARGETS = {"family": 0.90, "fix": 0.80}


@dataclass
class Case:
    id: str
    split: str
    url: str
    family: str
    fix: str
    outcome: str  # fail / success / warning / unclear
    expect_fix: list[str] = field(default_factory=list)
    note: str = ""
    round: int = 1  # 1: the first 84 cases (split by hash); N > 1: collected after round N-1 was evaluated
    round1: str = ""  # "held-out" for the round-1 held-out cases, which joined dev afterwards

    @property
    def cut(self) -> bool:
        """The thread's copy is cut off before (or inside) the error message."""
        return self.id.endswith("-cut") or bool(re.search(r"(?<![-\w])cut(?:-off)?\b", self.note))  # not another case's id

    @property
    def log(self) -> Path:
        return THREADS / f"{self.id}.log"


@dataclass
class Verdict:
    case: Case
    got_family: str  # the root finding's family, or the top warning's, or "none"
    root: str | None
    exit_code: int
    failing: list[str]  # ids of failing findings
    family_ok: bool
    fix_ok: bool | None  # None when the thread confirmed no fix
    miss: str = ""  # why, when something is wrong

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.case.id, "expected": self.case.family, "got": self.got_family, "root": self.root,
                "exit_code": self.exit_code, "family_ok": self.family_ok, "fix_ok": self.fix_ok, "miss": self.miss}


def load_cases(split: str | None = None, index: Path | None = None) -> list[Case]:
    data = tomllib.loads((index or THREADS / "cases.toml").read_text(encoding="utf-8"))
    cases = [Case(**c) for c in data["case"]]
    return [c for c in cases if split is None or c.split == split]


def _fix_text(f: Finding) -> str:
    parts = [f.fix, " ".join(f"{k}={v}" for k, v in f.patch.flags.items()),
             " ".join(f"{k}={v}" for k, v in f.patch.env.items())]
    return " ".join(parts).lower()


def judge(case: Case, findings: list[Finding], exit_code: int) -> Verdict:
    """Compare a triage result with what the thread says."""
    failing = [f for f in findings if f.status == "fail"]
    root = next((f for f in findings if f.role == "root"), None)
    # the fallback's own findings (an unrecognised error, a start-up that stopped) name no family
    top = root or next((f for f in findings if f.status == "warn" and f.role != "unknown"), None)
    got = top.family if top is not None else "none"
    miss = ""
    if case.outcome == "success":
        family_ok = not failing
        miss = "" if family_ok else f"failing finding {failing[0].id} on a log that ends in success"
    elif case.outcome == "warning":
        family_ok = not failing and got == case.family
        miss = "" if family_ok else (f"failing finding {failing[0].id} on a warning-only log" if failing
                                     else f"got {got}, expected {case.family}")
    else:
        family_ok = got == case.family
        if exit_code == 0 and case.outcome == "fail":
            miss = "all-clear (exit 0) on a failing log"
        elif not family_ok:
            miss = f"got {got} ({root.id if root else 'no root'}), expected {case.family}"
    fix_ok: bool | None = None
    if case.expect_fix and case.outcome == "fail":
        text = _fix_text(top) if top is not None else ""
        fix_ok = all(any(alt.lower() in text for alt in want.split("|")) for want in case.expect_fix)
        if not fix_ok and not miss:
            miss = f"fix does not say {' and '.join(case.expect_fix)}"
    return Verdict(case, got, root.id if root else None, exit_code, [f.id for f in failing], family_ok, fix_ok, miss)


def evaluate(cases: Iterable[Case], names: dict | None = None, signatures: Any = None) -> list[Verdict]:
    """Triage each case's log (with ``signatures``, e.g. another revision's catalogue) and judge it."""
    from qvdoctor.doctor.triage import read_log, triage_text
    from qvdoctor.errors import QvError

    out = []
    for case in cases:
        try:
            result = triage_text(read_log(str(case.log)), names, signatures)
        except QvError:  # a copy diagnose refuses (binary bytes pasted as text): exit 3, no finding
            out.append(judge(case, [], 3))
            continue
        out.append(judge(case, result.findings, result.exit_code))
    return out


def summary(verdicts: list[Verdict]) -> dict[str, Any]:
    scored = [v for v in verdicts if v.case.outcome != "unclear"]
    fixes = [v for v in verdicts if v.fix_ok is not None]
    return {
        "cases": len(verdicts),
        "family_right": sum(v.family_ok for v in scored),
        "family_scored": len(scored),
        "family_rate": sum(v.family_ok for v in scored) / len(scored) if scored else 1.0,
        "fix_right": sum(bool(v.fix_ok) for v in fixes),
        "fix_scored": len(fixes),
        "fix_rate": sum(bool(v.fix_ok) for v in fixes) / len(fixes) if fixes else 1.0,
        "all_clear_on_failing": [v.case.id for v in verdicts if v.case.outcome == "fail" and v.exit_code == 0],
        "failing_on_success": [v.case.id for v in verdicts if v.case.outcome in ("success", "warning") and v.failing],
        "misses": {v.case.id: v.miss for v in verdicts if v.miss},
        # excerpts that keep their error message (not cut off before it, as the note or id says)
        "family_right_whole": sum(v.family_ok for v in scored if not v.case.cut),
        "family_scored_whole": sum(1 for v in scored if not v.case.cut),
    }
