"""The machine an image is built for, read from a facts snapshot (``build-image --facts``):
its GPUs' compute capability, the NVIDIA driver version and the CUDA that driver runs, so a
snapshot saved on the target (``qvdoctor diagnose --save-facts FILE``) replaces retyping them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qvdoctor.errors import QvError


@dataclass
class Target:
    cc: str
    driver: str | None
    cuda_driver: str | None  # the newest CUDA the driver runs, "12.4"
    source: Path  # the snapshot file
    label: str = ""

    def describe(self) -> str:
        drv = f"driver {self.driver}" + (f" (runs CUDA up to {self.cuda_driver})" if self.cuda_driver else "") if self.driver else "no driver recorded"
        return f"from {self.source.name}{f' ({self.label})' if self.label else ''}: cc {self.cc}, {drv}"


def target_from_facts(value: str) -> Target:
    """cc, driver and driver CUDA of the snapshot ``value`` (a file or a shipped short name)."""
    from qvdoctor.facts.snapshot import load_facts, resolve_facts_path

    path = resolve_facts_path(value)
    facts = load_facts(path)
    gpus = facts.nvidia.gpus
    if not gpus:
        why = f" ({facts.nvidia.error})" if facts.nvidia.error else ""
        raise QvError(f"{path} lists no NVIDIA GPU{why}", hint="save the snapshot on the target machine "
                      "('qvdoctor diagnose --save-facts FILE'), or pass --cc")
    ccs = sorted({g.cc for g in gpus})
    if len(ccs) > 1:
        raise QvError(f"{path} lists GPUs of compute capability {' and '.join(ccs)}: one image serves one",
                      hint=f"pass --cc with the one to build for ({', '.join(ccs)})")
    return Target(ccs[0], facts.nvidia.driver_version, facts.nvidia.cuda_driver_version, path,
                  getattr(facts, "label", "") or "")
