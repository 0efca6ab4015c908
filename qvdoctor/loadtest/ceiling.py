"""The client's own ceiling: the same client, the same request bodies, against the local
do-nothing server (:mod:`testserver`, a child process) in the same run."""

from __future__ import annotations

import os
import time
from typing import Any

from qvdoctor.loadtest.sweep import LoadPlan, run_point
from qvdoctor.loadtest.testserver import spawn

CLIENT_BOUND_SHARE = 0.5  # a point at >= this share of the ceiling is marked client-bound


def server_cpu() -> int | None:
    """A CPU for the do-nothing server other than the one this process prefers (None: no pinning)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None
    return cpus[-1] if len(cpus) > 1 else None


async def measure(body: bytes, model: str, concurrency: int, requests: int = 2000, seconds: float = 3.0,
                  max_tokens: int = 0) -> dict[str, Any]:
    """req/s and output tok/s of the client against a do-nothing server at ``concurrency``."""
    cm = spawn("--model", model, cpu=server_cpu())
    url = cm.__enter__()  # synchronous (well under a second): a Ctrl-C can only land after it, inside the try
    try:
        lp = LoadPlan(url=url, model=model, bodies=lambda k: body, loads=[concurrency], requests=requests,
                      duration=seconds, timeout=30.0)
        await run_point(lp, concurrency, 0, time.perf_counter() + seconds + 30)  # warm-up (connections, caches)
        point = await run_point(lp, concurrency, 0, time.perf_counter() + seconds + 30)
    finally:
        cm.__exit__(None, None, None)
    d = point.to_dict()
    return {"concurrency": concurrency, "requests": d["requests"], "ok": d["ok"], "req_per_s": d["req_per_s"],
            "output_tok_per_s": d["output_tok_per_s"], "ttft_ms": d["ttft_ms"], "server": "local do-nothing server (qvdoctor.loadtest.testserver)"}


def client_bound(point: dict[str, Any], ceiling: dict[str, Any] | None) -> bool:
    if not ceiling or not ceiling.get("req_per_s"):
        return False
    share_r = point["req_per_s"] / ceiling["req_per_s"]
    share_t = point["output_tok_per_s"] / ceiling["output_tok_per_s"] if ceiling.get("output_tok_per_s") else 0.0
    return max(share_r, share_t) >= CLIENT_BOUND_SHARE
