"""``qvdoctor diagnose``: facts (live or a snapshot) + optional model/log/image -> findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qvdoctor.doctor.context import build_context
from qvdoctor.doctor.rules import run_checks
from qvdoctor.errors import EXIT_FAIL, EXIT_OK, EXIT_WARN
from qvdoctor.facts.snapshot import Facts, load_facts
from qvdoctor.doctor.findings import Finding, worst_status


@dataclass
class Diagnosis:
    facts: Facts
    findings: list[Finding]
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the plan, the triage summary

    @property
    def exit_code(self) -> int:
        return {"fail": EXIT_FAIL, "warn": EXIT_WARN}.get(worst_status(self.findings), EXIT_OK)


def load_or_gather(facts_file: Path | None, probe: bool) -> Facts:
    if facts_file is not None:
        return load_facts(facts_file)
    from qvdoctor.facts import gather

    return gather(probe=probe)


def diagnose(facts: Facts, model: Any = None, extra_names: dict[str, Any] | None = None) -> Diagnosis:
    names = build_context(facts, model=model, extra=extra_names)
    return Diagnosis(facts, run_checks(names))
