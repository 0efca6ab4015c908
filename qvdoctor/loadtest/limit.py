"""What limits the measured knee: the first point past it set against the lowest load, by where
its time went (the client, vLLM's queue, prefill, the API server before the engine, decode).

The TTFT breakdown (``vllm_metrics.ttft_breakdown``) splits the client's mean TTFT into queue
(waiting for a batch slot), prefill (scheduled until the first token) and the rest: the time
before the engine queues the request, i.e. upload, media decode and the HF processor in the API
server. The component that grew most between the two points is where requests wait."""

from __future__ import annotations

from typing import Any

# vLLM runs N API server processes over one engine with --api-server-count N (run_multi_api_server; the flag
# came with vllm-project/vllm#17546, May 2025, and since #22710 / #23550, Aug 2025 (0.10), each server does its
# own multimodal processing); vLLM's parser reads the flag (tests/loadtest/test_bench_limit.py).
# Measured on an H100 (vLLM 0.26.0, eager, 8 s 640x360 video, two same-machine pairs; docs/bench.md): saturated
# throughput 4.07 -> 5.16 and 4.38 -> 5.60 req/s, the knee under TTFT p90 <= 1 s not raised
# (tests/logs/real/gpu/serve-bench-api4-eager*, serve-bench-eager*).
API_SERVERS = 4
MIN_API_SERVER_VERSION = (0, 10)


def _version(text: str | None) -> tuple[int, int] | None:
    try:
        major, minor = str(text).split(".")[:2]
        return int(major), int(minor)
    except (ValueError, AttributeError):
        return None


def _past_knee(points: list[dict[str, Any]], slos: bool) -> dict[str, Any] | None:
    if len(points) < 2:
        return None
    for p in points[1:]:
        if (slos and p.get("meets_slo") is False) or p.get("client_bound"):
            return p
    return None if slos else points[-1]


def _mean(p: dict[str, Any], key: str) -> float | None:
    return (p.get(key) or {}).get("mean")


