"""Shared test helpers: run the real CLI in a child process, find shipped snapshots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MACHINES = ROOT / "qvdoctor" / "data" / "machines"


class CliResult:
    def __init__(self, proc: subprocess.CompletedProcess[str]):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def json(self):
        return json.loads(self.stdout)


def run_qvdoctor(*args: str, env: dict[str, str] | None = None, input: str | None = None, timeout: float = 300, cwd: Path | None = None) -> CliResult:
    """Run ``python -m qvdoctor ARGS`` as a user would, with the project on the path."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "qvdoctor", *args], capture_output=True, text=True,
                          env=full_env, input=input, timeout=timeout, cwd=cwd)
    return CliResult(proc)


@pytest.fixture
def qvdoctor():
    return run_qvdoctor
