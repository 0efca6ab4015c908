"""Run a grid of vLLM engine starts on the GPU host, one process each under a deadline, and collect
vLLM's log lines and numbers.

    python grid.py GRID_NAME --out DIR [--budget SECONDS] [--only NAME,NAME]

Grids are in ``grids.json`` beside this file: ``{"GRID": [{"name", "env", "llm", "requests",
"timeout"}, ...]}``. Every start runs ``vllm_start.py`` with ``VLLM_LOGGING_LEVEL=DEBUG`` (the
"Memory profiling takes" breakdown is DEBUG-only), ``VLLM_WORKER_MULTIPROC_METHOD=spawn`` and
``VLLM_USE_FLASHINFER_SAMPLER=0`` plus the entry's ``env``. A start is skipped when the budget
left is smaller than its timeout. After each start ``DIR/GRID-logs.tar.gz`` (every log) and
``DIR/GRID-results.json`` (per start: command, env, exit code, seconds, the parsed vLLM lines and
the ``QVDOCTOR_RESULT`` phases) are rewritten, so a run cut short still returns what it did.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASE_ENV = {
    "VLLM_LOGGING_LEVEL": "DEBUG",
    "VLLM_WORKER_MULTIPROC_METHOD": "spawn",
    "VLLM_USE_FLASHINFER_SAMPLER": "0",
    "PYTHONUNBUFFERED": "1",
}
#: vLLM lines worth having in the results next to the full log
PATTERNS = {
    "runner_v2": r"Using V2 Model Runner",
    "model_loading": r"Model loading took ([\d.]+) GiB memory",
    "memory_profiling": r"Memory profiling takes .*",
    "init_snapshot": r"worker init memory snapshot: .*",
    "requested_memory": r"worker requested memory: ([\d.]+)GiB",
    "initial_free": r"Initial free memory: .*",
    "free_after_profiling": r"Free memory after profiling: .*",
    "available_kv": r"Available KV cache memory: ([\d.]+) GiB",
    "kv_cache_size": r"GPU KV cache size: ([\d,]+) tokens",
    "max_concurrency": r"Maximum concurrency for ([\d,]+) tokens per request: ([\d.]+)x",
    "estimated_max_len": r"estimated maximum model length is (\d+)",
    "no_kv_memory": r"No available memory for the cache blocks.*",
    "cudagraph_profile": r"(Estimated .*CUDA graph memory.*|Profiling CUDA graph memory.*|CUDA graph memory profiling is enabled.*)",
    "graph_capture": r"Graph capturing finished in .*",
    "encoder_cache": r"Encoder cache will be initialized with a budget of .*",
    "oom": r"(torch\.OutOfMemoryError|CUDA out of memory).*",
    "tp_error": r".*(larger than the number of available|World size|tensor_parallel_size).*(GPU|device).*",
    "kv_cache_config": r"kv_cache_memory_bytes.*suggest.*|--kv-cache-memory=\d+.*",
    "max_num_batched_tokens": r"max_num_batched_tokens=(\d+)",
    "max_num_seqs": r"max_num_seqs=(\d+)",
}


def parse(text: str) -> dict:
    found: dict = {}
    for key, pat in PATTERNS.items():
        hits = [m.group(0) for m in re.finditer(pat, text)]
        if hits:
            found[key] = hits[:3]
    phases = []
    for line in text.splitlines():
        if line.startswith("QVDOCTOR_RESULT "):
            try:
                phases.append(json.loads(line.split(" ", 1)[1]))
            except json.JSONDecodeError:
                pass
    found["phases"] = phases
    return found


def gpu_used() -> int | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        return int(pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(0)).used)
    except Exception:  # noqa: BLE001
        return None


def wait_gpu_idle(limit_s: float = 20.0, idle_bytes: int = 2 << 30) -> None:
    t = time.monotonic()
    while time.monotonic() - t < limit_s:
        u = gpu_used()
        if u is None or u < idle_bytes:
            return
        time.sleep(0.5)


def run_one(entry: dict, model: str, logdir: Path) -> dict:
    env = {**os.environ, **BASE_ENV, **{k: str(v) for k, v in entry.get("env", {}).items()}}
    cfg = {"model": model, "llm": entry.get("llm", {}), "requests": entry.get("requests", [])}
    cmd = [sys.executable, str(HERE / "vllm_start.py"), json.dumps(cfg)]
    log = logdir / f"{entry['name']}.log"
    timeout = float(entry.get("timeout", 150))
    t0 = time.monotonic()
    with open(log, "w") as fh:
        p = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            rc = p.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            rc = p.returncode
    try:  # leftovers of the engine's process group (EngineCore children)
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    wait_gpu_idle()
    text = log.read_text(errors="replace")
    return {"name": entry["name"], "command": " ".join(f"{k}={v}" for k, v in {**BASE_ENV, **entry.get("env", {})}.items())
            + f" python3 scripts/gpu/vllm_start.py '{json.dumps(cfg)}'", "what": entry.get("what", ""), "env": entry.get("env", {}), "llm": cfg["llm"],
            "requests": cfg["requests"], "exit_code": rc, "timed_out": timed_out,
            "seconds": round(time.monotonic() - t0, 1), "lines": text.count("\n"), "parsed": parse(text)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("grid")
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default=str(HERE.parent.parent / "model"))
    ap.add_argument("--budget", type=float, default=540.0)
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    t_start = time.monotonic()
    entries = json.loads((HERE / "grids.json").read_text())[a.grid]
    if a.only:
        keep = a.only.split(",")
        entries = [e for e in entries if e["name"] in keep]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    logdir = Path("/tmp/qv-grid") / a.grid
    logdir.mkdir(parents=True, exist_ok=True)
    results = {"grid": a.grid, "model": a.model, "runs": [], "skipped": []}
    for e in entries:
        left = a.budget - (time.monotonic() - t_start)
        if left < float(e.get("timeout", 150)) * float(e.get("min_fraction", 0.6)):
            results["skipped"].append({"name": e["name"], "why": f"{left:.0f} s of budget left"})
            print(f"[grid] skip {e['name']}: {left:.0f} s left", flush=True)
            continue
        e = {**e, "timeout": min(float(e.get("timeout", 150)), left - 5)}
        print(f"[grid] start {e['name']} (timeout {e['timeout']:.0f} s)", flush=True)
        r = run_one(e, a.model, logdir)
        p = r["parsed"]
        print(f"[grid] {r['name']}: rc {r['exit_code']} in {r['seconds']} s; "
              + "; ".join(f"{k}={v[0][:120]}" for k, v in p.items() if k in ("available_kv", "kv_cache_size", "estimated_max_len", "no_kv_memory", "oom", "runner_v2") and v),
              flush=True)
        results["runs"].append(r)
        (out / f"{a.grid}-results.json").write_text(json.dumps(results, indent=1))
        with tarfile.open(out / f"{a.grid}-logs.tar.gz", "w:gz") as tf:
            for f in sorted(logdir.glob("*.log")):
                tf.add(f, arcname=f"{a.grid}/{f.name}")
    (out / f"{a.grid}-results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
