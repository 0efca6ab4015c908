"""``qvdoctor bench``: parse the options, run the sweep, render (imported only when the command runs)."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from qvdoctor.errors import EXIT_FAIL, EXIT_OK, EXIT_WARN, QvError

_DUR = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$")


def parse_list(text: str, what: str, integer: bool) -> list[float]:
    out: list[float] = []
    for part in text.split(","):
        part = part.strip()
        try:
            v = int(part) if integer else float(part)
        except ValueError:
            raise QvError(f"{what} {text!r}: {part!r} is not a {'whole ' if integer else ''}number", f"e.g. {what} 1,2,4,8") from None
        if v <= 0:
            raise QvError(f"{what} values must be positive, not {part}")
        out.append(v)
    if out != sorted(out):
        raise QvError(f"{what} {text!r} must rise", f"e.g. {what} 1,2,4,8")
    return out


def parse_slos(text: str | None) -> list[Any]:
    from qvdoctor.loadtest.sweep import SLO_KEYS, Slo

    if not text:
        return []
    slos = []
    for part in text.split(","):
        key, sep, val = part.partition("=")
        name, _, pct = key.strip().lower().partition("_")
        m = _DUR.match(val)
        if not sep or name not in SLO_KEYS or not m or (pct and pct not in ("p50", "p90", "p99")):
            raise QvError(f"--slo {part.strip()!r} is not KEY=TIME", "e.g. --slo ttft=2s,tpot=50ms (keys ttft, tpot, itl, e2e; ttft_p99=... for another percentile)")
        ms = float(m.group(1)) * (1000.0 if m.group(2) == "s" else 1.0)
        slos.append(Slo(name, ms, pct or "p90"))
    return slos


def _plan_settings(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, val = item.partition("=")
        if not sep:
            raise QvError(f"--plan-setting {item!r} is not KEY=VALUE", "e.g. --plan-setting device=cpu")
        v: Any = val
        for conv in (int, float):
            try:
                v = conv(val)
                break
            except ValueError:
                continue
        out[key.strip()] = v
    return out


# the options that make a measurement; --from-json only renders, so none of them may come with it
MEASURE_OPTIONS = ("url", "model", "video", "image", "synthetic_video", "same_media", "prompt", "concurrency", "rate",
                   "requests", "duration", "no_ignore_eos", "slo", "full_sweep", "no_ceiling", "plan_model",
                   "plan_setting", "seed", "extra_body")


def _extra_body(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise QvError(f"--extra-body is not JSON: {exc}", """e.g. --extra-body '{"top_k": 1}'""") from None
    if not isinstance(value, dict):
        raise QvError("--extra-body must be a JSON object", """e.g. --extra-body '{"top_k": 1}'""")
    return value


def options(o: dict[str, Any]) -> Any:
    from qvdoctor.loadtest.httpclient import Endpoint
    from qvdoctor.loadtest.media import spec_for
    from qvdoctor.loadtest.predict import plan_capacity
    from qvdoctor.loadtest.run import BenchOptions

    if not o.get("url"):
        raise QvError("--url is missing", "e.g. --url http://127.0.0.1:8000/v1 (or --from-json FILE --report DIR to render a saved result)")
    try:
        Endpoint.parse(o["url"])
    except ValueError:
        raise QvError(f"--url {o['url']!r} is not http://HOST:PORT/v1", "e.g. --url http://127.0.0.1:8000/v1") from None
    if o.get("concurrency") and o.get("rate"):
        raise QvError("--concurrency and --rate do not go together", "sweep one of them")
    if o.get("rate"):
        mode, loads = "rate", parse_list(o["rate"], "--rate", False)
    else:
        mode, loads = "concurrency", parse_list(o.get("concurrency") or "1,2,4,8,16,32", "--concurrency", True)
    for key in ("requests", "max_tokens"):
        if o.get(key) is not None and o[key] < 1:
            raise QvError(f"--{key.replace('_', '-')} must be at least 1, not {o[key]}")
    for key in ("duration", "max_time", "timeout"):
        if o.get(key) is not None and o[key] <= 0:
            raise QvError(f"--{key.replace('_', '-')} must be positive, not {o[key]}")
    if o.get("requests") is None and o.get("duration") is not None:
        o["requests"] = 1000  # the request cap of a duration-bounded point
    media = spec_for(o.get("video"), o.get("image"), o.get("synthetic_video"), unique=not o.get("same_media"))
    cap = None
    if o.get("plan_model"):
        cap = plan_capacity(o["plan_model"], _plan_settings(o.get("plan_setting") or []))
    elif o.get("plan_setting"):
        raise QvError("--plan-setting needs --plan-model", "name the checkpoint directory to plan from")
    return BenchOptions(
        extra_body=_extra_body(o.get("extra_body")),
        url=o["url"].rstrip("/"), model=o.get("model"), media=media, loads=loads, mode=mode,
        requests=o.get("requests"), duration=o.get("duration"), max_tokens=o.get("max_tokens") or 64,
        slos=parse_slos(o.get("slo")), max_time=o.get("max_time") or 1800.0, timeout=o.get("timeout") or 600.0,
        prompt=o.get("prompt"), ceiling=not o.get("no_ceiling"), ignore_eos=not o.get("no_ignore_eos"),
        plan_capacity=cap, seed=o.get("seed"), stop_early=not o.get("full_sweep"),
    )


def load_result(path: str) -> dict[str, Any]:
    """A result saved from ``qvdoctor bench --json`` (stdout), or a report's result.json."""
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as exc:
        raise QvError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        result = json.loads(text)
    except ValueError as exc:
        raise QvError(f"{path} is not JSON ({exc})", "save the output of: qvdoctor bench ... --json > FILE") from None
    if isinstance(result, dict) and "error" in result and "points" not in result:
        err = result["error"]
        msg = err.get("message", err) if isinstance(err, dict) else err
        raise QvError(f"{path} holds a failed run, not a result: {msg}")
    if not isinstance(result, dict) or not isinstance(result.get("points"), list) or result.get("mode") not in ("concurrency", "rate"):
        raise QvError(f"{path} is not a qvdoctor bench result (no points/mode)", "save the output of: qvdoctor bench ... --json > FILE")
    result.pop("report_files", None)  # those of the machine that measured
    if "limit" not in result:  # saved before bench named the limit: read it from the points
        from qvdoctor.loadtest.limit import what_limits

        result["limit"] = what_limits(result["points"], result["mode"], bool(result.get("slo")), result.get("max_tokens") or 64,
                                      result.get("prediction"), result.get("server_version"))
    return result


