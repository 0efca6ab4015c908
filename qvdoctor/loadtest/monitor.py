"""``qvdoctor monitor``: samples of a vLLM server's /metrics (every release's names, see
:mod:`vllm_metrics`) and of the local GPUs (NVML), as a rich Live table or JSON."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from qvdoctor.errors import QvError
from qvdoctor.loadtest import vllm_metrics as vm
from qvdoctor.loadtest.httpclient import Endpoint, HttpError, get
from qvdoctor.loadtest.promtext import Scrape, parse


def read_metrics(url: str) -> Scrape:
    try:
        ep = Endpoint.parse(url)
    except ValueError:
        raise QvError(f"--url {url!r} is not http://HOST:PORT", "e.g. --url http://127.0.0.1:8000") from None
    try:
        status, body = asyncio.run(get(ep, "/metrics", timeout=10.0))
    except (HttpError, OSError) as exc:
        raise QvError(f"cannot read {ep.root}/metrics: {exc}", "is the vLLM server running at that address?") from None
    if status != 200:
        raise QvError(f"{ep.root}/metrics answered HTTP {status}", "is this a vLLM server?")
    scrape = parse(body.decode("utf-8", "replace"), time.monotonic())
    if not any(n.startswith("vllm:") for n in scrape.samples):
        raise QvError(f"{ep.root}/metrics has no vllm: metrics", "point --url at a vLLM server")
    return scrape


def gpu_sample() -> list[dict[str, Any]] | None:
    """Per-GPU memory and utilization through NVML; ``None`` when there is no NVIDIA driver."""
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - NVMLError_LibraryNotFound and friends: no local GPU
        return None
    try:
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            util = pynvml.nvmlDeviceGetUtilizationRates(h)
            name = pynvml.nvmlDeviceGetName(h)
            out.append({"index": i, "name": name.decode() if isinstance(name, bytes) else name,
                        "memory_used_bytes": int(mem.used), "memory_total_bytes": int(mem.total),
                        "utilization_percent": int(util.gpu)})
        return out
    except Exception:  # noqa: BLE001
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass


def sample(url: str, before: Scrape | None, gpu: bool) -> tuple[dict[str, Any], Scrape]:
    after = read_metrics(url)
    d = vm.summary(after, before)
    d["url"] = url
    d["gpus"] = gpu_sample() if gpu else None
    return d, after


def _f(v: Any, nd: int = 1, pct: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v * 100:.{nd}f} %" if pct else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def render(d: dict[str, Any]) -> Any:
    from rich.table import Table

    t = Table(title=f"vLLM at {d['url']}", show_header=False)
    t.add_column("what")
    t.add_column("value")
    t.add_row("requests running / waiting", f"{_f(d['running'], 0)} / {_f(d['waiting'], 0)}")
    t.add_row("KV cache used", _f(d["kv_cache_usage"], 1, pct=True))
    cap = d.get("kv_capacity")
    if cap:
        t.add_row("KV capacity", f"{cap['tokens']:,} tokens ({cap['num_blocks']:,} blocks of {cap['block_size']})")
    t.add_row("preemptions (total)", _f(d["preemptions"], 0))
    t.add_row("prompt / generation tok/s", f"{_f(d.get('prompt_tok_per_s'))} / {_f(d.get('generation_tok_per_s'))}")
    for key, label in (("ttft_ms", "TTFT"), ("queue_ms", "queue time"), ("itl_ms", "inter-token"), ("e2e_ms", "end-to-end")):
        h = d.get(key)
        t.add_row(f"{label} p50/p90/p99 ms (interval)", "-" if not h else f"{_f(h['p50'])} / {_f(h['p90'])} / {_f(h['p99'])} ({h['count']:.0f} req)")
    cache = d.get("cache") or {}
    for kind, label in (("prefix_cache", "prefix cache hits"), ("mm_cache", "multimodal cache hits")):
        c = cache.get(kind)
        if c:
            t.add_row(label + " (interval)", f"{c['hits']:.0f} / {c['queries']:.0f}")
    for g in d.get("gpus") or []:
        t.add_row(f"GPU {g['index']} {g['name']}", f"{g['memory_used_bytes'] / 2**30:.1f} / {g['memory_total_bytes'] / 2**30:.1f} GiB, {g['utilization_percent']} %")
    return t


def run(url: str, interval: float, once: bool, json_out: bool, duration: float | None, gpu: bool) -> int:
    if interval <= 0:
        raise QvError(f"--interval must be positive, not {interval}")
    first = read_metrics(url)  # a QvError becomes qvdoctor.cli's one line (and JSON error object)
    if once:
        time.sleep(interval)
        d, _ = sample(url, first, gpu)
        if json_out:
            print(json.dumps(d, indent=2))
        else:
            from rich.console import Console

            Console().print(render(d))
        return 0
    end = time.monotonic() + duration if duration else None
    before = first
    if json_out:
        try:
            while end is None or time.monotonic() < end:
                time.sleep(interval)
                d, before = sample(url, before, gpu)
                print(json.dumps(d), flush=True)
        except KeyboardInterrupt:
            return 0
        return 0
    from rich.live import Live

    try:
        with Live(render(vm.summary(first) | {"url": url, "gpus": None}), refresh_per_second=4, transient=False) as live:
            while end is None or time.monotonic() < end:
                time.sleep(interval)
                d, before = sample(url, before, gpu)
                live.update(render(d))
    except KeyboardInterrupt:
        print("", file=sys.stderr)
    return 0
