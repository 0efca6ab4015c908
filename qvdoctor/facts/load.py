"""Where ``diagnose``, ``plan`` and ``smoke`` get their facts: a snapshot, or this machine."""

from __future__ import annotations

from pathlib import Path

from qvdoctor.facts.snapshot import Facts, load_facts


def load_or_gather(facts_file: str | Path | None, probe: bool) -> Facts:
    if facts_file is not None:
        return load_facts(facts_file)
    from qvdoctor.facts import gather

    return gather(probe=probe)
