"""bench/fetch: `qvdoctor fetch` vs `hf download` and `aria2c -x 8 -s 8` (what hfd.sh runs), on
the Hugging Face emulator over loopback, in one run:

  * capped: 10 MB/s per connection (the hf-mirror case) and uncapped;
  * resume: qvdoctor killed (SIGKILL) at 50 % of the bytes, then run again; the bytes the
    second run pulls from the server, as a fraction of the repo.

Repo: 4 x 1 GB shards + small files (tokenizer, vocab, merges, configs). Every result is
checked (sha256) after each run. Prints a Markdown table of times and ratios.

    .venv/bin/python bench/fetch.py [--size-mb 1024] [--cap-mb 10] [--skip-hf-capped]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
REPO = "Bench/Model"


def http_json(url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


class Emulator:
    def __init__(self, size: int, blob_dir: Path):
        env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
        self.proc = subprocess.Popen([PY, "-m", "fetch.emu", "hf", "--repo", REPO, "--size", str(size),
                                      "--blob-dir", str(blob_dir)], env=env, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        assert line and line[0] == "READY", line
        self.hub, self.cdn = line[1], line[2]

    def faults(self, **kw) -> None:
        http_json(f"{self.hub}/_emu/faults", kw)

    def reset(self) -> None:
        http_json(f"{self.hub}/_emu/stats", {})
        http_json(f"{self.cdn}/_emu/stats", {})

    def sent(self) -> int:
        return http_json(f"{self.hub}/_emu/stats")["body_bytes"] + http_json(f"{self.cdn}/_emu/stats")["body_bytes"]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)


def listing(hub: str) -> list[dict]:
    return [e for e in http_json(f"{hub}/api/models/{REPO}/tree/main?recursive=true") if e["type"] == "file"]


def check(d: Path, files: list[dict]) -> None:
    for f in files:
        p = d / f["path"]
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for b in iter(lambda: fh.read(8 << 20), b""):
                h.update(b)
        want = f["lfs"]["oid"] if "lfs" in f else None
        if want:
            assert h.hexdigest() == want, f"{p}: wrong sha256"
        else:
            assert p.stat().st_size == f["size"], f"{p}: wrong size"


def env_for(hub: str, home: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_ENDPOINT": hub, "HF_HOME": str(home / "hf"),
            "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_UPDATE_CHECK": "1",
            "QVDOCTOR_HF_MIRROR_ENDPOINT": "http://127.0.0.1:9", "MODELSCOPE_ENDPOINT": "http://127.0.0.1:9"}


def run_tool(tool: str, hub: str, d: Path, files: list[dict], home: Path) -> float:
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    env = env_for(hub, home)
    if tool.startswith("qvdoctor"):  # "qvdoctor" (its defaults) or "qvdoctor-xN" (--connections N)
        cmd = [PY, "-m", "qvdoctor", "fetch", REPO, "--source", "hf", "--local-dir", str(d)]
        if tool.startswith("qvdoctor-x"):
            cmd += ["--connections", tool.removeprefix("qvdoctor-x")]
    elif tool == "hf download":
        cmd = [str(Path(PY).parent / "hf"), "download", REPO, "--local-dir", str(d)]
    else:  # aria2c as hfd.sh drives it
        urls = home / "aria2c_urls.txt"
        urls.write_text("".join(f"{hub}/{REPO}/resolve/main/{f['path']}\n dir={d}\n out={f['path']}\n" for f in files))
        cmd = ["aria2c", "--console-log-level=error", "--file-allocation=none", "-x", "8", "-j", "5", "-s", "8",
               "-k", "1M", "-c", "-i", str(urls)]
    t0 = time.monotonic()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    el = time.monotonic() - t0
    if r.returncode != 0:
        raise SystemExit(f"{tool} failed: {r.stderr[-2000:]}{r.stdout[-2000:]}")
    check(d, files)
    return el


def resume_after_kill(emu: Emulator, d: Path, files: list[dict], home: Path, total: int) -> tuple[float, float]:
    shutil.rmtree(d, ignore_errors=True)
    env = env_for(emu.hub, home)
    emu.reset()
    proc = subprocess.Popen([PY, "-m", "qvdoctor", "fetch", REPO, "--source", "hf", "--local-dir", str(d)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while emu.sent() < total // 2:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first = emu.sent()
    emu.reset()
    r = subprocess.run([PY, "-m", "qvdoctor", "fetch", REPO, "--source", "hf", "--local-dir", str(d)], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    check(d, files)
    return first / total, emu.sent() / total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--cap-mb", type=float, default=10.0)
    ap.add_argument("--work", default="/tmp/qvdoctor-bench-fetch")
    ap.add_argument("--skip-hf-capped", action="store_true", help="hf download at the cap takes ~2 min per GB x4")
    ap.add_argument("--modes", default="uncapped,capped")
    ap.add_argument("--tools", default="qvdoctor,qvdoctor-x8,aria2c,hf download")
    ap.add_argument("--no-resume", action="store_true")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"
    home.mkdir(exist_ok=True)
    emu = Emulator(args.size_mb << 20, work / "blobs")
    try:
        files = listing(emu.hub)
        total = sum(f["size"] for f in files)
        d = work / "out"
        results: dict[str, dict[str, float]] = {}
        killed_at = resumed = None
        for mode, rate in (("uncapped", 0), ("capped", args.cap_mb * 1e6)):
            if mode not in args.modes.split(","):
                continue
            emu.faults(rate=rate)
            for tool in args.tools.split(","):
                if tool == "hf download" and mode == "capped" and args.skip_hf_capped:
                    continue
                el = run_tool(tool, emu.hub, d, files, home)
                results.setdefault(mode, {})[tool] = el
                print(f"{mode:9s} {tool:12s} {el:7.2f} s  {total / el / 1e6:7.1f} MB/s", flush=True)
        if not args.no_resume:
            emu.faults(rate=args.cap_mb * 1e6)
            killed_at, resumed = resume_after_kill(emu, d, files, home, total)
            chunk = 8 << 20
            print(f"resume: killed at {killed_at:.1%} of the bytes; the resumed run pulled {resumed:.1%} "
                  f"(budget 51% + one chunk = {0.51 + chunk / total:.1%})", flush=True)
        shutil.rmtree(d, ignore_errors=True)
    finally:
        emu.stop()
    print()
    print(f"repo: {len(files)} files, {total / 1e9:.2f} GB; cap {args.cap_mb:g} MB/s per connection; {os.cpu_count()} cores")
    print()
    print("| mode | qvdoctor fetch (defaults: 8 conns/file, widened to 10 when throttled) | qvdoctor --connections 8 | aria2c -x 8 -s 8 | hf download "
          "| qvdoctor vs aria2c | qvdoctor -x8 vs aria2c | qvdoctor vs hf download |")
    print("|---|---|---|---|---|---|---|---|")
    nan = float("nan")
    for mode, r in results.items():
        q, q8, a, h = r.get("qvdoctor", nan), r.get("qvdoctor-x8", nan), r.get("aria2c", nan), r.get("hf download")
        hs = f"{h:.1f} s" if h else "skipped"
        hr = f"{h / q:.2f}x" if h else "-"
        print(f"| {mode} | {q:.1f} s | {q8:.1f} s | {a:.1f} s | {hs} | {a / q:.2f}x | {a / q8:.2f}x | {hr} |")
    if resumed is not None:
        print(f"| resume after kill -9 at {killed_at:.0%} | second run pulled {resumed:.1%} of the repo | | | | |")


if __name__ == "__main__":
    main()
