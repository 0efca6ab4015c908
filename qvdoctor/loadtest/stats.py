"""Percentiles and the summary of one load point (failed requests never enter the latencies)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from qvdoctor.loadtest.client import RequestResult

PERCENTILES = (50, 90, 99)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default method); ``None`` for no values."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def ms_percentiles(values: Sequence[float]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for q in PERCENTILES:
        v = percentile(values, q)
        out[f"p{q}"] = None if v is None else round(v * 1000.0, 3)
    vals = list(values)
    out["mean"] = round(sum(vals) / len(vals) * 1000.0, 3) if vals else None
    return out


@dataclass
class Point:
    """One measured load point."""

    concurrency: int | None
    rate: float | None
    results: list[RequestResult]
    duration_s: float
    extra: dict[str, Any] = field(default_factory=dict)  # server metrics, breakdown, flags

    @property
    def ok(self) -> list[RequestResult]:
        return [r for r in self.results if r.ok]

    @property
    def errors(self) -> list[RequestResult]:
        return [r for r in self.results if not r.ok]

    def req_per_s(self) -> float:
        return len(self.ok) / self.duration_s if self.duration_s > 0 else 0.0

    def output_tok_per_s(self) -> float:
        return sum(r.output_tokens for r in self.ok) / self.duration_s if self.duration_s > 0 else 0.0

    def latency(self, name: str) -> dict[str, float | None]:
        ok = self.ok
        if name == "ttft":
            return ms_percentiles([r.ttft for r in ok if r.ttft is not None])
        if name == "tpot":
            return ms_percentiles([r.tpot for r in ok if r.tpot is not None])
        if name == "itl":
            return ms_percentiles([g for r in ok for g in r.itl])
        if name == "e2e":
            return ms_percentiles([r.e2e for r in ok if r.e2e is not None])
        raise KeyError(name)

    def mean_prompt_tokens(self) -> float | None:
        xs = [r.prompt_tokens for r in self.ok if r.prompt_tokens is not None]
        return round(sum(xs) / len(xs), 2) if xs else None

    def to_dict(self) -> dict[str, Any]:
        errs = self.errors
        samples: dict[str, int] = {}
        for r in errs:
            samples[r.error] = samples.get(r.error, 0) + 1
        d: dict[str, Any] = {
            "concurrency": self.concurrency,
            "rate": self.rate,
            "requests": len(self.results),
            "ok": len(self.ok),
            "errors": len(errs),
            "ttft_ms": self.latency("ttft"),
            "tpot_ms": self.latency("tpot"),
            "itl_ms": self.latency("itl"),
            "e2e_ms": self.latency("e2e"),
            "req_per_s": round(self.req_per_s(), 4),
            "output_tok_per_s": round(self.output_tok_per_s(), 3),
            "prompt_tokens": self.mean_prompt_tokens(),
            "visual_tokens": None,
            "duration_s": round(self.duration_s, 3),
            "error_messages": dict(sorted(samples.items(), key=lambda kv: -kv[1])[:5]),
        }
        d.update(self.extra)
        return d
