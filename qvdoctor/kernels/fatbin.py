"""Walk CUDA fatbin containers and list their entries from the headers alone.

Layout (image_matrix.md §6): a container is a 16-byte header (magic 0xBA55ED50, u16 version,
u16 header size, u64 size of what follows) and a run of entries, each with a header of at
least 64 bytes (u16 kind, u32 header size, u64 payload size, ..., u16 minor, u16 major,
u32 arch, ..., u64 flags). Payloads, compressed or not, are skipped, never decompressed."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

FATBIN_MAGIC = 0xBA55ED50
MAGIC_BYTES = struct.pack("<I", FATBIN_MAGIC)

KIND_PTX = 1
KIND_ELF = 2
KIND_IR = 8  # NVVM / LTO-IR: neither SASS nor JIT-able PTX, not listed

# Entry flag bits. 0x1000/0x2000 (NVIDIA LZ) and 0x8000 (zstd) mark compressed payloads;
# 0x100000 / 0x200000 mark the arch-specific ("sm_90a") and family ("sm_100f") variants:
# observed on nvcc 13.0 output and matching cuobjdump 13.1's labels.
FLAG_COMPRESSED = 0x1000 | 0x2000 | 0x8000
FLAG_ARCH_SPECIFIC = 0x100000
FLAG_FAMILY = 0x200000
VARIANT_FLAGS = FLAG_ARCH_SPECIFIC | FLAG_FAMILY

ARCH_MIN, ARCH_MAX = 20, 200  # anything outside is a garbage match, not an SM number

_CONTAINER = struct.Struct("<IHHQ")
_ENTRY = struct.Struct("<HHIQIIHHIIIQQQ")


class Entry(NamedTuple):
    """One PTX or cubin entry, from its header."""

    kind: int  # KIND_PTX or KIND_ELF
    arch: int  # 75, 90, 100, ...
    major: int  # PTX: ISA major; cubin: ELF format version
    minor: int
    flags: int
    offset: int  # of the entry header in the file

    @property
    def compressed(self) -> bool:
        return bool(self.flags & FLAG_COMPRESSED)

    @property
    def suffix(self) -> str:
        if self.flags & FLAG_ARCH_SPECIFIC:
            return "a"
        # A family cubin is the same code as the plain one (cuobjdump prints "sm_100"); only
        # family PTX is restricted to its family.
        if self.flags & FLAG_FAMILY and self.kind == KIND_PTX:
            return "f"
        return ""

    @property
    def label(self) -> str:
        """cuobjdump's name for the arch, with PTX called compute_XY (it prints sm_XY)."""
        prefix = "compute_" if self.kind == KIND_PTX else "sm_"
        return f"{prefix}{self.arch}{self.suffix}"

    @property
    def ptx_isa(self) -> str:
        return f"{self.major}.{self.minor}"


@dataclass
class WalkResult:
    entries: list[Entry]
    containers: int = 0
    truncated: bool = False  # a container or entry ran past the end of its region


def walk(buf, start: int, end: int, *, aligned_only: bool = False) -> WalkResult:
    """List the PTX and cubin entries of every container found in ``buf[start:end]``.

    ``buf`` is anything with ``find`` and the buffer protocol (an mmap). Zero padding or
    other bytes between containers are skipped by searching for the next valid header;
    ``aligned_only`` accepts only 8-byte aligned headers (the scan of a file without sections).
    """
    result = WalkResult([])
    entries = result.entries
    find, unpack_container, unpack_entry = buf.find, _CONTAINER.unpack_from, _ENTRY.unpack_from
    entry_size = _ENTRY.size
    pos = start
    while pos + _CONTAINER.size <= end:
        at = find(MAGIC_BYTES, pos, end)
        if at < 0 or at + _CONTAINER.size > end:
            break
        if aligned_only and at % 8:
            pos = at + 1
            continue
        _, version, header_size, fat_size = unpack_container(buf, at)
        if version != 1 or header_size < _CONTAINER.size or fat_size == 0:
            pos = at + 4
            continue
        body = at + header_size
        body_end = body + fat_size
        if body_end > end:
            if aligned_only and not _entry_at(buf, body, end):
                pos = at + 4  # a stray magic in host data, not a cut-off container
                continue
            result.truncated = True
            body_end = end
        result.containers += 1
        # The entries of this container, stepping header_size + payload_size.
        q = body
        while q + entry_size <= body_end:
            (kind, _, ehs, payload_size, _csize, _opts, minor, major, arch,
             _id_off, _id_len, flags, _res, _usize) = unpack_entry(buf, q)
            if ehs < entry_size:  # 0 ends the list; anything else below 64 is damage
                break
            if (kind == KIND_ELF or kind == KIND_PTX) and ARCH_MIN <= arch <= ARCH_MAX:
                entries.append(Entry(kind, arch, major, minor, flags, q))
            q += ehs + payload_size
        else:
            if q > body_end:
                result.truncated = True
        pos = max(body_end, at + 4)
    return result


def _entry_at(buf, pos: int, end: int) -> bool:
    """Whether a plausible entry header starts at ``pos``."""
    if pos + _ENTRY.size > end:
        return False
    kind, _, header_size, *_rest = _ENTRY.unpack_from(buf, pos)
    arch = _rest[5]
    return kind in (KIND_PTX, KIND_ELF, KIND_IR) and header_size >= _ENTRY.size and ARCH_MIN <= arch <= ARCH_MAX
