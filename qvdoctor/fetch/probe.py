"""``--source auto``: list the repo on every HTTP source at once (that is the latency probe),
sample a few MB of the largest file from each, pick the fastest, and keep the others as
fallback origins for the files whose sha256 they agree on."""

from __future__ import annotations

import os
import threading
import time

from qvdoctor.errors import QvError
from qvdoctor.fetch.http import HttpClient, HttpError
from qvdoctor.fetch.listing import Listing, Origin
from qvdoctor.fetch.sources import list_repo

SAMPLE_BYTES = 2 << 20


def list_timeout() -> float:
    """Seconds to wait for a listing (QVDOCTOR_PROBE_TIMEOUT, default 20)."""
    try:
        return float(os.environ.get("QVDOCTOR_PROBE_TIMEOUT", "20"))
    except ValueError:
        return 20.0
LATE_S = 2.0  # how long the other listings may lag behind the first


def _sample(listing: Listing, http: HttpClient, budget: float = 2.0) -> float:
    """Bytes per second for the first bytes of the largest file (latency included)."""
    if not listing.files or listing.origin_for is None:
        return 0.0
    f = max(listing.files, key=lambda x: x.size)
    if f.size == 0:
        return 1.0
    o = listing.origin_for(f)
    n = min(SAMPLE_BYTES, f.size)
    t0 = time.monotonic()
    got = 0
    try:
        resp = http.request("GET", o.url, {**o.headers, "Range": f"bytes=0-{n - 1}"})
        if resp.status not in (200, 206):
            resp.read(4096)
            resp.release()
            return 0.0
        buf = bytearray(256 << 10)
        while got < n and time.monotonic() - t0 < budget:
            k = resp.readinto(memoryview(buf)[: min(len(buf), n - got)])
            if not k:
                break
            got += k
        resp.release(got == n and resp.status == 206)
    except (HttpError, OSError, Exception):  # noqa: BLE001 - a source that fails the sample just loses
        return 0.0
    return got / max(time.monotonic() - t0, 1e-6)


def choose(sources: list[str], repo_id: str, revision: str | None, reporter,
           unreachable: dict[str, str] | None = None) -> tuple[Listing, dict[str, list[Origin]]]:
    """List ``sources`` (those that answered the reachability probe) at once; once the first
    listing is in, the others get ``LATE_S`` more seconds, then the fastest sample wins."""
    results: dict[str, Listing | QvError | Exception] = {}
    latency: dict[str, float] = {}
    done = threading.Event()

    def probe(s: str) -> None:
        t0 = time.monotonic()
        try:
            results[s] = list_repo(s, repo_id, revision)
            done.set()
        except Exception as exc:  # noqa: BLE001 - reported below
            results[s] = exc
        latency[s] = time.monotonic() - t0

    threads = [threading.Thread(target=probe, args=(s,), daemon=True) for s in sources]
    for t in threads:
        t.start()
    deadline = time.monotonic() + list_timeout()
    while time.monotonic() < deadline and any(t.is_alive() for t in threads) and not done.wait(0.05):
        pass
    late = min(deadline, time.monotonic() + LATE_S)
    for t in threads:
        t.join(max(0.0, late - time.monotonic()))
    listings = {s: r for s, r in results.items() if isinstance(r, Listing)}
    if not listings:
        errors = [r for r in results.values() if isinstance(r, QvError)]
        reasons = "; ".join(f"{s}: {r}" for s, r in results.items()) or "no source answered in time"
        if errors and len(errors) == len(sources):
            first = errors[0]
            raise QvError(f"no source could list {repo_id} ({reasons})", hint=first.hint)
        raise QvError(f"no source could list {repo_id} ({reasons})", hint="check the network/proxy, or name one with --source")
    http = HttpClient(timeout=5.0)
    rates = {s: _sample(lst, http) for s, lst in listings.items()}
    http.close()
    order = sorted(listings, key=lambda s: (rates[s] > 0, rates[s], -latency[s]), reverse=True)
    best = listings[order[0]]
    table = {s: ({"latency_s": round(latency[s], 3), "rate_mb_s": round(rates[s] / 1e6, 2)} if s in listings
                 else {"error": str(results.get(s, "no listing in time"))}) for s in sources}
    table.update({s: {"error": why} for s, why in (unreachable or {}).items()})
    reporter.event("probe", chosen=order[0], sources=table)
    fallbacks: dict[str, list[Origin]] = {}
    for s in order[1:]:
        other = listings[s]
        by_path = {f.path: f for f in other.files}
        for f in best.files:
            g = by_path.get(f.path)
            if g and g.size == f.size and f.sha256 and g.sha256 == f.sha256 and other.origin_for:
                fallbacks.setdefault(f.path, []).append(other.origin_for(g))
    return best, fallbacks
