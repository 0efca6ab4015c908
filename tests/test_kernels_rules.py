"""CUDA loadability rules (image_matrix.md §1.4, §1.6) and the fatbin walker on crafted bytes.

The crafted containers follow the header layout of image_matrix.md §6.2/§6.3 (the same layout
nvcc's output is checked against in test_kernels.py); they exercise what nvcc does not emit on
demand: garbage arch numbers, stray magic bytes, odd padding, entries cut short."""

from __future__ import annotations

import struct

import pytest

from qvdoctor.kernels import KernelArchs, runs_on
from qvdoctor.kernels.fatbin import FATBIN_MAGIC, KIND_ELF, KIND_IR, KIND_PTX, walk
from qvdoctor.kernels.rules import ptx_isa_min_cuda

# --- rules ----------------------------------------------------------------------------------

SASS_CASES = [
    # (sass, cc, runs)
    (["sm_80"], "8.0", True),
    (["sm_80"], "8.6", True),  # same major, higher minor
    (["sm_80"], "8.9", True),
    (["sm_86"], "8.0", False),  # lower minor
    (["sm_80"], "9.0", False),  # never across majors
    (["sm_90"], "10.0", False),
    (["sm_90"], "12.0", False),
    (["sm_100"], "10.3", True),
    (["sm_100"], "12.0", False),
    (["sm_120"], "12.1", True),
    (["sm_75"], "7.0", False),
    (["sm_70"], "7.5", True),
    (["sm_90a"], "9.0", True),  # arch-specific: exact cc only
    (["sm_100a"], "10.3", False),
    (["sm_90a"], "10.0", False),
    (["sm_75", "sm_80", "sm_90"], "8.6", True),
]


@pytest.mark.parametrize("sass,cc,expected", SASS_CASES)
def test_sass_rules(sass, cc, expected):
    assert runs_on(sass, [], cc) is expected


PTX_CASES = [
    # (ptx, cc, driver_cuda, ptx_isa, runs)
    (["compute_90"], "12.0", None, None, True),  # JIT to any higher cc, any major
    (["compute_90"], "9.0", None, None, True),
    (["compute_90"], "8.9", None, None, False),  # never to a lower cc
    (["compute_75"], "10.0", None, None, True),
    (["compute_90a"], "9.0", None, None, True),  # arch-specific PTX: exact cc only
    (["compute_90a"], "10.0", None, None, False),
    (["compute_100f"], "10.3", None, None, True),  # family PTX: same major
    (["compute_100f"], "12.0", None, None, False),
    (["compute_90"], "12.0", "13.0", {"compute_90": "9.0"}, True),
    (["compute_90"], "12.0", "12.8", {"compute_90": "9.0"}, False),  # ISA newer than the driver
    (["compute_90"], "12.0", "12.8", {"compute_90": "8.7"}, True),  # 8.7 came with 12.8
    (["compute_80"], "8.6", "12.6", {"compute_80": "8.5"}, True),  # 12.6 emits 8.5
    (["compute_80"], "8.6", "12.4", {"compute_80": "8.5"}, False),
    (["compute_80"], "8.6", "12.4", None, True),  # ISA unknown: cannot rule it out
]


@pytest.mark.parametrize("ptx,cc,driver,isa,expected", PTX_CASES)
def test_ptx_rules(ptx, cc, driver, isa, expected):
    assert runs_on([], ptx, cc, driver_cuda=driver, ptx_isa=isa) is expected


def test_sass_wins_when_ptx_is_too_new_for_the_driver():
    archs = KernelArchs("lib.so", ["sm_90"], ["compute_90"], {"compute_90": "9.0"})
    assert archs.runs_on("9.0", driver_cuda="12.2")
    assert not archs.runs_on("12.0", driver_cuda="12.2")


