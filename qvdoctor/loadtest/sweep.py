"""The sweep: load points at rising concurrency (closed loop) or request rate (open loop,
Poisson arrivals), /metrics read around each point, the knee, and the early stop.

Knee: the largest load whose point, and every point below it, meets the SLOs (no failed request;
each given SLO on its percentile). Without SLOs: the largest load that still raised req/s by >= 10 % over the point
before. The sweep stops after the first point that misses the SLOs or no longer scales (one
point past saturation is measured, to show it)."""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from qvdoctor.loadtest import vllm_metrics as vm
from qvdoctor.loadtest.client import RequestResult, chat_body, stream_chat
from qvdoctor.loadtest.httpclient import Connection, Endpoint, HttpError, get
from qvdoctor.loadtest.promtext import Scrape, parse
from qvdoctor.loadtest.stats import Point

SCALING_GAIN = 1.10  # a point "still scales" when req/s grew by at least this factor
SLO_KEYS = {"ttft": "ttft_ms", "tpot": "tpot_ms", "itl": "itl_ms", "e2e": "e2e_ms"}


@dataclass
class Slo:
    metric: str  # ttft | tpot | itl | e2e
    limit_ms: float
    percentile: str = "p90"

    def check(self, point: dict[str, Any]) -> bool:
        v = point[SLO_KEYS[self.metric]].get(self.percentile)
        return v is not None and v <= self.limit_ms

    def label(self) -> str:
        return f"{self.metric} {self.percentile} <= {self.limit_ms:g} ms"


@dataclass
class LoadPlan:
    url: str
    model: str
    bodies: Callable[[int], bytes]  # request number -> JSON body
    loads: list[float]  # concurrencies or rates
    mode: str = "concurrency"  # or "rate"
    requests: int | None = None  # per point; None: derived from the load
    duration: float | None = None  # per point cap, seconds
    timeout: float = 600.0  # per request
    max_time: float = 1800.0  # the whole sweep
    slos: list[Slo] = field(default_factory=list)
    seed: int = 0
    stop_early: bool = True
    media_items: int = 0
    visual_expected: int | None = None
    prepare: Callable[[int, int], None] | None = None  # (first request number, count) before a point

    def requests_for(self, load: float, prev: dict[str, Any] | None = None, e2e_floor: float | None = None) -> int:
        """Requests one point gets (and whose media are encoded before it): ``requests``, else
        max(16, 4 x load). A duration-bounded point (``requests`` is then its cap) gets what it can
        send in ``duration`` at an upper bound of its rate, +25 % and one round of the load: the
        rate itself (``--rate``), the previous point's req/s scaled by the load, or, for the first
        point, load / ``e2e_floor`` (one request's end-to-end latency without load). So media are
        not encoded for requests the point never sends."""
        if self.duration is None:
            return self.requests if self.requests is not None else max(16, int(math.ceil(4 * load)))
        cap = self.requests or 1000
        if self.mode == "rate":
            rate = load
        elif prev and prev.get("req_per_s") and prev.get("concurrency"):
            rate = prev["req_per_s"] * load / prev["concurrency"]
        elif e2e_floor:
            rate = load / e2e_floor
        else:
            return cap
        return min(cap, max(16, math.ceil(1.25 * rate * self.duration + load)))


def requests_path(url: str) -> str:
    return Endpoint.parse(url).base_path + "/chat/completions"


async def scrape(endpoint: Endpoint) -> Scrape | None:
    try:
        status, body = await get(endpoint, "/metrics", timeout=10.0)
    except (HttpError, OSError):
        return None
    if status != 200:
        return None
    return parse(body.decode("utf-8", "replace"), time.monotonic())


async def _request(lp: LoadPlan, conn: Connection, path: str, k: int, deadline: float) -> RequestResult:
    """Request ``k``, given at most the run's remaining time; one that time cap cuts says so (it
    counts as failed, but is not the server's timeout)."""
    timeout = min(lp.timeout, max(0.1, deadline - time.perf_counter()))
    r = await stream_chat(conn, path, lp.bodies(k), timeout, media_items=lp.media_items, visual_expected=lp.visual_expected)
    if not r.ok and timeout < lp.timeout and (r.error or "").startswith("timed out"):
        r.error = "cut by the run's time cap (--max-time) before it finished"
    return r


async def _closed_loop(lp: LoadPlan, endpoint: Endpoint, path: str, c: int, first: int, n: int,
                       send_until: float, deadline: float, results: list[RequestResult]) -> None:
    nxt = [first]
    end = first + n

    async def worker() -> None:
        conn = Connection(endpoint)
        try:
            while nxt[0] < end and time.perf_counter() < send_until:
                k = nxt[0]
                nxt[0] += 1
                results.append(await _request(lp, conn, path, k, deadline))
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(c)))


