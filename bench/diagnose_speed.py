"""Cold wall time of `qvdoctor diagnose` against `python -m torch.utils.collect_env` and
`vllm collect-env`, measured in one run (each a fresh process, median of N runs).

Usage: .venv/bin/python bench/diagnose_speed.py [--runs 3]
Prints a table and the ratios; the numbers go into docs/diagnose.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd: list[str]) -> tuple[float, int, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return time.perf_counter() - start, proc.returncode, (proc.stdout + proc.stderr)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    py = sys.executable
    vllm = shutil.which("vllm", path=str(Path(py).parent)) or shutil.which("vllm")
    commands = {
        "qvdoctor diagnose": [py, "-m", "qvdoctor", "diagnose", "--json"],
        "qvdoctor diagnose --probe": [py, "-m", "qvdoctor", "diagnose", "--json", "--probe"],
        "torch.utils.collect_env": [py, "-m", "torch.utils.collect_env"],
    }
    if vllm:
        commands["vllm collect-env"] = [vllm, "collect-env"]
    results = {}
    for _ in range(args.runs):  # interleave so machine noise hits every command alike
        for name, cmd in commands.items():
            seconds, code, out = timed(cmd)
            results.setdefault(name, []).append((seconds, code, out))
    base = statistics.median(s for s, _, _ in results["torch.utils.collect_env"])
    report = {}
    print(f"{'command':32} {'median s':>9} {'ratio':>7}  exit  note")
    for name, runs in results.items():
        med = statistics.median(s for s, _, _ in runs)
        code = runs[-1][1]
        last = [line for line in runs[-1][2].strip().splitlines() if line.strip()]
        note = last[-1][:70] if code else ""
        report[name] = {"median_s": round(med, 2), "ratio_to_torch_collect_env": round(med / base, 2), "exit": code}
        print(f"{name:32} {med:9.2f} {med / base:7.2f}  {code:4}  {note}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
