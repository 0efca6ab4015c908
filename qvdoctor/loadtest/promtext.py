"""Prometheus text exposition format: samples, summed over label sets; histogram quantiles."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


@dataclass
class Sample:
    labels: dict[str, str]
    value: float


@dataclass
class Scrape:
    """One read of /metrics: ``samples[name]`` lists every label set."""

    samples: dict[str, list[Sample]] = field(default_factory=dict)
    t: float = 0.0  # monotonic time of the scrape

    def has(self, name: str) -> bool:
        return name in self.samples

    def total(self, name: str) -> float | None:
        """Sum of ``name`` over label sets (engines, models); ``None`` when absent."""
        s = self.samples.get(name)
        return None if s is None else sum(x.value for x in s)

    def buckets(self, name: str) -> list[tuple[float, float]]:
        """``[(upper bound, cumulative count)]`` of histogram ``name`` summed over label sets."""
        acc: dict[float, float] = {}
        for s in self.samples.get(name + "_bucket", []):
            le = s.labels.get("le")
            if le is None:
                continue
            bound = math.inf if le in ("+Inf", "Inf", "inf") else float(le)
            acc[bound] = acc.get(bound, 0.0) + s.value
        return sorted(acc.items())


def parse(text: str, t: float = 0.0) -> Scrape:
    out = Scrape(t=t)
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] == "#":
            continue
        brace = line.find("{")
        labels: dict[str, str] = {}
        if brace >= 0:
            name = line[:brace]
            end = line.rfind("}")
            if end < brace:
                continue
            body, rest = line[brace + 1:end], line[end + 1:]
            for m in _LABEL.finditer(body):
                labels[m.group(1)] = m.group(2).replace('\\"', '"').replace("\\\\", "\\")
        else:
            name, _, rest = line.partition(" ")
        fields = rest.split()
        if not fields:
            continue
        try:
            value = float(fields[0])
        except ValueError:
            continue
        out.samples.setdefault(name.strip(), []).append(Sample(labels, value))
    return out


def delta_buckets(after: list[tuple[float, float]], before: list[tuple[float, float]]) -> list[tuple[float, float]]:
    prev = dict(before)
    return [(b, c - prev.get(b, 0.0)) for b, c in after]


def quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Prometheus' ``histogram_quantile``: linear interpolation inside the bucket holding the
    ``q`` quantile (``q`` in 0..1); the top finite bound when it falls in +Inf."""
    if not buckets:
        return None
    total = buckets[-1][1]
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return buckets[-1][0] if not math.isinf(buckets[-1][0]) else lower_bound
