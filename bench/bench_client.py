"""Benchmark: qvdoctor bench's load client against ``vllm bench serve`` (and a plain httpx
streaming client), all against the same local server in the same run.

Server: ``qvdoctor.loadtest.testserver`` in a child process pinned to one CPU; each client is
pinned to another single CPU (``taskset``), so a client's ceiling is what one CPU of it does.

* ceiling: the do-nothing server (every token at once), concurrency 64, streaming chat requests
  of ``--max-tokens`` tokens: requests/s each client completes;
* points below saturation: the server with fixed TTFT and time per token and more slots than
  the load; at each concurrency both clients' req/s, TTFT p50 and TPOT p50 (they should agree:
  both are then measuring the server, not themselves), and what the server itself recorded for
  the same requests (``GET /debug/requests``: ``time.perf_counter()`` stamps, CLOCK_MONOTONIC, the
  clock every process on this machine shares). For ``vllm bench serve`` (``--save-detailed``:
  per-request ``start_times`` and ``ttfts``; its ``x-request-id`` header names each request on the
  server) each TTFT is split into send (its timer start -> the server has read the request
  head), server (head -> first token written) and receive (first token written -> its timer).

Both tools run through their own command lines (``qvdoctor bench --json``, ``vllm bench serve
--save-result``). Usage: python bench/bench_client.py [--requests 3000] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qvdoctor.loadtest.testserver import spawn  # noqa: E402

MODEL = "bench-model"


def pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and len(os.sched_getaffinity(0)) > 1 else []


def vllm_cli() -> list[str]:
    from qvdoctor.smoke.backends import vllm_executable

    return vllm_executable()


def tokenizer_dir() -> str:
    from qvdoctor.tinymodel import build_tiny_model

    return str(build_tiny_model())


def run_qvdoctor(url: str, conc: int, requests: int, max_tokens: int, cpu: int) -> dict:
    cmd = [*pin(cpu), sys.executable, "-m", "qvdoctor", "bench", "--url", url, "--model", MODEL, "--concurrency", str(conc),
           "--requests", str(requests), "--max-tokens", str(max_tokens), "--no-ceiling", "--json", "--prompt",
           "Write a short story about a robot learning to paint in the rain."]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=900)
    if not out.stdout.strip():
        raise SystemExit(out.stderr[-3000:])
    p = json.loads(out.stdout)["points"][0]
    return {"req_per_s": p["req_per_s"], "ttft_p50_ms": p["ttft_ms"]["p50"], "tpot_p50_ms": p["tpot_ms"]["p50"],
            "ok": p["ok"], "requests": p["requests"], "output_tok_per_s": p["output_tok_per_s"]}


def server_records(url: str) -> list[dict]:
    """The test server's own record of each timed request since the last call (then cleared)."""
    from qvdoctor.loadtest.httpclient import Endpoint, get

    status, body = asyncio.run(get(Endpoint.parse(url), "/debug/requests?clear=1"))
    assert status == 200, status
    return json.loads(body)["requests"]


def p50_ms(xs: list[float]) -> float | None:
    return round(statistics.median(xs) * 1000, 3) if xs else None


def run_vllm(url: str, conc: int, requests: int, max_tokens: int, cpu: int, tok: str, detailed: bool = False) -> dict:
    base = url.rsplit("/v1", 1)[0]
    with tempfile.TemporaryDirectory() as d:
        cmd = [*pin(cpu), *vllm_cli(), "bench", "serve", "--backend", "openai-chat", "--endpoint", "/v1/chat/completions",
               "--base-url", base, "--model", MODEL, "--tokenizer", tok, "--dataset-name", "random",
               "--random-input-len", "16", "--random-output-len", str(max_tokens), "--ignore-eos",
               "--num-prompts", str(requests), "--max-concurrency", str(conc), "--request-rate", "inf",
               "--disable-tqdm", "--save-result", "--result-dir", d, "--result-filename", "r.json",
               "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,90,99",
               *(["--save-detailed"] if detailed else [])]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=d, timeout=900)
        path = Path(d) / "r.json"
        if not path.exists():
            raise SystemExit("vllm bench serve failed:\n" + (out.stdout + out.stderr)[-4000:])
        r = json.loads(path.read_text())
    out = {"req_per_s": round(r["completed"] / r["duration"], 4), "ttft_p50_ms": r["median_ttft_ms"],
           "tpot_p50_ms": r["median_tpot_ms"], "ok": r["completed"], "requests": requests,
           "output_tok_per_s": r["output_throughput"]}
    if detailed:  # request i carries x-request-id "<prefix>-i" (vllm/benchmarks/datasets)
        out["_detail"] = list(zip(r["start_times"], r["ttfts"]))
    return out


