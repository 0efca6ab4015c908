"""The attempt loop: run, and on failure triage the kept log, apply the root cause's patch, retry.

Bounded (``max_attempts``), never the same flags twice, and it stops with an explanation when the
log matches no known signature, when the root cause carries no machine-applicable fix, or when
the fix would repeat an earlier attempt.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from qvdoctor.doctor.findings import Finding, Patch
from qvdoctor.smoke.backends import Outcome, SmokeInput, run_attempt
from qvdoctor.launch import Launch


@dataclass
class Attempt:
    number: int
    flags: dict[str, Any]
    env: dict[str, str]
    ok: bool
    seconds: float
    log: str
    returncode: int | None = None
    error: str | None = None
    finding: dict[str, Any] | None = None  # the root cause that failed it (triage of its log)
    patch_applied: dict[str, Any] | None = None  # what the next attempt changed, and why
    result: dict[str, Any] = field(default_factory=dict)
    peak_rss_bytes: int = 0
    peak_gpu_bytes: int | None = None
    gpu_source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "flags": self.flags,
            "env": self.env,
            "ok": self.ok,
            "seconds": round(self.seconds, 2),
            "log": self.log,
            "returncode": self.returncode,
            "error": self.error,
            "finding": self.finding,
            "patch_applied": self.patch_applied,
        }


@dataclass
class LoopResult:
    attempts: list[Attempt]
    final: Launch  # the launch that succeeded, else the last one tried
    ok: bool
    explanation: str | None  # why the loop stopped without success


Triage = Callable[[str], Any]  # log text -> TriageResult
Events = Callable[[str, dict[str, Any]], None]


def _read_log(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _short(finding: Finding) -> dict[str, Any]:
    data = finding.to_dict()
    data["evidence"] = data.get("evidence", [])[:3]
    return data


def run_loop(
    backend: str,
    inp: SmokeInput,
    launch: Launch,
    workdir: Path,
    triage: Triage,
    max_attempts: int = 4,
    on_event: Events | None = None,
    on_line: Callable[[str], None] | None = None,
    consistent: Callable[[Launch], tuple[Launch, list[str]]] | None = None,
) -> LoopResult:
    emit = on_event or (lambda kind, data: None)
    attempts: list[Attempt] = []
    seen: dict[str, int] = {}
    explanation: str | None = None
    for number in range(1, max_attempts + 1):
        seen[launch.key()] = number
        emit("attempt-start", {"number": number, "flags": launch.flags, "env": launch.env})
        t0 = time.monotonic()
        outcome: Outcome = run_attempt(backend, inp, launch, workdir / f"attempt-{number}", on_line)
        attempt = Attempt(
            number=number, flags=dict(launch.flags), env=dict(launch.env), ok=outcome.ok,
            seconds=time.monotonic() - t0, log=outcome.log_path, returncode=outcome.returncode,
            error=outcome.error, result=outcome.result, peak_rss_bytes=outcome.peak_rss_bytes,
            peak_gpu_bytes=outcome.peak_gpu_bytes, gpu_source=outcome.gpu_source,
        )
        attempts.append(attempt)
        if outcome.ok:
            emit("attempt-ok", {"number": number})
            return LoopResult(attempts, launch, True, None)

        tri = triage(_read_log(outcome.log_path))
        root: Finding | None = getattr(tri, "root", None)
        if root is None:
            last = getattr(tri, "last_error_line", None)
            explanation = (
                f"attempt {number} failed ({outcome.error or 'see its log'}) and its log matches no known "
                f"failure signature, so there is no patch to apply"
                + (f"; last error line: {last}" if last else "")
                + f". Full log: {outcome.log_path}"
            )
            emit("attempt-failed", {"number": number, "finding": None})
            break
        attempt.finding = _short(root)
        emit("attempt-failed", {"number": number, "finding": attempt.finding})
        patch: Patch = root.patch
        if not patch:
            explanation = (
                f"attempt {number} failed on {root.id} ({root.cause}); this fix is not a flag or "
                f"environment change qvdoctor can apply: {root.fix}"
            )
            break
        nxt = launch.apply(patch)
        fix = root.fix
        if consistent is not None:  # e.g. a TP from the log's numbers -> one the model can split
            nxt, notes = consistent(nxt)
            patch = launch.patch_to(nxt)
            if notes:
                fix = f"{_describe(patch)}: " + "; ".join(notes)
        if nxt.key() == launch.key():
            explanation = (
                f"attempt {number} failed on {root.id}; its patch {patch.flags or patch.env} is already "
                f"in place, so retrying would run the same flags again. Fix: {root.fix}"
            )
            break
        if nxt.key() in seen:
            explanation = (
                f"attempt {number} failed on {root.id}; its patch would bring back the flags of attempt "
                f"{seen[nxt.key()]}, which already failed. Fix by hand: {root.fix}"
            )
            break
        if number == max_attempts:
            explanation = (
                f"stopped after {max_attempts} attempts (--max-attempts); the next patch would have been "
                f"{_describe(patch)} for {root.id}"
            )
            break
        attempt.patch_applied = {"flags": dict(patch.flags), "env": dict(patch.env), "reason": root.id, "fix": fix}
        emit("patch", {"number": number, "patch": attempt.patch_applied})
        launch = nxt
    return LoopResult(attempts, launch, False, explanation)


def _describe(patch: Patch) -> str:
    parts = [f"{k}={v}" for k, v in patch.flags.items()] + [f"{k}={v}" for k, v in patch.env.items()]
    return ", ".join(parts)
