"""Implementation of ``qvdoctor diagnose`` (imported only when the command runs)."""

from __future__ import annotations

import sys
from pathlib import Path

from qvdoctor.diagnose import diagnose, load_or_gather
from qvdoctor.errors import QvError
from qvdoctor.report import print_findings, to_json


def run(*, facts: Path | None, save_facts: Path | None, log: str | None, model: str | None, image: str | None,
        probe: bool, json_out: bool, verbose: bool) -> int:
    if facts is not None and save_facts is not None:
        raise QvError("--facts and --save-facts do not go together", "--save-facts records this machine; --facts reads a recording")
    snapshot = load_or_gather(facts, probe)
    if save_facts is not None:
        try:
            snapshot.save(save_facts)
        except OSError as exc:
            raise QvError(f"cannot write {save_facts}: {exc.strerror or exc}")
        print(f"facts written to {save_facts}", file=sys.stderr)
    result = diagnose(snapshot)
    if json_out:
        print(to_json(result.findings, result.facts, **result.extra))
    else:
        print_findings(result.findings, result.facts, verbose=verbose)
    return result.exit_code
