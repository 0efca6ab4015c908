"""Read the kernel architectures of one file: ELF sections -> fatbin containers -> entries.

The file is memory-mapped and only headers are touched, so a 500 MB library costs a few
thousand page reads, not a full read."""

from __future__ import annotations

import mmap
import os
import re
import stat
from pathlib import Path
from typing import Iterator

from qvdoctor.kernels.elf import ELF_MAGIC, SHT_NOBITS, ElfError, read_sections
from qvdoctor.kernels.fatbin import KIND_PTX, VARIANT_FLAGS, walk

# The runtime registers the fatbins of ``.nv_fatbin`` (via ``.nvFatBinSegment``). With -rdc,
# ``__nv_relfatbin`` keeps the relocatable inputs of the device link: in a linked library they
# are never loaded (nvshmem's PTX there does not make a library JIT-able), so they count only
# in an unlinked object that has no ``.nv_fatbin``. cuobjdump lists exactly the same.
RUNTIME_SECTION = ".nv_fatbin"
RELOCATABLE_SECTION = "__nv_relfatbin"


def scan_file(path: str | os.PathLike):
    """List the SASS and PTX archs of ``path``. Never raises for bad files: sets ``.error``."""
    from qvdoctor.kernels.archs import KernelArchs

    path_str = os.fspath(path)
    result = KernelArchs(path=path_str, sass=[], ptx=[])
    try:
        mode = os.stat(path_str).st_mode
        if stat.S_ISDIR(mode):
            result.error = "is a directory"
            return result
        if not stat.S_ISREG(mode):  # a FIFO would block open(); a device is no library
            result.error = "not a regular file"
            return result
        with open(path_str, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            result.size = size
            if size == 0:
                result.error = "empty file"
                return result
            _scan_open(fh, size, result)
    except IsADirectoryError:
        result.error = "is a directory"
    except PermissionError:
        result.error = "permission denied"
    except FileNotFoundError:
        result.error = "no such file"
    except OSError as exc:
        result.error = f"cannot read: {exc.strerror or exc}"
    return result


def _scan_open(fh, size: int, result) -> None:
    try:
        layout = read_sections(fh, size)
        regions, problems = _fatbin_regions(layout.sections, size)
    except ElfError as exc:
        if str(exc) == "not an ELF file":
            result.error = str(exc)
            return
        # Truncated or damaged headers: say so, and still list what a byte scan finds.
        regions, problems = None, [str(exc)]
    else:
        if not layout.sections:
            regions = None  # no section headers (stripped with sstrip and the like)

    try:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (ValueError, OSError) as exc:  # not mappable: a pipe, a special file
        result.error = f"cannot map file: {exc}"
        return
    with mm:
        entries, truncated = [], False
        if regions is None:
            found = walk(mm, 0, size, aligned_only=True)
            entries, truncated = found.entries, found.truncated
        else:
            for start, end in regions:
                found = walk(mm, start, end)
                entries.extend(found.entries)
                truncated |= found.truncated
    if truncated and not problems:
        problems.append("truncated fatbin: a container runs past the end of its data")

    sass, ptx, isa = set(), set(), {}
    for entry in {(e.kind, e.arch, e.flags & VARIANT_FLAGS, e.major, e.minor): e for e in entries}.values():
        if entry.kind == KIND_PTX:
            ptx.add(entry.label)
            seen = isa.get(entry.label)
            if seen is None or (entry.major, entry.minor) > tuple(map(int, seen.split("."))):
                isa[entry.label] = entry.ptx_isa
        else:
            sass.add(entry.label)
    from qvdoctor.kernels.rules import arch_sort_key

    result.sass = sorted(sass, key=arch_sort_key)
    result.ptx = sorted(ptx, key=arch_sort_key)
    result.ptx_isa = {label: isa[label] for label in result.ptx}
    if problems:
        result.error = problems[0]


def _fatbin_regions(sections, size: int) -> tuple[list[tuple[int, int]], list[str]]:
    """File ranges holding the fatbins the CUDA runtime loads, and any truncation found."""
    by_name: dict[str, list] = {}
    for section in sections:
        if section.type != SHT_NOBITS and section.name in (RUNTIME_SECTION, RELOCATABLE_SECTION):
            by_name.setdefault(section.name, []).append(section)
    chosen = by_name.get(RUNTIME_SECTION) or by_name.get(RELOCATABLE_SECTION, [])
    regions, problems = [], []
    for section in chosen:
        end = section.offset + section.size
        if end > size:
            problems.append(f"truncated ELF: {section.name} section past end of file")
            end = size
        if section.offset < end:
            regions.append((section.offset, end))
    return regions, problems


def is_foreign(path: Path) -> bool:
    """A readable, non-empty file that is not ELF (a linker script named libc.so, say).

    Unreadable and empty files are not foreign: in a package they are a broken install."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        return False
    return bool(head) and head != ELF_MAGIC


def expand_paths(paths: list[Path]) -> Iterator[tuple[Path, bool]]:
    """Files to scan: each file given, and every ``*.so*`` under each directory given.

    Yields ``(path, explicit)``; a file is yielded once even when reached through symlinks."""
    seen: set[str] = set()
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.so*") if p.is_file() and _is_shared_name(p.name))
            candidates = [(p, False) for p in found]
        else:
            candidates = [(path, True)]
        for candidate, explicit in candidates:
            key = os.path.realpath(candidate)
            if key in seen:
                continue
            seen.add(key)
            yield candidate, explicit


_SHARED_NAME = re.compile(r"\.so(\.\d+)*$")


def _is_shared_name(name: str) -> bool:
    """libfoo.so, libfoo.so.1.2, _C.abi3.so; not foo.so.py or foo.sources."""
    return bool(_SHARED_NAME.search(name))
