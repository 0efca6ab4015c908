"""Gather a live facts snapshot of this machine."""

from __future__ import annotations

import datetime
import socket

from qvdoctor.facts.gpus import read_nvidia
from qvdoctor.facts.snapshot import Facts
from qvdoctor.facts.packages import read_packages
from qvdoctor.facts.system import read_system


def gather(*, probe: bool = False, scan_libraries: bool = True, probe_timeout: float = 60.0) -> Facts:
    packages = read_packages()
    facts = Facts(
        label=f"this machine ({socket.gethostname()})",
        provenance="live",
        nvidia=read_nvidia(),
        packages=packages,
        system=read_system(),
        collected_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )
    if scan_libraries:
        from qvdoctor.facts.libraries import scan_libraries as scan

        facts.libraries = scan(packages)
    if probe:
        from qvdoctor.facts.probe import probe_torch

        facts.probe = probe_torch(timeout=probe_timeout)
    return facts
