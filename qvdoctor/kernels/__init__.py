"""Kernel architectures compiled into CUDA shared libraries, read without CUDA tools.

``scan_file(path)`` walks the ELF section headers, the fatbin containers in ``.nv_fatbin`` /
``__nv_relfatbin`` and their entry headers (image_matrix.md §6) and returns a ``KernelArchs``:
SASS archs (``sm_75``), PTX archs (``compute_90``) and each PTX's ISA version. Compressed
entries are listed from their headers; nothing is decompressed and payloads are never read.

``runs_on`` / ``missing_reason`` apply CUDA's loadability rules (image_matrix.md §1.6)."""

from __future__ import annotations

from qvdoctor.kernels.archs import KernelArchs
from qvdoctor.kernels.rules import missing_reason, runs_on
from qvdoctor.kernels.scan import scan_file

__all__ = ["KernelArchs", "missing_reason", "runs_on", "scan_file"]
