"""Run the Hugging Face emulator as its own process (for benchmarks):

    PYTHONPATH=tests python -m fetch.emu hf --repo Bench/Model --big 4 --size 1073741824 --blob-dir /tmp/b

Prints ``READY <hub url>`` once serving; faults and counters via /_emu/faults and /_emu/stats."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from .hf import HubServer
from .repo import big_blob, build_repo


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m fetch.emu")
    ap.add_argument("kind", choices=["hf"])
    ap.add_argument("--repo", default="Bench/Model")
    ap.add_argument("--big", type=int, default=4, help="number of large files")
    ap.add_argument("--size", type=int, default=1 << 30, help="bytes per large file")
    ap.add_argument("--blob-dir", required=True)
    ap.add_argument("--no-extras", action="store_true", help="only the shards and config.json (no tokenizer, vocab...)")
    args = ap.parse_args()
    blobs = Path(args.blob_dir)
    contents: dict = {}
    for i in range(args.big):
        name = f"model-{i + 1:05d}-of-{args.big:05d}.safetensors"
        contents[name] = big_blob(blobs, name, args.size, seed=1000 + i)
    contents["config.json"] = b'{"model_type": "qwen2_5_vl"}\n'
    if not args.no_extras:
        contents["generation_config.json"] = b'{"do_sample": false}\n'
        contents["model.safetensors.index.json"] = 60_000
        contents["tokenizer.json"] = big_blob(blobs, "tokenizer.json", 7_000_000, seed=7)
        contents["vocab.json"] = 2_700_000
        contents["merges.txt"] = 1_600_000
    hub = HubServer([build_repo(args.repo, contents)]).start()
    print(f"READY {hub.url} {hub.cdn.url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    hub.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
