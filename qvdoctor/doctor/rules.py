"""The checks engine: evaluates the ``[facts]`` rules of catalogue entries into findings."""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from qvdoctor.doctor.catalog import CheckEntry, load_catalog
from qvdoctor.doctor.expr import ExprError, evaluate, render, value_of
from qvdoctor.doctor.findings import Evidence, Finding, Patch, sort_key

_EACH = re.compile(r"\s*([A-Za-z_]\w*)\s+in\s+(.+)")


def _values(spec: dict[str, Any] | str, names: Mapping[str, Any]) -> dict[str, Any]:
    """A fix's flags/env: a table of values, or one ``=expression`` giving the whole table."""
    if isinstance(spec, str):
        return dict(value_of(spec, names) or {})
    return {k: value_of(v, names) for k, v in spec.items()}


def make_finding(entry: CheckEntry, status: str, names: Mapping[str, Any], evidence: list[Evidence], subject: str = "") -> Finding:
    """Render an entry's cause and fix for one situation; ``ok`` findings carry no patch."""
    patch = Patch()
    if status in ("fail", "warn"):
        patch = Patch(_values(entry.fix.flags, names), {k: str(v) for k, v in _values(entry.fix.env, names).items()})
    return Finding(
        id=entry.id,
        family=entry.family,
        status=status,
        title=render(entry.title, names),
        cause=render(entry.cause, names) if status != "ok" else "",
        fix=render(entry.fix.text, names) if status in ("fail", "warn") else "",
        evidence=evidence,
        patch=patch,
        docs=entry.docs,
        subject=subject,
    )


def _items(entry: CheckEntry, names: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    rule = entry.facts
    assert rule is not None
    if not rule.each:
        yield dict(names)
        return
    match = _EACH.fullmatch(rule.each)
    if not match:
        raise ExprError(f"'each' must read 'NAME in EXPRESSION', not {rule.each!r}")
    var, source = match.groups()
    for item in evaluate(source, names) or []:
        yield {**names, var: item}


def run_fact_check(entry: CheckEntry, names: Mapping[str, Any]) -> list[Finding]:
    rule = entry.facts
    if rule is None:
        return []
    findings = []
    for scope in _items(entry, names):
        if not evaluate(rule.applies, scope):
            continue
        failed = bool(evaluate(rule.fails, scope))
        if not failed and rule.ok is None:
            continue
        evidence = [Evidence(render(t, scope)) for t in rule.evidence]
        subject = render(rule.subject, scope) if rule.subject else ""
        finding = make_finding(entry, rule.status if failed else "ok", scope, evidence, subject)
        if not failed:
            finding.title = render(rule.ok or "", scope)
        findings.append(finding)
    return findings


def check_error(entry: CheckEntry, exc: Exception) -> Finding:
    return Finding(
        id="qvdoctor-check-error",
        family="other",
        status="warn",
        title=f"check {entry.id} could not be evaluated",
        cause=f"{type(exc).__name__}: {exc}",
        fix="This is a qvdoctor bug; the other checks still ran. Please report it.",
        evidence=[Evidence(str(entry.path), source="catalog")],
        subject=entry.id,
    )


def dedupe(findings: list[Finding]) -> list[Finding]:
    """Merge findings that say the same thing (e.g. 8 identical GPUs), keeping all evidence."""
    merged: dict[tuple[str, str, str, str], Finding] = {}
    for f in findings:
        key = (f.id, f.status, f.cause, f.fix)
        if key in merged:
            kept = merged[key]
            kept.evidence += [e for e in f.evidence if e not in kept.evidence]
            if f.subject and f.subject not in kept.subject.split(", "):
                kept.subject = f"{kept.subject}, {f.subject}" if kept.subject else f.subject
        else:
            merged[key] = f
    return list(merged.values())


def run_checks(names: Mapping[str, Any], entries: Iterable[CheckEntry] | None = None) -> list[Finding]:
    """Evaluate every facts rule; a broken entry becomes a warning, never a crash."""
    findings: list[Finding] = []
    for entry in entries if entries is not None else load_catalog():
        try:
            findings += run_fact_check(entry, names)
        except (ExprError, TypeError, ValueError, AttributeError, KeyError, ZeroDivisionError) as exc:
            findings.append(check_error(entry, exc))
    return sorted(dedupe(findings), key=sort_key)