def with_server_record(url: str, run: dict, max_tokens: int) -> dict:
    """Add what the server recorded for the requests of ``run`` (made just before, records cleared
    before it): its own TTFT p50 (request head read -> first token written); for a run with
    per-request detail, the send / server / receive split of the client's TTFT (p50s). Only the
    measured requests count: not qvdoctor's 2-token text baseline, nor vllm bench serve's
    untagged initial test request."""
    detailed = "_detail" in run
    recs = [r for r in server_records(url) if r["tokens"] == max_tokens and (r.get("id") or not detailed)]
    run["server_ttft_p50_ms"] = p50_ms([r["first"] - r["head"] for r in recs])
    run["server_requests"] = len(recs)
    detail = run.pop("_detail", None)
    if detail is not None:
        by_id = {int(r["id"].rsplit("-", 1)[1]): r for r in recs}
        rows = [(st, ttft, by_id[i]) for i, (st, ttft) in enumerate(detail) if i in by_id]
        run["ttft_split_p50_ms"] = {"send": p50_ms([s["head"] - st for st, _, s in rows]),
                                    "server": p50_ms([s["first"] - s["head"] for _, _, s in rows]),
                                    "receive": p50_ms([st + t - s["first"] for st, t, s in rows]),
                                    "matched": len(rows)}
    return run


def run_httpx(url: str, conc: int, requests: int, max_tokens: int, cpu: int) -> dict:
    """A plain httpx streaming client (one AsyncClient, conc workers), the same request body."""
    code = f"""
import asyncio, json, time, httpx
body = json.dumps({{"model": "{MODEL}", "messages": [{{"role": "user", "content": "Write a short story."}}],
    "max_tokens": {max_tokens}, "stream": True, "stream_options": {{"include_usage": True}}, "ignore_eos": True}})
async def main():
    n = [0]; done = [0]
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections={conc}), timeout=60) as c:
        async def worker():
            while n[0] < {requests}:
                n[0] += 1
                async with c.stream("POST", "{url}/chat/completions", content=body, headers={{"content-type": "application/json"}}) as r:
                    async for line in r.aiter_lines():
                        pass
                done[0] += 1
        t = time.perf_counter(); await asyncio.gather(*(worker() for _ in range({conc}))); dt = time.perf_counter() - t
    print(json.dumps({{"req_per_s": done[0] / dt, "ok": done[0]}}))
asyncio.run(main())
"""
    out = subprocess.run([*pin(cpu), sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    if not out.stdout.strip():
        raise SystemExit("httpx client failed:\n" + out.stderr[-3000:])
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=10000, help="requests per ceiling measurement (httpx: a tenth)")
    ap.add_argument("--point-requests", type=int, default=64, help="requests per point below saturation (at least)")
    ap.add_argument("--waves", type=int, default=16,
                    help="at least this many requests per worker at each point (the first wave, which opens the "
                         "connections, is then at most 1/waves of the requests)")
    ap.add_argument("--point-rounds", type=int, default=3, help="rounds per point below saturation (the medians are reported)")
    ap.add_argument("--points-only", action="store_true", help="skip the ceiling rounds")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--concurrency", type=int, default=64, help="concurrency of the ceiling measurement")
    ap.add_argument("--points", default="1,4,16", help="concurrencies below saturation")
    ap.add_argument("--ttft", type=float, default=0.05)
    ap.add_argument("--tpot", type=float, default=0.01)
    ap.add_argument("--repeat", type=int, default=5, help="ceiling rounds (interleaved; the median is reported)")
    ap.add_argument("--ceiling-only", action="store_true")
    ap.add_argument("--json", help="write the results to this file")
    a = ap.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpu = cpus[-1], cpus[0]
    tok = tokenizer_dir()
    res: dict = {"cpus": len(cpus), "server_cpu": server_cpu, "client_cpu": client_cpu, "max_tokens": a.max_tokens}
    print(f"server on CPU {server_cpu}, each client on CPU {client_cpu}; {a.max_tokens} tokens per request", flush=True)
    if not a.points_only:
        res.update(ceiling(a, server_cpu, client_cpu, tok))
    if a.ceiling_only:
        if a.json:
            Path(a.json).write_text(json.dumps(res, indent=2))
        return
    res["points"] = below_saturation(a, server_cpu, client_cpu, tok)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))


