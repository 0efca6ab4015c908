"""Which kernel images a GPU can load (image_matrix.md §1.4 and §1.6).

1. SASS ``sm_XY`` runs on compute capability X.Z iff same major X and Z >= Y.
2. ``sm_XYa`` runs only on exactly X.Y.
3. PTX ``compute_XY`` is JIT-compiled for any cc >= X.Y (any major), provided the driver's
   CUDA version is at least the CUDA that introduced the PTX ISA; ``compute_XYa`` only on
   exactly X.Y, ``compute_XYf`` on the same major with minor >= Y.
"""

from __future__ import annotations

import re

# PTX ISA version -> first CUDA release that emits (and whose driver can JIT) it. 7.8+ from
# NVIDIA cuda-python's _ptx_utils.py (image_matrix.md §1.4); older rows from the PTX ISA
# release notes.
PTX_ISA_CUDA: dict[tuple[int, int], tuple[int, int]] = {
    (6, 0): (9, 0), (6, 1): (9, 1), (6, 2): (9, 2), (6, 3): (10, 0), (6, 4): (10, 1),
    (6, 5): (10, 2), (7, 0): (11, 0), (7, 1): (11, 1), (7, 2): (11, 2), (7, 3): (11, 3),
    (7, 4): (11, 4), (7, 5): (11, 5), (7, 6): (11, 6), (7, 7): (11, 7), (7, 8): (11, 8),
    (8, 0): (12, 0), (8, 1): (12, 1), (8, 2): (12, 2), (8, 3): (12, 3), (8, 4): (12, 4),
    (8, 5): (12, 5), (8, 6): (12, 7), (8, 7): (12, 8), (8, 8): (12, 9), (9, 0): (13, 0),
    (9, 1): (13, 1),
}

_ARCH_RE = re.compile(r"^(sm|compute)_(\d{2,3})([af]?)$")
_VERSION_RE = re.compile(r"^(\d+)\.(\d+)$")


def parse_version(text: str) -> tuple[int, int]:
    """'7.5' -> (7, 5). Raises ValueError for anything else."""
    match = _VERSION_RE.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"expected MAJOR.MINOR such as 7.5, got {text!r}")
    return int(match.group(1)), int(match.group(2))


def parse_arch(label: str) -> tuple[str, int, int, str] | None:
    """'sm_90a' -> ('sm', 9, 0, 'a'); 'compute_120' -> ('compute', 12, 0, ''); None if not an arch."""
    match = _ARCH_RE.match(label)
    if not match:
        return None
    number = int(match.group(2))
    return match.group(1), number // 10, number % 10, match.group(3)


def arch_sort_key(label: str) -> tuple[int, str, str]:
    parsed = parse_arch(label)
    if parsed is None:
        return (1 << 30, "", label)
    _, major, minor, suffix = parsed
    return (major * 10 + minor, suffix, label)


def ptx_isa_min_cuda(isa: str) -> tuple[int, int] | None:
    """The CUDA version a driver must support to JIT PTX of this ISA version ('8.7' -> (12, 8))."""
    try:
        version = parse_version(isa)
    except ValueError:
        return None
    if version in PTX_ISA_CUDA:
        return PTX_ISA_CUDA[version]
    if version > max(PTX_ISA_CUDA):  # newer than the table: ISA 9.x came with CUDA 13.x
        return (version[0] + 4, version[1])
    return None  # older than anything still in use


def sass_runs(label: str, cc: tuple[int, int]) -> bool:
    parsed = parse_arch(label)
    if parsed is None or parsed[0] != "sm":
        return False
    _, major, minor, suffix = parsed
    if suffix == "a":
        return cc == (major, minor)
    return cc[0] == major and cc[1] >= minor


def ptx_jits(label: str, cc: tuple[int, int]) -> bool:
    """Whether the PTX arch is at or below the device (ignoring the driver's ISA support)."""
    parsed = parse_arch(label)
    if parsed is None or parsed[0] != "compute":
        return False
    _, major, minor, suffix = parsed
    if suffix == "a":
        return cc == (major, minor)
    if suffix == "f":
        return cc[0] == major and cc[1] >= minor
    return cc >= (major, minor)


def missing_reason(
    sass: list[str],
    ptx: list[str],
    cc: str,
    driver_cuda: str | None = None,
    ptx_isa: dict[str, str] | None = None,
) -> str | None:
    """One sentence saying why no kernel image in this library loads on ``cc``; None when one does.

    A library without device code has nothing that could fail, so it "runs" everywhere.
    Raises ValueError for a malformed ``cc`` or ``driver_cuda``."""
    device = parse_version(cc)
    driver = parse_version(driver_cuda) if driver_cuda else None
    if not sass and not ptx:
        return None
    if any(sass_runs(label, device) for label in sass):
        return None
    jit_ok, too_new = [], []
    for label in ptx:
        if not ptx_jits(label, device):
            continue
        isa = (ptx_isa or {}).get(label)
        needed = ptx_isa_min_cuda(isa) if (isa and driver) else None
        if needed and driver < needed:
            too_new.append((label, isa, needed))
        else:
            jit_ok.append(label)
    if jit_ok:
        return None
    cc_arch = f"{device[0]}{device[1]}"
    have_sass = ", ".join(sass) if sass else "none"
    if too_new:
        label, isa, needed = too_new[0]
        return (
            f"no SASS for sm_{cc_arch} (has {have_sass}) and its PTX {label} is ISA {isa}, which needs "
            f"a driver supporting CUDA {needed[0]}.{needed[1]} or newer; this driver supports CUDA {driver_cuda}"
        )
    have_ptx = ", ".join(ptx) if ptx else "none"
    return f"no SASS for sm_{cc_arch} (has {have_sass}) and no PTX at or below compute_{cc_arch} (has {have_ptx})"


def runs_on(
    sass: list[str],
    ptx: list[str],
    cc: str,
    driver_cuda: str | None = None,
    ptx_isa: dict[str, str] | None = None,
) -> bool:
    """Whether a library with these kernel images can run on compute capability ``cc``."""
    return missing_reason(sass, ptx, cc, driver_cuda, ptx_isa) is None
