"""The CLI starts fast: no heavy package is imported by `--help` or `diagnose`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT

HEAVY = ("torch", "vllm", "transformers", "numpy", "av", "huggingface_hub", "modelscope", "docker")

PROBE = """
import atexit, sys
heavy = {heavy!r}
atexit.register(lambda: sys.stderr.write("HEAVY=" + ",".join(m for m in heavy if m in sys.modules) + "\\n"))
from qvdoctor.cli import main
main({args!r})
"""


@pytest.mark.parametrize("args", [["--help"], ["diagnose", "--json"], ["kernels", "--help"], ["plan", "--help"], ["fetch", "--help"], ["smoke", "--help"]])
def test_no_heavy_imports(args):
    proc = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY, args=args)], capture_output=True, text=True,
                          cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    line = [x for x in proc.stderr.splitlines() if x.startswith("HEAVY=")]
    assert line == ["HEAVY="], proc.stderr[-2000:]


def test_version_and_help():
    proc = subprocess.run([sys.executable, "-m", "qvdoctor", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.startswith("qvdoctor ")
    proc = subprocess.run([sys.executable, "-m", "qvdoctor", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0
    for command in ("diagnose", "kernels"):
        assert command in proc.stdout
