"""Just enough ELF to find sections by name: the header and the section header table.

Reads only the headers (a few kilobytes) however large the file is."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

ELF_MAGIC = b"\x7fELF"
SHT_NOBITS = 8
SHN_XINDEX = 0xFFFF


class ElfError(ValueError):
    """The file is not a readable ELF; the message is one sentence for the user."""


@dataclass(frozen=True)
class Section:
    name: str
    type: int
    offset: int
    size: int


@dataclass(frozen=True)
class ElfLayout:
    """What the header says about a file: its sections (empty when it has no section table)."""

    bits: int
    sections: list[Section]


def read_sections(fh: BinaryIO, file_size: int) -> ElfLayout:
    """Parse the ELF header and section table of ``fh``. Raises ElfError with a one-line reason."""
    ident = _read_at(fh, 0, 64)
    if len(ident) < 4 or ident[:4] != ELF_MAGIC:
        raise ElfError("not an ELF file")
    if len(ident) < 16:
        raise ElfError("truncated ELF: header cut short")
    ei_class, ei_data = ident[4], ident[5]
    if ei_class not in (1, 2) or ei_data not in (1, 2):
        raise ElfError(f"unsupported ELF (class {ei_class}, data encoding {ei_data})")
    end = "<" if ei_data == 1 else ">"
    if ei_class == 2:
        hdr_len = 0x40
        shoff_at, tail_at = 0x28, 0x3A
        sh_fmt = end + "IIQQQQIIQQ"
    else:
        hdr_len = 0x34
        shoff_at, tail_at = 0x20, 0x2E
        sh_fmt = end + "IIIIIIIIII"
    if len(ident) < hdr_len:
        raise ElfError("truncated ELF: header cut short")
    (e_shoff,) = struct.unpack_from(end + ("Q" if ei_class == 2 else "I"), ident, shoff_at)
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from(end + "HHH", ident, tail_at)
    bits = 64 if ei_class == 2 else 32
    if e_shoff == 0:
        return ElfLayout(bits, [])
    sh_len = struct.calcsize(sh_fmt)
    if e_shentsize < sh_len:
        raise ElfError(f"malformed ELF: section header size {e_shentsize}")
    if e_shoff + e_shentsize > file_size:
        raise ElfError("truncated ELF: section headers past end of file")

    first = struct.unpack(sh_fmt, _read_at(fh, e_shoff, sh_len))
    if e_shnum == 0:  # extended numbering: the real count lives in section 0's sh_size
        e_shnum = first[5]
    if e_shstrndx == SHN_XINDEX:
        e_shstrndx = first[7]
    if e_shoff + e_shnum * e_shentsize > file_size:
        raise ElfError("truncated ELF: section headers past end of file")
    table = _read_at(fh, e_shoff, e_shnum * e_shentsize)
    raw = [struct.unpack_from(sh_fmt, table, i * e_shentsize) for i in range(e_shnum)]

    names = b""
    if 0 < e_shstrndx < e_shnum:
        _, str_type, _, _, str_off, str_size, *_ = raw[e_shstrndx]
        if str_type != SHT_NOBITS:
            if str_off + str_size > file_size:
                raise ElfError("truncated ELF: section names past end of file")
            names = _read_at(fh, str_off, min(str_size, 1 << 24))
    sections = []
    for sh_name, sh_type, _flags, _addr, sh_offset, sh_size, *_ in raw:
        sections.append(Section(_cstr(names, sh_name), sh_type, sh_offset, sh_size))
    return ElfLayout(bits, sections)


def _read_at(fh: BinaryIO, offset: int, size: int) -> bytes:
    fh.seek(offset)
    return fh.read(size)


def _cstr(blob: bytes, start: int) -> str:
    if start >= len(blob):
        return ""
    stop = blob.find(b"\0", start)
    return blob[start : stop if stop >= 0 else len(blob)].decode("latin-1")