def what_limits(points: list[dict[str, Any]], mode: str, slos: bool, max_tokens: int,
                prediction: dict[str, Any] | None, server_version: str | None) -> dict[str, Any] | None:
    """``{"stage", "load", "evidence": [...], "cause", "fix": {"flags": {...}} | None, "hint"}``
    for the first point that missed the SLOs (or the last point without SLOs), else ``None``."""
    key = "concurrency" if mode == "concurrency" else "rate"
    past = _past_knee(points, slos)
    if past is None:
        return None
    base = points[0]
    load = past[key]
    out: dict[str, Any] = {"load": load, "fix": None, "hint": None}
    if past.get("client_bound"):
        return {**out, "stage": "client", "evidence": [f"{key} {load}: {past['req_per_s']:.2f} req/s is within reach of the client ceiling"],
                "cause": "the load generator, not the server, sets the pace at this point",
                "hint": "run the bench on another machine or core than the server"}
    prev = points[points.index(past) - 1]
    evidence = []
    if prev.get("req_per_s") and prev.get(key):
        evidence.append(f"{key} {prev[key]} -> {load} (x{load / prev[key]:g}): req/s {prev['req_per_s']:.2f} -> "
                        f"{past['req_per_s']:.2f} (x{past['req_per_s'] / prev['req_per_s']:.2f})")
    b0, b1 = base.get("ttft_breakdown_ms"), past.get("ttft_breakdown_ms")
    kv_knee = min((p["predicted_knee"] for p in (prediction or {}).values() if isinstance(p, dict) and p.get("predicted_knee")), default=None)
    grew: dict[str, float] = {}
    if b0 and b1 and b0.get("rest_ms") is not None and b1.get("rest_ms") is not None:
        grew = {part: b1[f"{part}_ms"] - b0[f"{part}_ms"] for part in ("queue", "prefill", "rest")}
        evidence.append("TTFT mean split queue/prefill/rest: "
                        f"{b0['queue_ms']:.0f}/{b0['prefill_ms']:.0f}/{b0['rest_ms']:.0f} ms at {key} {base[key]} -> "
                        f"{b1['queue_ms']:.0f}/{b1['prefill_ms']:.0f}/{b1['rest_ms']:.0f} ms at {load}")
    ttft_grew = (_mean(past, "ttft_ms") or 0) - (_mean(base, "ttft_ms") or 0)
    decode_grew = ((_mean(past, "tpot_ms") or 0) - (_mean(base, "tpot_ms") or 0)) * max(0, max_tokens - 1)
    if grew and max(grew.values()) >= 0.5 * max(ttft_grew, decode_grew, 1e-9):
        stage = max(grew, key=lambda k: grew[k])
    elif decode_grew > ttft_grew:
        stage = "decode"
        evidence.append(f"TPOT mean {_mean(base, 'tpot_ms'):.1f} -> {_mean(past, 'tpot_ms'):.1f} ms")
    elif grew:
        return {**out, "stage": "unknown", "evidence": evidence,
                "cause": "TTFT grew in queue, prefill and the rest alike: no one stage explains the knee",
                "hint": "bench with more requests per point (--requests or --duration) to narrow the split"}
    else:
        return {**out, "stage": "unknown", "evidence": evidence,
                "cause": "the server's /metrics give no TTFT breakdown to tell where requests wait",
                "hint": "serve with vLLM's metrics enabled (its default) so the queue and prefill histograms can be read"}
    if kv_knee is not None:
        evidence.append(f"the KV cache fills at {kv_knee} concurrent requests (prediction)")
    if stage == "rest":
        cause = ("requests wait before the engine sees them: upload, media decode and the HF processor run in the "
                 "API server process one request at a time, and that process, not the GPU"
                 + (f" or the KV cache (full at {kv_knee})" if kv_knee and kv_knee > 2 * float(load) else "")
                 + ", sets the rate")
        v = _version(server_version)
        if v is not None and v < MIN_API_SERVER_VERSION:
            return {**out, "stage": "api-server", "evidence": evidence, "cause": cause,
                    "hint": f"vLLM {server_version} runs one API server; vLLM >= 0.10 spreads media processing over "
                            f"--api-server-count processes; or send fewer frames/pixels (fps, max_pixels)"}
        return {**out, "stage": "api-server", "evidence": evidence, "cause": cause,
                "fix": {"flags": {"api_server_count": API_SERVERS}},
                "hint": f"add --api-server-count {API_SERVERS} to the served launch unless it already runs several (bench "
                        f"cannot see the server's flags; {API_SERVERS} API server processes share "
                        "the media processing; each takes a CPU core and its own processor cache), then bench again: "
                        "measured on an H100 (vLLM 0.26.0, eager, 8 s video) it raised the saturated rate 4.4 -> 5.6 "
                        "req/s (+28 %), not the knee under a 1 s TTFT p90 (tests/logs/real/gpu/serve-bench-api4-eager-sweep)"}
    if stage == "queue":
        full = kv_knee is not None and float(load) >= kv_knee
        cause = ("requests wait in vLLM's queue for a batch slot: "
                 + ("the KV cache is full, as predicted" if full else
                    "the engine's steps are full (max_num_batched_tokens, max_num_seqs) before the KV cache is"))
        return {**out, "stage": "engine-queue", "evidence": evidence, "cause": cause,
                "hint": "this is the launch's capacity: more needs another GPU (data parallel) or fewer tokens per request (max_pixels, fps)"}
    if stage == "prefill":
        return {**out, "stage": "prefill", "evidence": evidence,
                "cause": "the GPU's prefill of the visual tokens sets the pace (requests are scheduled at once, their prefill slows down)",
                "hint": "fewer visual tokens per request (max_pixels, fps) or another GPU (data parallel)"}
    return {**out, "stage": "decode", "evidence": evidence,
            "cause": "each decode step of the larger batch takes longer: the time per output token misses its SLO first",
            "hint": "cap the batch at the knee (--max-num-seqs) to hold TPOT, or add a GPU"}
