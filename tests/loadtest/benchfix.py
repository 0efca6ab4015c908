"""Shared pieces of the bench tests: a local test server with exactly known timing, its own record
of what it did for each request, and the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, Iterator

from qvdoctor.loadtest.httpclient import Endpoint, get
from qvdoctor.loadtest.media import expected_visual_tokens, spec_for
from qvdoctor.loadtest.stats import percentile
from qvdoctor.loadtest.testserver import spawn

CLIP = "2@64x64"  # 8 frames at 4 fps: small, quick to encode
CLIP_TOKENS = expected_visual_tokens(spec_for(None, None, CLIP))


@contextlib.contextmanager
def server(*args: str) -> Iterator[str]:
    with spawn(*args) as url:
        yield url


def result_json(res) -> dict:
    assert res.stdout.strip(), res.stderr[-3000:]
    return json.loads(res.stdout)


def server_records(url: str, tokens: int) -> list[dict[str, Any]]:
    """What the test server itself did for each timed request of ``tokens`` tokens (the bench's
    2-token text baseline left out), in the order the requests arrived; the record is cleared."""
    status, body = asyncio.run(get(Endpoint.parse(url), "/debug/requests?clear=1"))
    assert status == 200
    return sorted((r for r in json.loads(body)["requests"] if r["tokens"] == tokens), key=lambda r: r["head"])


def split_points(records: list[dict[str, Any]], points: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The records of each point's successful requests (points run one after another)."""
    out, i = [], 0
    for p in points:
        out.append(records[i:i + p["ok"]])
        i += p["ok"]
    assert i == len(records), (i, len(records))
    return out


def server_p50_ms(records: list[dict[str, Any]]) -> dict[str, float]:
    """The p50s of the server's own timing, defined as the client defines them: TTFT from the
    request's head to the first token written, TPOT (end - first) / (tokens - 1), each gap
    between token writes an inter-token latency (same percentile function as qvdoctor bench)."""
    ms = lambda xs: round(percentile(xs, 50) * 1000, 3)  # noqa: E731
    return {"ttft": ms([r["first"] - r["head"] for r in records]),
            "tpot": ms([(r["end"] - r["first"]) / (r["tokens"] - 1) for r in records]),
            "itl": ms([g for r in records for g in r["itl"]])}


def assert_measures_the_server(point: dict[str, Any], srv: dict[str, float], told: dict[str, float], tol: float = 0.10) -> None:
    """qvdoctor's p50s against what the server did for the same requests.

    The server records its real timing (late by however long this loaded machine took to
    schedule it); the client's p50 must be within ``tol`` of the told value *beyond* that record,
    and TTFT can never be below it (the client's timer starts before the server reads the request
    and stops after the first token is written: the same clock, CLOCK_MONOTONIC). The server
    itself is never early with the first token (each later token is due at a fixed time from the
    slot, so after a late one the gap can be short). A client that measured something else — from the response headers, to
    the usage chunk, or with gaps counted twice — misses these by far more than ``tol``."""
    assert srv["ttft"] >= told["ttft"] - 0.5, f"the server's own TTFT p50 {srv['ttft']} ms is below what it was told ({told['ttft']} ms)"
    assert point["ttft_ms"]["p50"] >= srv["ttft"] - 0.5, (point["ttft_ms"], srv)
    for key in ("ttft", "tpot", "itl"):
        got, own, want = point[f"{key}_ms"]["p50"], srv[key], told[key]
        assert abs(got - own) <= tol * want, f"{key} p50: qvdoctor {got} ms, the server's own {own} ms (told {want} ms)"