def ceiling(a: argparse.Namespace, server_cpu: int, client_cpu: int, tok: str) -> dict:
    res: dict = {}
    with spawn("--model", MODEL, cpu=server_cpu) as url:
        rounds: dict[str, list[dict]] = {"qvdoctor": [], "vllm bench serve": [], "httpx": []}
        for r in range(a.repeat):
            for name, fn in (("qvdoctor", lambda: run_qvdoctor(url, a.concurrency, a.requests, a.max_tokens, client_cpu)),
                             ("vllm bench serve", lambda: run_vllm(url, a.concurrency, a.requests, a.max_tokens, client_cpu, tok)),
                             ("httpx", lambda: run_httpx(url, a.concurrency, max(500, a.requests // 10), a.max_tokens, client_cpu))):
                rounds[name].append(fn())
                print(f"round {r + 1}  ceiling  {name:18s} {rounds[name][-1]['req_per_s']:8.1f} req/s ({rounds[name][-1]['ok']} ok)", flush=True)
        ratios = sorted(q["req_per_s"] / v["req_per_s"] for q, v in zip(rounds["qvdoctor"], rounds["vllm bench serve"]))
        med = {k: statistics.median(x["req_per_s"] for x in v) for k, v in rounds.items()}
        ratio = statistics.median(ratios)
        print(f"median ceiling: qvdoctor {med['qvdoctor']:.1f}, vllm bench serve {med['vllm bench serve']:.1f}, httpx {med['httpx']:.1f} req/s; "
              f"qvdoctor / vllm bench serve per round: {', '.join(f'{x:.2f}x' for x in ratios)} (median {ratio:.2f}x)", flush=True)
        res["ceiling_rounds"] = rounds
        res["ceiling_median_req_per_s"] = med
        res["ceiling_ratio_vs_vllm"] = round(ratio, 3)
    return res


def below_saturation(a: argparse.Namespace, server_cpu: int, client_cpu: int, tok: str) -> list[dict]:
    """Each concurrency: ``a.point_rounds`` rounds, the two clients one after the other (which
    goes first alternates); the medians over the rounds, and every round's numbers."""
    points = []
    with spawn("--model", MODEL, "--slots", "1000", "--ttft", str(a.ttft), "--tpot", str(a.tpot), cpu=server_cpu) as url:
        for c in [int(x) for x in a.points.split(",")]:
            n = max(a.point_requests, a.waves * c)
            runs: dict[str, list[dict]] = {"qvdoctor": [], "vllm": []}
            server_records(url)
            for r in range(a.point_rounds):
                for k in (("qvdoctor", "vllm") if r % 2 == 0 else ("vllm", "qvdoctor")):
                    run = (run_qvdoctor(url, c, n, a.max_tokens, client_cpu) if k == "qvdoctor"
                           else run_vllm(url, c, n, a.max_tokens, client_cpu, tok, detailed=True))
                    runs[k].append(with_server_record(url, run, a.max_tokens))
            med = {k: {m: round(statistics.median(x[m] for x in v), 4)
                       for m in ("req_per_s", "ttft_p50_ms", "tpot_p50_ms", "server_ttft_p50_ms")} for k, v in runs.items()}
            med["vllm"]["ttft_split_p50_ms"] = {part: round(statistics.median(x["ttft_split_p50_ms"][part] for x in runs["vllm"]), 3)
                                                for part in ("send", "server", "receive")}
            q, v = med["qvdoctor"], med["vllm"]
            ratios = [x["req_per_s"] / y["req_per_s"] for x, y in zip(runs["qvdoctor"], runs["vllm"])]
            row = {"concurrency": c, "requests": n, "rounds": a.point_rounds, "qvdoctor": q, "vllm": v,
                   "req_ratio": round(statistics.median(ratios), 4), "req_ratio_rounds": [round(x, 4) for x in ratios],
                   "ttft_diff_pct": round(100 * (q["ttft_p50_ms"] - v["ttft_p50_ms"]) / v["ttft_p50_ms"], 2),
                   "tpot_diff_pct": round(100 * (q["tpot_p50_ms"] - v["tpot_p50_ms"]) / v["tpot_p50_ms"], 2),
                   "runs": runs}
            for k in ("qvdoctor", "vllm"):  # each client's TTFT against the server's own for the same requests
                srv = med[k]["server_ttft_p50_ms"]
                med[k]["ttft_vs_server_pct"] = round(100 * (med[k]["ttft_p50_ms"] - srv) / srv, 2)
            points.append(row)
            sp = v["ttft_split_p50_ms"]
            print(f"c={c:3d} n={n} x{a.point_rounds}  req/s {q['req_per_s']:7.2f} vs {v['req_per_s']:7.2f} "
                  f"({row['req_ratio']:.3f}x; rounds {', '.join(f'{x:.3f}' for x in ratios)})  "
                  f"TTFT p50 {q['ttft_p50_ms']:.2f} vs {v['ttft_p50_ms']:.2f} ms ({row['ttft_diff_pct']:+.2f} %)  "
                  f"TPOT p50 {q['tpot_p50_ms']:.3f} vs {v['tpot_p50_ms']:.3f} ms ({row['tpot_diff_pct']:+.2f} %)  "
                  f"server's own TTFT p50 {q['server_ttft_p50_ms']} / {v['server_ttft_p50_ms']} ms "
                  f"(client vs server {q['ttft_vs_server_pct']:+.2f} % / {v['ttft_vs_server_pct']:+.2f} %); "
                  f"vllm split send/server/receive {sp['send']}/{sp['server']}/{sp['receive']} ms", flush=True)
    return points


if __name__ == "__main__":
    main()
