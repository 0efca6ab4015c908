"""The result of scanning one file for kernel images."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from qvdoctor.kernels import rules


@dataclass
class KernelArchs:
    """The kernel images of one file. ``error`` says why the list may be empty or partial."""

    path: str
    sass: list[str]  # sorted unique SASS archs, e.g. ["sm_75", "sm_90"]
    ptx: list[str]  # sorted unique PTX archs, e.g. ["compute_90"]
    ptx_isa: dict[str, str] = field(default_factory=dict)  # "compute_90" -> highest PTX ISA, "8.7"
    size: int = 0
    error: str | None = None  # "truncated ELF: section headers past end of file", "not an ELF file"

    @property
    def has_device_code(self) -> bool:
        return bool(self.sass or self.ptx)

    def runs_on(self, cc: str, driver_cuda: str | None = None) -> bool:
        """Whether some kernel image here loads on compute capability ``cc`` ("7.5").

        True for a library without device code. ``driver_cuda`` ("12.4"), when known, rules
        out PTX whose ISA is newer than the driver can JIT."""
        return self.missing_reason(cc, driver_cuda) is None

    def missing_reason(self, cc: str, driver_cuda: str | None = None) -> str | None:
        """One sentence on why nothing here loads on ``cc``; None when something does."""
        return rules.missing_reason(self.sass, self.ptx, cc, driver_cuda, self.ptx_isa)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