def run(o: dict[str, Any]) -> int:
    from qvdoctor.loadtest.report import render_text, write_report
    from qvdoctor.loadtest.run import run_bench

    as_json = bool(o.get("json_out"))
    if o.get("from_json"):
        given = [k for k in MEASURE_OPTIONS if o.get(k) not in (None, False, [])]
        if given:
            raise QvError(f"--from-json renders a saved result and measures nothing: --{given[0].replace('_', '-')} does not go with it",
                          "qvdoctor bench --from-json result.json --report DIR")
        result = load_result(o["from_json"])
    else:
        opts = options(o)  # errors: one line, and qvdoctor.cli's JSON error object under --json
        result = run_bench(opts, (lambda m: print(m, file=sys.stderr, flush=True)))
    if o.get("report"):
        try:
            written = write_report(result, o["report"])
            result["report_files"] = written
        except QvError as exc:
            if o.get("from_json"):  # rendering is all this run does
                raise
            print(f"warning: {exc.message}", file=sys.stderr)
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        render_text(result)
    if result.get("interrupted") and not o.get("from_json"):
        print("error: interrupted (the points measured so far are above" + (" and in the report)" if o.get("report") else ")"), file=sys.stderr)
        return 130
    if result["slo"] and result["knee"] and result["knee"].get(result["mode"]) is None:
        return EXIT_FAIL
    pts = result["points"]
    if any(p["errors"] or p.get("usage_mismatch") or p.get("client_bound") for p in pts):
        return EXIT_WARN
    return EXIT_OK
