"""One term of the memory arithmetic, with where its number comes from and how far off it can be."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

EXACT = "exact"
CALIBRATED = "calibrated"
ESTIMATED = "estimated"
GIB = 1024**3


@dataclass
class Term:
    """``bytes`` of ``name`` on one GPU; ``error_bytes`` is the expected absolute error (0 = exact)."""

    name: str
    bytes: int
    kind: str  # exact | calibrated | estimated
    source: str  # where the number comes from
    error_bytes: int = 0
    sign: int = -1  # -1: consumes memory, +1: the budget itself

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["gib"] = round(self.bytes / GIB, 3)
        d["error_gib"] = round(self.error_bytes / GIB, 3)
        return d


def fmt_gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB"
