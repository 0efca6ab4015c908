"""``qvdoctor bench`` end to end: model name, text baseline, client ceiling, the sweep with its
early stop, the usage check, the prediction. Ctrl-C stops the sweep and keeps the points
measured so far; every connection and child process is closed on every path."""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from qvdoctor.errors import QvError
from qvdoctor.loadtest import ceiling as ceil_mod
from qvdoctor.loadtest.client import chat_body
from qvdoctor.loadtest.media import MediaFactory, MediaSpec, expected_visual_tokens
from qvdoctor.loadtest.predict import predict
from qvdoctor.loadtest.limit import what_limits
from qvdoctor.loadtest import sweep as sw
from qvdoctor.loadtest import vllm_metrics as vm
from qvdoctor.loadtest.httpclient import Endpoint


@dataclass
class BenchOptions:
    url: str
    model: str | None
    media: MediaSpec
    loads: list[float]
    mode: str = "concurrency"
    requests: int | None = None
    duration: float | None = None
    max_tokens: int = 64
    slos: list[sw.Slo] = field(default_factory=list)
    max_time: float = 1800.0
    timeout: float = 600.0
    prompt: str | None = None
    ceiling: bool = True
    ignore_eos: bool = True
    extra_body: dict[str, Any] = field(default_factory=dict)
    plan_capacity: dict[str, Any] | None = None
    seed: int | None = None
    stop_early: bool = True


class Bodies:
    """Request bodies by number, made ahead of each point (media encoding stays out of the
    measured time)."""

    def __init__(self, factory: MediaFactory, model: str, max_tokens: int, ignore_eos: bool, extra: dict[str, Any]):
        self.factory, self.model, self.max_tokens, self.ignore_eos, self.extra = factory, model, max_tokens, ignore_eos, extra
        self.cache: dict[int, bytes] = {}

    def prepare(self, first: int, count: int) -> None:
        for k in range(first, first + count):
            if k not in self.cache:
                self.cache[k] = chat_body(self.model, self.factory.content(k), self.max_tokens, self.ignore_eos, self.extra)

    def __call__(self, k: int) -> bytes:
        if k not in self.cache:
            self.prepare(k, 1)
        return self.cache[k]

    def drop_before(self, k: int) -> None:
        for key in [x for x in self.cache if x < k]:
            del self.cache[key]


async def _run(o: BenchOptions, log: Callable[[str], None], state: dict[str, Any]) -> None:
    endpoint = Endpoint.parse(o.url)
    model = o.model or await sw.served_model(o.url)
    if not model:
        raise QvError(f"cannot read the served model from {o.url}/models", "pass --model NAME (the server's --served-model-name)")
    state["model"] = model
    state["server_version"] = await sw.server_version(o.url)
    factory = MediaFactory(o.media, o.prompt, o.seed)
    bodies = Bodies(factory, model, o.max_tokens, o.ignore_eos, o.extra_body)
    base = await sw.text_baseline(o.url, model, factory.text_only(), o.extra_body)
    if not base.ok:
        raise QvError(f"the server at {o.url} did not answer a streaming chat request: {base.error}",
                      "check --url (it ends in /v1) and --model; is the server up?")
    state["text_prompt_tokens"] = base.prompt_tokens
    # one unloaded request's end-to-end latency at max_tokens (the baseline decodes 2 tokens)
    e2e_floor = (base.e2e or 0) + (o.max_tokens - 2) * (base.itl[0] if base.itl else 0) or None
    state["visual_tokens_expected"] = expected_visual_tokens(o.media) if o.media.kind != "text" else None
    first = await sw.scrape(endpoint)
    state["server_metrics"] = first is not None
    if first is not None:
        state["server_kv"] = vm.kv_capacity(first)
        state["metric_names"] = {k: v for k, v in vm.names_found(first).items() if v}
    bodies.prepare(0, 1)
    if o.ceiling:
        conc = int(max(o.loads)) if o.mode == "concurrency" else 64
        log(f"client ceiling: the same client against a local do-nothing server at concurrency {max(conc, 8)} ...")
        state["client_ceiling"] = await ceil_mod.measure(bodies(0), model, max(conc, 8), max_tokens=o.max_tokens)
        log(f"client ceiling: {state['client_ceiling']['req_per_s']:.0f} req/s, {state['client_ceiling']['output_tok_per_s']:.0f} output tok/s")
    lp = sw.LoadPlan(url=o.url, model=model, bodies=bodies, loads=o.loads, mode=o.mode, requests=o.requests,
                     duration=o.duration, timeout=o.timeout, max_time=o.max_time, slos=o.slos,
                     media_items=0 if o.media.kind == "text" else 1, visual_expected=state["visual_tokens_expected"])
    deadline = time.perf_counter() + o.max_time
    nxt = 1  # request 0 is the ceiling's body; every point gets fresh numbers
    for load in o.loads:
        if time.perf_counter() >= deadline:
            state["stopped"] = f"the run's time cap ({o.max_time:g} s) was reached"
            break
        n = lp.requests_for(load, state["points"][-1] if state["points"] else None, e2e_floor)
        if o.media.kind != "text" and o.media.unique:
            log(f"preparing {n} unique {o.media.kind} request(s) ...")
        await asyncio.get_running_loop().run_in_executor(None, bodies.prepare, nxt, n)
        label = f"concurrency {int(load)}" if o.mode == "concurrency" else f"rate {load:g} req/s"
        log(f"{label}: {n} requests ...")
        point = await sw.run_point(lp, load, nxt, deadline, n)
        if state["interrupted"]:  # Ctrl-C whose cancellation an inner wait_for swallowed (Python < 3.12)
            raise asyncio.CancelledError
        nxt += n
        bodies.drop_before(nxt)
        d = _finish_point(point.to_dict(), state, o)
        state["points"].append(d)
        log(f"{label}: ok {d['ok']}/{d['requests']}, {d['req_per_s']:.2f} req/s, TTFT p50 {_f(d['ttft_ms']['p50'])} ms, TPOT p50 {_f(d['tpot_ms']['p50'])} ms")
        if o.duration is not None and d["requests"] >= n and d["duration_s"] < o.duration:
            log(f"{label}: all {n} prepared requests were sent before --duration {o.duration:g} s ended"
                + (" (raise --requests)" if n >= (o.requests or 0) else ""))
        why = sw.past_saturation(state["points"], o.slos)
        if why and o.stop_early and len(state["points"]) < len(o.loads):
            state["stopped"] = f"stopped early after {label}: {why}"
            log(state["stopped"])
            break


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _finish_point(d: dict[str, Any], state: dict[str, Any], o: BenchOptions) -> dict[str, Any]:
    text = state.get("text_prompt_tokens")
    exp = state.get("visual_tokens_expected")
    if d["prompt_tokens"] is not None and text is not None and o.media.kind != "text":
        d["visual_tokens"] = round(d["prompt_tokens"] - text - 2, 2)  # vision start/end around the pads
    d["visual_tokens_expected"] = exp
    d["usage_mismatch"] = bool(exp is not None and d["visual_tokens"] is not None and abs(d["visual_tokens"] - exp) > 0.5)
    d["client_bound"] = ceil_mod.client_bound(d, state.get("client_ceiling"))
    d["meets_slo"] = sw.meets_slos(d, o.slos) if o.slos else None
    return d


