"""Where a client's TTFT goes: each request of ``vllm bench serve`` and of qvdoctor bench's client
against the test server with fixed timing, split with the server's own record of the same request
(docs/bench.md, "Where vllm bench serve's extra TTFT comes from").

send = the client's timer start -> the server has read the request head; server = head -> first
token written; receive = first token written -> the client's timer stops. Every stamp is
``time.perf_counter()`` (CLOCK_MONOTONIC on Linux: one clock for every local process). Requests
are matched by their ``x-request-id`` header: vLLM sends one; qvdoctor's client gets one added
here (a diagnostic patch of ``Connection._head``, nothing else changes).

* ``vllm bench serve`` through its command line (``--save-detailed``: start_times, ttfts);
* qvdoctor's client in a child process (``qvdoctor.loadtest.sweep.run_point``, uvloop as the CLI);
* with ``--vllm-func-python PY``: vLLM's own request function (``endpoint_request_func.py``, loaded
  from the installed vLLM) driven as serve.py drives it, under another interpreter PY (which needs
  aiohttp): e.g. Python 3.12, where aiohttp writes the request body eagerly.

Usage: python bench/ttft_anatomy.py [--concurrency 1,4,16] [--requests 64] [--vllm-func-python PY]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_client as bc  # noqa: E402
from qvdoctor.loadtest.testserver import spawn  # noqa: E402

QV_CHILD = r'''
import asyncio, json, re, sys, time
from qvdoctor.loadtest import httpclient, sweep
from qvdoctor.loadtest.client import chat_body
url, c, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
entries = []
async def _head(self, method, path, body, content_type):  # Connection._head plus one header line
    m = re.search(rb'"user":"(q\d+)"', body)
    if m:
        entries.append((time.perf_counter(), m.group(1).decode()))
    if self.writer is None or not self.reusable:
        self.close(); await self.open()
    rid = f"X-Request-Id: {m.group(1).decode()}\r\n" if m else ""
    head = (f"{method} {path} HTTP/1.1\r\nHost: {self.endpoint.host}:{self.endpoint.port}\r\n"
            f"Content-Type: {content_type}\r\nAccept: */*\r\n{rid}Content-Length: {len(body)}\r\n\r\n").encode()
    self.writer.write(head + body)
    await self.writer.drain()
    raw = await self.reader.readuntil(b"\r\n\r\n")
    lines = raw.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        if b":" in line:
            k, v = line.split(b":", 1); headers[k.strip().lower()] = v.strip()
    return int(lines[0].split(b" ", 2)[1]), headers
httpclient.Connection._head = _head
content = [{"type": "text", "text": "Write a short story about a robot learning to paint in the rain."}]
def bodies(k):
    b = json.loads(chat_body("bench-model", content, 64)); b["user"] = f"q{k}"
    return json.dumps(b, separators=(",", ":")).encode()
lp = sweep.LoadPlan(url=url, model="bench-model", bodies=bodies, loads=[c], requests=n)
try:
    import uvloop
    run = uvloop.run
except ImportError:
    run = asyncio.run
p = run(sweep.run_point(lp, c, 0, time.perf_counter() + 600))
res = sorted(p.results, key=lambda r: r.start)  # start -> _head has no await in between: same order
entries.sort()
assert len(res) == len(entries)
print(json.dumps([[r.start, r.ttft, e[1]] for r, e in zip(res, entries)]))
'''

VLLM_FUNC_CHILD = r'''
import asyncio, importlib.util, json, sys
import aiohttp
path, url, c, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
spec = importlib.util.spec_from_file_location("erf", path); erf = importlib.util.module_from_spec(spec); spec.loader.exec_module(erf)
async def main():
    conn = aiohttp.TCPConnector(limit=c, limit_per_host=c, ttl_dns_cache=300, use_dns_cache=True, keepalive_timeout=60,
                                enable_cleanup_closed=True, force_close=False, ssl=False)  # serve.py's
    session = aiohttp.ClientSession(connector=conn, trust_env=True, timeout=aiohttp.ClientTimeout(total=600))
    mk = lambda i: erf.RequestFuncInput(prompt="Write a short story about a robot learning to paint in the rain.",
                                        api_url=url + "/chat/completions", prompt_len=16, output_len=64, model="bench-model",
                                        ignore_eos=True, request_id=f"f{i}")
    await erf.async_request_openai_chat_completions(mk(-1), session)  # serve.py's initial test request
    sem = asyncio.Semaphore(c)
    async def limited(inp):
        async with sem:
            return await erf.async_request_openai_chat_completions(inp, session)
    outs = await asyncio.gather(*[asyncio.create_task(limited(mk(i))) for i in range(n)])
    await session.close()
    assert all(o.success for o in outs)
    print(json.dumps([[o.start_time, o.ttft, f"f{i}"] for i, o in enumerate(outs)]))
asyncio.run(main())
'''


def ms(xs: list[float]) -> float:
    return round(statistics.median(xs) * 1000, 3)


def split(rows: list[tuple[float, float, dict]], c: int) -> dict:
    rows = sorted(rows, key=lambda x: x[0])
    first, later = rows[:c], rows[c:]
    return {"n": len(rows), "ttft": ms([t for _, t, _ in rows]), "send": ms([s["head"] - st for st, _, s in rows]),
            "server": ms([s["first"] - s["head"] for _, _, s in rows]), "receive": ms([st + t - s["first"] for st, t, s in rows]),
            "first_wave_ttft": ms([t for _, t, _ in first]), "later_ttft": ms([t for _, t, _ in later]) if later else None}


def child_rows(cmd: list[str], url: str) -> list[tuple[float, float, dict]]:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if not out.stdout.strip():
        raise SystemExit(out.stderr[-3000:])
    by_id = {r["id"]: r for r in bc.server_records(url) if r.get("id")}
    return [(st, t, by_id[i]) for st, t, i in json.loads(out.stdout) if i in by_id]


def vllm_cli_rows(url: str, c: int, n: int, tok: str, cpu: int) -> list[tuple[float, float, dict]]:
    with tempfile.TemporaryDirectory() as d:
        cmd = [*bc.pin(cpu), *bc.vllm_cli(), "bench", "serve", "--backend", "openai-chat", "--endpoint", "/v1/chat/completions",
               "--base-url", url.rsplit("/v1", 1)[0], "--model", bc.MODEL, "--tokenizer", tok, "--dataset-name", "random",
               "--random-input-len", "16", "--random-output-len", "64", "--ignore-eos", "--num-prompts", str(n),
               "--max-concurrency", str(c), "--request-rate", "inf", "--disable-tqdm", "--save-result", "--save-detailed",
               "--result-dir", d, "--result-filename", "r.json"]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=d, timeout=900)
        path = Path(d) / "r.json"
        if not path.exists():
            raise SystemExit(out.stdout[-3000:] + out.stderr[-3000:])
        r = json.loads(path.read_text())
    by_i = {int(x["id"].rsplit("-", 1)[1]): x for x in bc.server_records(url) if x.get("id")}  # "<prefix>-<i>"
    return [(st, t, by_i[i]) for i, (st, t) in enumerate(zip(r["start_times"], r["ttfts"])) if i in by_i]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--requests", type=int, default=64, help="requests per client and concurrency (at least 4 x c)")
    ap.add_argument("--vllm-func-python", help="also drive vLLM's request function under this interpreter")
    ap.add_argument("--wave", type=int, default=0, help="also print each request of this wave (1: the first) per client: "
                    "timer start (ms after the wave's first) and send time")
    ap.add_argument("--json", help="write the splits to this file")
    a = ap.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    tok = bc.tokenizer_dir()
    import vllm.benchmarks.lib.endpoint_request_func as erf

    out = []
    with spawn("--model", bc.MODEL, "--slots", "1000", "--ttft", "0.05", "--tpot", "0.01", cpu=cpus[-1]) as url:
        for c in [int(x) for x in a.concurrency.split(",")]:
            n = max(a.requests, 4 * c)
            bc.server_records(url)
            runs = {"vllm bench serve": lambda: vllm_cli_rows(url, c, n, tok, cpus[0]),
                    "qvdoctor": lambda: child_rows([*bc.pin(cpus[0]), sys.executable, "-c", QV_CHILD, url, str(c), str(n)], url)}
            if a.vllm_func_python:
                runs["vllm func @" + a.vllm_func_python] = lambda: child_rows(
                    [*bc.pin(cpus[0]), a.vllm_func_python, "-c", VLLM_FUNC_CHILD, erf.__file__, url, str(c), str(n)], url)
            for name, fn in runs.items():
                rows = fn()
                sp = split(rows, c)
                out.append({"concurrency": c, "client": name, **sp})
                print(f"c={c:3d} {name:28s} n={sp['n']:4d} TTFT p50 {sp['ttft']:7.2f} = send {sp['send']:6.3f} + server {sp['server']:7.3f} "
                      f"+ receive {sp['receive']:6.3f} ms | first wave {sp['first_wave_ttft']}, later {sp['later_ttft']}", flush=True)
                if a.wave:
                    wave = sorted(rows, key=lambda x: x[0])[(a.wave - 1) * c:a.wave * c]
                    print("    wave %d: " % a.wave + ", ".join(f"+{(st - wave[0][0]) * 1000:.2f}/{(s['head'] - st) * 1000:.2f}"
                                                            for st, _, s in wave) + " (timer start / send, ms)", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
