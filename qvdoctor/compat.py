"""Lookups over ``qvdoctor/data/compat.toml``: driver floors, PTX ISA, pre-Ampere behaviour."""

from __future__ import annotations

import functools
import re
from qvdoctor import tomlread as tomllib
from pathlib import Path
from typing import Any


@functools.cache
def table() -> dict[str, Any]:
    return tomllib.loads((Path(__file__).parent / "data" / "compat.toml").read_text())


def version_key(version: str | None) -> tuple[int, ...]:
    """A sortable key for versions like "0.10.2", "2.5.1+cu121", "520.61.05", "4.49.0.dev0"."""
    if not version:
        return ()
    release = re.match(r"\s*v?(\d+(?:\.\d+)*)", str(version))
    return tuple(int(p) for p in release.group(1).split(".")) if release else ()


def version_lt(a: str | None, b: str | None) -> bool:
    """True when both versions are known and a < b (release parts only)."""
    ka, kb = version_key(a), version_key(b)
    return bool(ka and kb) and ka < kb


def cuda_of(version: str | None) -> str | None:
    """"12.8.1" / "12080" / "cu128" -> "12.8"."""
    if not version:
        return None
    text = str(version)
    if m := re.fullmatch(r"cu(\d+)(\d)", text):
        return f"{m.group(1)}.{m.group(2)}"
    if m := re.fullmatch(r"(\d{2})(\d{3})", text):
        return f"{int(m.group(1))}.{int(m.group(2)) // 10}"
    if m := re.match(r"(\d+)\.(\d+)", text):
        return f"{m.group(1)}.{m.group(2)}"
    return None


def driver_floor(cuda: str | None) -> str | None:
    """The driver a CUDA runtime needs for full support (nearest listed release at or below)."""
    cuda = cuda_of(cuda)
    if not cuda:
        return None
    floors = table()["driver_floor"]
    known = [c for c in floors if version_key(c) <= version_key(cuda)]
    return floors[max(known, key=version_key)] if known else None


def minor_compat_floor(cuda: str | None) -> str | None:
    cuda = cuda_of(cuda)
    return table()["minor_compat_floor"].get(cuda.split(".")[0]) if cuda else None


def pre_ampere(vllm_version: str | None) -> dict[str, Any] | None:
    """How a vLLM release behaves on cc < 8.0 (engine, decoder and ViT attention, fixes)."""
    if not vllm_version:
        return None
    key = version_key(vllm_version)
    for row in table()["pre_ampere"]:
        if version_key(row["from"]) <= key < version_key(row["to"]):
            return row
    return None