def run_bench(o: BenchOptions, log: Callable[[str], None]) -> dict[str, Any]:
    """Run the whole bench; returns the result dict (also after Ctrl-C, with ``interrupted``)."""
    state: dict[str, Any] = {"points": [], "client_ceiling": None, "stopped": None, "interrupted": False}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(_run(o, log, state))

        def interrupt() -> None:
            state["interrupted"] = True  # sticky: the run checks it after each point, too
            task.cancel()

        try:
            loop.add_signal_handler(signal.SIGINT, interrupt)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
        try:
            await task
        except asyncio.CancelledError:
            state["interrupted"] = True
        finally:
            try:
                loop.remove_signal_handler(signal.SIGINT)
            except (NotImplementedError, RuntimeError, ValueError):
                pass

    event_loop_run(main())
    return assemble(state, o)


def event_loop_run(coro: Any) -> Any:
    """``uvloop.run`` where uvloop is installed (it ships with vLLM; a faster event loop raises
    the client's ceiling), else ``asyncio.run``."""
    try:
        import uvloop  # type: ignore[import-not-found]
    except ImportError:
        return asyncio.run(coro)
    if not hasattr(uvloop, "run"):  # uvloop < 0.18
        return asyncio.run(coro)
    return uvloop.run(coro)


def assemble(state: dict[str, Any], o: BenchOptions) -> dict[str, Any]:
    points = state["points"]
    kn = sw.knee(points, o.slos, o.mode)
    tpr = None
    prompts = [p["prompt_tokens"] for p in points if p["prompt_tokens"] is not None]
    if prompts:
        tpr = sum(prompts) / len(prompts) + o.max_tokens
    elif state.get("text_prompt_tokens") is not None:
        tpr = state["text_prompt_tokens"] + (state.get("visual_tokens_expected") or 0) + 2 + o.max_tokens
    prediction: dict[str, Any] = {"tokens_per_request": round(tpr, 1) if tpr else None,
                                  "from_plan": predict(o.plan_capacity, tpr),
                                  "from_server": predict({"source": "server /metrics (vllm:cache_config_info)", **state["server_kv"]}, tpr) if state.get("server_kv") else None,
                                  "measured_knee": kn.get("concurrency") if kn and o.mode == "concurrency" else None}
    mism = [p for p in points if p.get("usage_mismatch")]
    usage = None
    if state.get("visual_tokens_expected") is not None:
        measured = [p["visual_tokens"] for p in points if p.get("visual_tokens") is not None]
        usage = {"visual_tokens_expected": state["visual_tokens_expected"],
                 "visual_tokens_measured": round(sum(measured) / len(measured), 2) if measured else None,
                 "text_prompt_tokens": state.get("text_prompt_tokens"),
                 "mismatch": bool(mism),
                 "rule": "visual = usage.prompt_tokens - the text-only request's prompt_tokens - 2 (vision start/end)"}
    limit = what_limits(points, o.mode, bool(o.slos), o.max_tokens, prediction, state.get("server_version"))
    return {
        "url": o.url, "model": state.get("model"), "server_version": state.get("server_version"),
        "media": o.media.describe(), "mode": o.mode,
        "max_tokens": o.max_tokens, "slo": [s.label() for s in o.slos],
        "points": points, "knee": kn, "client_ceiling": state.get("client_ceiling"), "prediction": prediction,
        "limit": limit, "usage_check": usage, "stopped": state.get("stopped"), "interrupted": state.get("interrupted", False),
        "metric_names": state.get("metric_names"),
    }