def test_missing_reason_names_what_is_there_and_what_is_needed():
    archs = KernelArchs("libtorch_cuda.so", ["sm_80", "sm_90"], ["compute_90"], {"compute_90": "8.7"})
    assert archs.missing_reason("8.6") is None
    assert archs.missing_reason("7.5") == (
        "no SASS for sm_75 (has sm_80, sm_90) and no PTX at or below compute_75 (has compute_90)"
    )
    assert archs.missing_reason("12.0", driver_cuda="12.4") == (
        "no SASS for sm_120 (has sm_80, sm_90) and its PTX compute_90 is ISA 8.7, which needs a driver "
        "supporting CUDA 12.8 or newer; this driver supports CUDA 12.4"
    )


def test_no_device_code_runs_anywhere_and_bad_cc_raises():
    assert runs_on([], [], "7.5")
    with pytest.raises(ValueError):
        runs_on(["sm_75"], [], "75")


def test_ptx_isa_table_follows_image_matrix():
    assert ptx_isa_min_cuda("7.8") == (11, 8)
    assert ptx_isa_min_cuda("8.5") == (12, 5)
    assert ptx_isa_min_cuda("8.6") == (12, 7)
    assert ptx_isa_min_cuda("9.0") == (13, 0)
    assert ptx_isa_min_cuda("9.2") == (13, 2)  # past the table: ISA 9.x ships with CUDA 13.x
    assert ptx_isa_min_cuda("junk") is None


# --- the walker on crafted containers -------------------------------------------------------


def entry(kind: int, arch: int, payload: bytes = b"\0" * 16, *, major: int = 1, minor: int = 8, flags: int = 0x11) -> bytes:
    header = struct.pack("<HHIQIIHHIIIQQQ", kind, 0x0101, 64, len(payload), 0, 0, minor, major, arch, 0, 0, flags, 0, 0)
    return header + payload


def container(*entries: bytes) -> bytes:
    body = b"".join(entries)
    return struct.pack("<IHHQ", FATBIN_MAGIC, 1, 16, len(body)) + body


def labels(data: bytes, **kwargs) -> list[str]:
    return [e.label for e in walk(data, 0, len(data), **kwargs).entries]


def test_walker_skips_zero_padding_and_reads_every_container():
    data = container(entry(KIND_ELF, 75)) + b"\0" * 24 + container(entry(KIND_ELF, 90), entry(KIND_PTX, 90, major=8, minor=7))
    result = walk(data, 0, len(data))
    assert result.containers == 2 and not result.truncated
    assert [e.label for e in result.entries] == ["sm_75", "sm_90", "compute_90"]
    assert result.entries[2].ptx_isa == "8.7"


def test_walker_ignores_garbage_arches_and_ir():
    data = container(entry(KIND_ELF, 7), entry(KIND_ELF, 4096), entry(KIND_IR, 90), entry(0x40, 80), entry(KIND_ELF, 86))
    assert labels(data) == ["sm_86"]


def test_walker_reads_variant_flags():
    data = container(
        entry(KIND_ELF, 90, flags=0x100011),
        entry(KIND_PTX, 90, flags=0x100011),
        entry(KIND_ELF, 100, flags=0x200011),  # family cubin == plain cubin
        entry(KIND_PTX, 100, flags=0x208011),
    )
    assert labels(data) == ["sm_90a", "compute_90a", "sm_100", "compute_100f"]


def test_walker_rejects_stray_magic_and_stops_at_cut_entries():
    # A magic with a wrong version is not a container.
    stray = struct.pack("<IHHQ", FATBIN_MAGIC, 7, 16, 64) + b"\xff" * 64
    good = container(entry(KIND_ELF, 80))
    assert labels(stray + good) == ["sm_80"]
    # A container cut mid-entry: what fits is listed and the result says truncated.
    cut = container(entry(KIND_ELF, 80), entry(KIND_ELF, 90))[:-20]
    result = walk(cut, 0, len(cut))
    assert [e.label for e in result.entries] == ["sm_80"] and result.truncated


def test_aligned_scan_needs_8_byte_alignment():
    data = b"\0" * 4 + container(entry(KIND_ELF, 80)) + b"\0" * 4 + container(entry(KIND_ELF, 90))
    assert labels(data, aligned_only=True) == ["sm_90"]
    assert labels(data) == ["sm_80", "sm_90"]
