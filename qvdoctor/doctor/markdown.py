"""``diagnose --format markdown``: a report to paste into a bug thread, with the answer in it.

What people paste ``collect_env`` output for, but shorter and with the diagnosis: the facts that
matter (GPUs, driver, CUDA, the torch/vLLM/transformers versions, container, shm), the findings
root cause first with their evidence lines, and the launch with the fix applied (rendered through
:class:`qvdoctor.launch.Launch`). Tokens, user names and home directories are redacted from every
line, evidence included, so the page can be pasted as is.
"""

from __future__ import annotations

import getpass
import os
import re
from typing import Any, Iterable

from qvdoctor.doctor.findings import Finding, combined_patch
from qvdoctor.facts.snapshot import Facts
from qvdoctor.launch import launch_from_log

PACKAGES = ("torch", "vllm", "transformers", "xformers", "flash_attn", "av", "decord", "torchvision", "ray")
_ROLE_ORDER = {"root": 0, "unknown": 0, "contributing": 1, "": 1, "benign": 2}
_STATUS_MARK = {"fail": "FAIL", "warn": "WARN", "info": "note", "ok": "ok"}

# --------------------------------------------------------------------------- redaction

_SECRETS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bhf_[A-Za-z0-9]{20,}"), "<redacted>"),  # Hugging Face tokens
    (re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}"), "<redacted>"),  # OpenAI-style keys
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), "<redacted>"),  # GitHub tokens
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "<redacted>"),  # AWS access key ids
    (re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{5,}"), "<redacted>"),  # JWTs
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\g<1><redacted>"),
    (re.compile(r"(?i)\b([A-Z0-9_]*(?:TOKEN|SECRET|PASSWORD|API_KEY|APIKEY|CREDENTIALS?)[A-Z0-9_]*['\"]?\s*[=:]\s*)"
                r"(?!<redacted>)['\"]?[^\s'\",}]{4,}['\"]?"), r"\g<1><redacted>"),
    (re.compile(r"(?i)(--(?:api-key|hf-token)[= ])(?!<redacted>)\S+"), r"\g<1><redacted>"),
)
_HOMES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(/home/)(?!<user>)[^/\s'\":]{1,64}"), r"\g<1><user>"),
    (re.compile(r"(/Users/)(?!<user>)[^/\s'\":]{1,64}"), r"\g<1><user>"),
    (re.compile(r"(?i)([A-Z]:\\{1,2}Users\\{1,2})(?!<user>)[^\\\s'\":]{1,64}"), r"\g<1><user>"),
)


def redact(text: str, extra_words: Iterable[str] = ()) -> str:
    """``text`` without tokens, the user part of home directories and the given user names."""
    for rx, repl in _SECRETS + _HOMES:
        text = rx.sub(repl, text)
    for word in extra_words:
        if word and len(word) >= 3:
            text = re.sub(r"(?<![\w<])" + re.escape(word) + r"(?![\w>])", "<user>", text)
    return text


def _local_names() -> list[str]:
    """This machine's user name and home directory (redacted wherever they appear)."""
    names: list[str] = []
    try:
        names.append(getpass.getuser())
    except Exception:  # noqa: BLE001 - no user name is fine
        pass
    home = os.path.expanduser("~")
    if home not in ("/", "/root", "~"):
        names.append(os.path.basename(home.rstrip("/")))
    return [n for n in names if n and n not in ("root", "user")]


# --------------------------------------------------------------------------- report


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _fence(lines: list[str]) -> list[str]:
    ticks = "```"
    while any(ticks in line for line in lines):
        ticks += "`"
    return [ticks + "text", *lines, ticks]


