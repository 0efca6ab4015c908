"""bench/fetch: `qvdoctor fetch` against `aria2c -x 8 -s 8 -j 5` (what hfd.sh runs) and, on the
large repo, `hf download`, all on the Hugging Face emulator over loopback, in one run:

  * small: the 72 MB two-shard repo (2 x 36 MB + config.json), capped at 10 MB/s per connection
    (the hf-mirror case) and uncapped; each tool run --repeat times, interleaved, medians shown;
  * large: 4 x --size-mb shards + small files (tokenizer, vocab, merges, configs), capped and
    uncapped, then qvdoctor killed (SIGKILL) at 50 % of the bytes and run again (the bytes the
    second run pulls, as a fraction of the repo);
  * hash: sha256 throughput of the code `verify` and `fetch --verify-all` use, over --hash-gb
    of files on disk, as the time a full re-hash of 16 GB takes here.

Every download is checked (sha256) after each run. Times are wall clock of the whole command
(start-up, listing and transfer). Prints Markdown tables of times and ratios.

    .venv/bin/python bench/fetch.py [--cases small,large,hash] [--size-mb 1024] [--cap-mb 10] [--repeat 5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import statistics
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
    def __init__(self, big: int, size: int, blob_dir: Path, extras: bool = True):
        env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
        cmd = [PY, "-m", "fetch.emu", "hf", "--repo", REPO, "--big", str(big), "--size", str(size),
               "--blob-dir", str(blob_dir)] + ([] if extras else ["--no-extras"])
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
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
            "QVDOCTOR_CACHE": str(home / "qvdoctor"),
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


def bench_repo(name: str, emu: Emulator, tools: list[str], modes: list[tuple[str, float]], repeat: int,
               work: Path, home: Path, skip: set[tuple[str, str]]) -> dict[str, dict[str, list[float]]]:
    files = listing(emu.hub)
    total = sum(f["size"] for f in files)
    d = work / f"out-{name}"
    results: dict[str, dict[str, list[float]]] = {}
    for mode, rate in modes:
        emu.faults(rate=rate)
        for i in range(repeat):
            for tool in tools:  # interleaved: a noisy moment hits every tool alike
                if (mode, tool) in skip:
                    continue
                el = run_tool(tool, emu.hub, d, files, home)
                results.setdefault(mode, {}).setdefault(tool, []).append(el)
                print(f"{name:6s} {mode:9s} #{i + 1} {tool:12s} {el:7.2f} s  {total / el / 1e6:7.1f} MB/s", flush=True)
    shutil.rmtree(d, ignore_errors=True)
    return results


def table(title: str, results: dict[str, dict[str, list[float]]], tools: list[str]) -> None:
    peers = [t for t in tools if not t.startswith("qvdoctor")]
    print(f"\n{title}\n")
    print("| mode | " + " | ".join(f"{t} (median)" for t in tools) + " | "
          + " | ".join(f"qvdoctor vs {p}" for p in peers) + " |")
    print("|---" * (1 + len(tools) + len(peers)) + "|")
    for mode, r in results.items():
        med = {t: statistics.median(v) for t, v in r.items()}
        cells = [f"{med[t]:.2f} s" if t in med else "skipped" for t in tools]
        ratios = [f"{med[p] / med['qvdoctor']:.2f}x" if p in med and "qvdoctor" in med else "-" for p in peers]
        spread = {t: f"{min(v):.2f}-{max(v):.2f}" for t, v in r.items()}
        print(f"| {mode} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
        print("|  range | " + " | ".join(spread.get(t, "") for t in tools) + " |" + " |" * len(peers))


def bench_hash(work: Path, gb: float) -> None:
    """sha256 over files on disk with the function verify and --verify-all use."""
    sys.path.insert(0, str(ROOT))
    from qvdoctor.fetch.manifest import sha256_file

    d = work / "hash"
    d.mkdir(parents=True, exist_ok=True)
    per = 1 << 30
    n = max(1, int(gb * (1 << 30)) // per)
    paths = []
    for i in range(n):
        p = d / f"blob{i}.bin"
        if not p.exists() or p.stat().st_size != per:
            with open(p, "wb") as f:
                block = os.urandom(8 << 20)
                for _ in range(per // len(block)):
                    f.write(block)
        paths.append(p)
    # Cold: drop the files from the page cache first (posix_fadvise; as a re-hash of 16 GB on a
    # machine whose cache holds other things would read them).
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    t0 = time.monotonic()
    for p in paths:
        sha256_file(p)
    cold = time.monotonic() - t0
    t0 = time.monotonic()
    for p in paths:
        sha256_file(p)
    warm = time.monotonic() - t0
    total = n * per
    print(f"\nhash: {n} GiB on disk; sha256 cold {total / cold / 1e6:.0f} MB/s ({cold:.1f} s), "
          f"page-cached {total / warm / 1e6:.0f} MB/s ({warm:.1f} s)")
    print(f"full re-hash of 16 GB here: {16e9 / (total / cold):.0f} s cold, {16e9 / (total / warm):.0f} s from the page cache")
    shutil.rmtree(d, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default="small,large,hash")
    ap.add_argument("--size-mb", type=int, default=1024, help="shard size of the large repo")
    ap.add_argument("--cap-mb", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=5, help="runs per tool on the small repo")
    ap.add_argument("--repeat-large", type=int, default=1)
    ap.add_argument("--hash-gb", type=float, default=4.0)
    ap.add_argument("--work", default="/tmp/qvdoctor-bench-fetch")
    ap.add_argument("--skip-hf-capped", action="store_true", help="hf download at the cap takes ~2 min per GB x4")
    ap.add_argument("--large-tools", default="qvdoctor,aria2c,hf download")
    ap.add_argument("--small-tools", default="qvdoctor,aria2c", help="qvdoctor-xN runs with --connections N")
    ap.add_argument("--no-resume", action="store_true")
    ap.add_argument("--modes", default="capped,uncapped")
    args = ap.parse_args()
    cases = args.cases.split(",")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"
    home.mkdir(exist_ok=True)
    modes = [(m, r) for m, r in (("capped", args.cap_mb * 1e6), ("uncapped", 0.0)) if m in args.modes.split(",")]
    print(f"{os.cpu_count()} cores; cap {args.cap_mb:g} MB/s per connection; "
          f"load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    if "small" in cases:
        emu = Emulator(2, 36_000_000, work / "blobs-small", extras=False)
        try:
            total = sum(f["size"] for f in listing(emu.hub))
            tools = args.small_tools.split(",")
            res = bench_repo("small", emu, tools, modes, args.repeat, work, home, set())
        finally:
            emu.stop()
        table(f"small repo: 2 shards + config.json, {total / 1e6:.1f} MB; {args.repeat} runs each", res, tools)
    if "large" in cases:
        emu = Emulator(4, args.size_mb << 20, work / "blobs")
        tools = args.large_tools.split(",")
        skip = {("capped", "hf download")} if args.skip_hf_capped else set()
        try:
            files = listing(emu.hub)
            total = sum(f["size"] for f in files)
            res = bench_repo("large", emu, tools, modes, args.repeat_large, work, home, skip)
            resume = None
            if not args.no_resume:
                emu.faults(rate=args.cap_mb * 1e6)
                resume = resume_after_kill(emu, work / "out-resume", files, home, total)
                shutil.rmtree(work / "out-resume", ignore_errors=True)
        finally:
            emu.stop()
        table(f"large repo: {len(files)} files, {total / 1e9:.2f} GB", res, tools)
        if resume:
            print(f"\nresume: killed at {resume[0]:.1%} of the bytes; the resumed run pulled {resume[1]:.1%} "
                  f"(budget 51% + one chunk = {0.51 + (8 << 20) / total:.1%})")
    if "hash" in cases:
        bench_hash(work, args.hash_gb)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