async def _open_loop(lp: LoadPlan, endpoint: Endpoint, path: str, rate: float, first: int, n: int,
                     send_until: float, deadline: float, results: list[RequestResult]) -> None:
    rng = random.Random(lp.seed + first)
    idle: list[Connection] = []
    tasks: list[asyncio.Task] = []

    async def one(k: int) -> None:
        conn = idle.pop() if idle else Connection(endpoint)
        results.append(await _request(lp, conn, path, k, deadline))
        if conn.reusable:
            idle.append(conn)
        else:
            conn.close()

    t = time.perf_counter()
    try:
        for k in range(first, first + n):
            if t >= send_until:
                break
            delay = t - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(k)))
            t += rng.expovariate(rate)
        if tasks:
            await asyncio.gather(*tasks)
    finally:
        for tk in tasks:
            tk.cancel()
        for conn in idle:
            conn.close()


async def run_point(lp: LoadPlan, load: float, first: int, deadline: float, n: int | None = None) -> Point:
    """One point: ``n`` (default ``lp.requests_for(load)``) requests (numbered from ``first``), none sent after
    ``lp.duration`` seconds (those in flight finish), none running past ``deadline`` (the run's
    cap: cut requests count as failed); /metrics read before and after."""
    endpoint = Endpoint.parse(lp.url)
    path = requests_path(lp.url)
    n = lp.requests_for(load) if n is None else n
    send_until = deadline if lp.duration is None else min(deadline, time.perf_counter() + lp.duration)
    before = await scrape(endpoint)
    results: list[RequestResult] = []
    t0 = time.perf_counter()
    if lp.mode == "rate":
        await _open_loop(lp, endpoint, path, load, first, n, send_until, deadline, results)
        point = Point(None, load, results, 0.0)
    else:
        await _closed_loop(lp, endpoint, path, int(load), first, n, send_until, deadline, results)
        point = Point(int(load), None, results, 0.0)
    point.duration_s = time.perf_counter() - t0
    after = await scrape(endpoint)
    if before is not None and after is not None:
        ok = point.ok
        ttft_mean = sum(r.ttft for r in ok if r.ttft is not None) / len(ok) if ok else None
        point.extra["ttft_breakdown_ms"] = vm.ttft_breakdown(after, before, ttft_mean)
        point.extra["server_cache"] = vm.cache_delta(after, before)
        point.extra["server"] = {"preemptions": _diff(vm.counter(after, "preemptions"), vm.counter(before, "preemptions")),
                                 "kv_cache_usage_after": vm.gauge(after, "kv_cache_usage")}
    return point


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def meets_slos(point: dict[str, Any], slos: list[Slo]) -> bool:
    if point["ok"] == 0 or point["errors"] > 0:
        return False
    return all(s.check(point) for s in slos)


def knee(points: list[dict[str, Any]], slos: list[Slo], mode: str) -> dict[str, Any] | None:
    """The largest load meeting the SLOs (with SLOs), else the largest load that still scaled."""
    key = "concurrency" if mode == "concurrency" else "rate"
    best = None
    if slos:
        for p in points:
            if not meets_slos(p, slos):
                break
            best = p
        rule = "largest load meeting " + ", ".join(s.label() for s in slos) + " with no failed request (and every load below it)"
    else:
        prev = None
        for p in points:
            if p["ok"] == 0 or p["errors"] > 0:
                break
            if prev is not None and p["req_per_s"] < SCALING_GAIN * prev["req_per_s"]:
                break
            best, prev = p, p
        rule = f"largest load that still raised req/s by >= {round((SCALING_GAIN - 1) * 100)} % (no SLO given)"
    if best is None:
        return {key: None, "req_per_s": None, "rule": rule}
    return {key: best[key], "req_per_s": best["req_per_s"], "output_tok_per_s": best["output_tok_per_s"], "rule": rule}


def past_saturation(points: list[dict[str, Any]], slos: list[Slo]) -> str | None:
    """Why the sweep should stop after the last point, or ``None``."""
    p = points[-1]
    if p["requests"] and p["errors"] > p["requests"] / 2:
        return "more than half of the requests failed"
    if slos and not meets_slos(p, slos):
        return "the last point missed the SLOs"
    if len(points) >= 2 and p["req_per_s"] < SCALING_GAIN * points[-2]["req_per_s"]:
        return "req/s no longer grows with the load (saturated)"
    return None


async def text_baseline(url: str, model: str, content: list[dict[str, Any]], extra: dict[str, Any] | None = None,
                        timeout: float = 120.0) -> RequestResult:
    """One text-only request with the same prompt text: its prompt_tokens are the text part."""
    endpoint = Endpoint.parse(url)
    conn = Connection(endpoint)
    try:
        return await stream_chat(conn, requests_path(url), chat_body(model, content, 2, extra=extra), timeout)
    finally:
        conn.close()


async def served_model(url: str) -> str | None:
    endpoint = Endpoint.parse(url)
    try:
        status, body = await get(endpoint, endpoint.base_path + "/models", timeout=10.0)
    except (HttpError, OSError):
        return None
    if status != 200:
        return None
    try:
        data = json.loads(body).get("data") or []
        return data[0]["id"] if data else None
    except (ValueError, KeyError, IndexError, AttributeError):
        return None


async def server_version(url: str) -> str | None:
    """vLLM's ``GET /version`` (``{"version": "0.26.0"}``); ``None`` for other servers."""
    try:
        status, body = await get(Endpoint.parse(url), "/version", timeout=10.0)
        return str(json.loads(body)["version"]) if status == 200 else None
    except (HttpError, OSError, ValueError, KeyError, TypeError):
        return None