def facts_table(facts: Facts) -> list[str]:
    """The facts that decide most failures, as a two-column table."""
    rows: list[tuple[str, str]] = []
    for gpu in facts.gpus:
        mem = f", {gpu.memory_total_bytes / 2**30:.0f} GiB" if gpu.memory_total_bytes else ""
        rows.append((f"GPU {gpu.index}", f"{gpu.name} (compute capability {gpu.cc}{mem})"))
    if not facts.gpus:
        rows.append(("GPUs", facts.nvidia.error or "none found"))
    if facts.nvidia.driver_version:
        rows.append(("NVIDIA driver", f"{facts.nvidia.driver_version} (CUDA {facts.nvidia.cuda_driver_version or '?'})"))
    for name in PACKAGES:
        pkg = facts.packages.get(name)
        if pkg is not None:
            extra = f" (CUDA {pkg.cuda})" if pkg.cuda else ""
            dist = f"{pkg.dist} " if pkg.dist and pkg.dist != name else ""
            rows.append((name, f"{dist}{pkg.version}{extra}"))
    sysf = facts.system
    if sysf.os:
        rows.append(("OS", sysf.os))
    if sysf.python:
        rows.append(("Python", sysf.python))
    if sysf.cpu_count or sysf.memory_bytes:
        mem = f", {sysf.memory_bytes / 2**30:.0f} GiB RAM" if sysf.memory_bytes else ""
        rows.append(("CPU", f"{sysf.cpu_count or '?'} cores{mem}"))
    if sysf.in_container:
        rows.append(("container", sysf.container_evidence or "yes"))
    if sysf.shm_bytes:
        rows.append(("/dev/shm", f"{sysf.shm_bytes / 2**20:.0f} MiB"))
    out = [f"Facts: {facts.label} ({facts.provenance})", "", "| | |", "|---|---|"]
    out += [f"| {_cell(k)} | {_cell(v)} |" for k, v in rows]
    return out


def _finding_lines(f: Finding) -> list[str]:
    role = {"root": "root cause", "unknown": "no known signature", "contributing": "contributing",
            "benign": "not a problem"}.get(f.role, f.role or f.status)
    head = f"#### {_STATUS_MARK.get(f.status, f.status)} `{f.id}` ({f.family}, {role})"
    out = [head, "", f"**{f.title}**"]
    if f.cause:
        out += ["", f"*Cause.* {f.cause}"]
    if f.fix:
        out += ["", f"*Fix.* {f.fix}"]
    if f.evidence:
        lines = [(f"{e.line}: " if e.line else f"[{e.source}] ") + e.text for e in f.evidence]
        out += ["", "Evidence:", "", *_fence(lines)]
    return out


def markdown_report(findings: list[Finding], facts: Facts, *, source: str | None = None,
                    summary: dict[str, Any] | None = None, model: str | None = None,
                    context: dict[str, Any] | None = None, prescription: Any = None) -> str:
    """The whole report (GitHub-flavoured markdown), redacted. ``prescription`` (diagnose without
    a log) gives the launch: the one qvdoctor validated, or why nothing fits."""
    ordered = sorted(findings, key=lambda f: (_ROLE_ORDER.get(f.role, 1), {"fail": 0, "warn": 1}.get(f.status, 2)))
    shown = [f for f in ordered if f.status in ("fail", "warn") or f.role in ("root", "unknown", "benign")]
    root = next((f for f in ordered if f.role == "root"), None)
    failing = [f for f in ordered if f.status == "fail"]
    out = ["## qvdoctor diagnosis", ""]
    if source is not None:
        out.append(f"Log: `{source}`")
    if root is not None:
        line = f" (log line {root.evidence[0].line})" if root.evidence and root.evidence[0].line else ""
        out.append(f"**Root cause: `{root.id}`**{line}: {root.title}")
    elif failing:
        out.append(f"**Failing: `{failing[0].id}`**: {failing[0].title}")
    else:
        out.append("**No failure found.**" if not any(f.status == "warn" for f in ordered) else "**Warnings only.**")
    out += ["", "### Machine", "", *facts_table(facts), "", "### Findings", ""]
    if not shown:
        out.append("Nothing to report.")
    for f in shown:
        out += [*_finding_lines(f), ""]
    if prescription is not None:
        out += ["### Launch", ""]
        if prescription.launch is not None:
            out += ["Checked against the model and this machine by qvdoctor's rules (not run):", "", *_fence([prescription.launch.command()]), ""]
        else:
            out += ["Nothing fits: no launch qvdoctor knows works here.", "", *[f"- {w}" for w in prescription.why_nothing_fits], ""]
    launch = launch_from_log(context or {}, model)
    patch = combined_patch([f for f in ordered if f.role in ("root", "")])
    if prescription is None and (patch or launch.flags or launch.model):
        fixed = launch.apply(patch)
        out += ["### Launch", ""]
        if patch:
            out += ["With the fix applied:", "", *_fence([fixed.command()])]
            if launch.flags or launch.model:
                out += ["", "As the log started it:", "", *_fence([launch.command()])]
        else:
            out += _fence([launch.command()])
        out.append("")
    if summary and summary.get("last_error_line"):
        out += ["### Last error line", "", *_fence([f"{summary.get('last_error_line_no')}: {summary['last_error_line']}"]), ""]
    out.append("<sub>Generated by `qvdoctor diagnose --format markdown`; tokens, user names and home paths redacted.</sub>")
    return redact("\n".join(out) + "\n", _local_names())
