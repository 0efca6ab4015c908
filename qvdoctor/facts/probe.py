"""The isolated torch probe: a child process imports torch, with a timeout.

A broken install (an import that raises, segfaults or hangs) becomes a failed probe with the
reason, never a crash of qvdoctor."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from qvdoctor.facts.snapshot import ProbeFacts

_PROBE = r"""
import json, sys
import torch
out = {"torch_version": torch.__version__, "torch_cuda": torch.version.cuda}
out["cuda_available"] = bool(torch.cuda.is_available())
out["arch_list"] = list(torch.cuda.get_arch_list()) if out["cuda_available"] else []
out["device_count"] = torch.cuda.device_count() if out["cuda_available"] else 0
sys.stdout.write("QVDOCTOR-PROBE " + json.dumps(out) + "\n")
"""


def _last_error_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def probe_torch(timeout: float = 60.0, python: str | None = None) -> ProbeFacts:
    start = time.monotonic()
    try:
        proc = subprocess.run([python or sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return ProbeFacts(ok=False, seconds=timeout, error=f"importing torch did not finish within {timeout:g} s")
    except OSError as exc:
        return ProbeFacts(ok=False, error=f"cannot start the probe: {exc}")
    seconds = round(time.monotonic() - start, 2)
    for line in proc.stdout.splitlines():
        if line.startswith("QVDOCTOR-PROBE "):
            data = json.loads(line.split(" ", 1)[1])
            return ProbeFacts(ok=True, seconds=seconds, **data)
    if proc.returncode < 0:
        reason = f"importing torch killed the process with signal {-proc.returncode}"
    else:
        reason = f"importing torch failed (exit {proc.returncode}): {_last_error_line(proc.stderr)}"
    return ProbeFacts(ok=False, seconds=seconds, error=reason)
