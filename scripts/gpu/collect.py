"""Copy what device calls brought back into ``tests/logs/real/gpu/``: every start's full log, the
host's facts and report, and ``index.json`` (per start: settings, exit code, vLLM's numbers).

    python scripts/gpu/collect.py DEST RESULT_DIR... [--facts FILE] [--host FILE]

Each RESULT_DIR holds ``GRID-results.json`` + ``GRID-logs.tar.gz`` (grid.py); a later directory's
run of the same name replaces an earlier one (a start repeated after a broken call)."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tarfile
import tempfile
from pathlib import Path

NUM = {
    "available_kv_gib": r"Available KV cache memory: ([\d.]+) GiB",
    "kv_cache_tokens": r"GPU KV cache size: ([\d,]+) tokens",
    "estimated_max_model_len": r"estimated maximum model length is (\d+)",
    "weights_gib": r"Model loading took ([\d.]+) GiB",
    "torch_peak_increase_gib": r"torch peak memory increase: ([\d.]+)GiB",
    "non_torch_gib": r"non-torch forward increase memory: ([\d.]+)GiB",
    "non_kv_gib": r"Total non KV cache memory: ([\d.]+)GiB",
    "requested_gib": r"Requested memory: [\d.]+ \(util\), ([\d.]+) GiB",
    "cudagraph_pool_gib": r"Graph capturing finished in \d+ secs, took ([\d.]+) GiB",
    "cudagraph_estimate_gib": r"CUDA graph pool memory: [\d.]+ GiB \(actual\), ([\d.]+) GiB \(estimated\)",
}


def outcome(text: str) -> str:
    if "No available memory for the cache blocks" in text:
        return "no-kv-memory"
    if "estimated maximum model length is" in text:
        return "max-model-len-too-large"
    if "World size (" in text and "larger than the number of available GPUs" in text:
        return "tp-larger-than-gpus"
    if "CUDA out of memory" in text and "execute_mm_encoder" in text:
        return "encoder-oom"
    return "started"


def summarise(run: dict, text: str) -> dict:
    out = {k: run[k] for k in ("name", "what", "command", "env", "llm", "requests", "exit_code", "seconds", "timed_out")}
    v1 = str(run.get("env", {}).get("VLLM_USE_V2_MODEL_RUNNER", "")) == "0"
    out["runner"] = "v1" if v1 else "v2"  # vLLM 0.26's default for Qwen2.5-VL is V2
    out["runner_logged"] = "Using V2 Model Runner" in text  # False also when the engine never started
    out["outcome"] = outcome(text)
    for key, pat in NUM.items():
        m = re.search(pat, text)
        if m:
            v = m.group(1).replace(",", "")
            out[key] = float(v) if "." in v else int(v)
    out["phases"] = run["parsed"].get("phases", [])
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("dest")
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--facts")
    ap.add_argument("--host")
    a = ap.parse_args()
    dest = Path(a.dest)
    dest.mkdir(parents=True, exist_ok=True)
    runs: dict[str, dict] = {}
    for d in map(Path, a.dirs):
        for res in sorted(d.glob("*-results.json")):
            grid = res.name[: -len("-results.json")]
            data = json.loads(res.read_text())
            with tempfile.TemporaryDirectory() as tmp, tarfile.open(d / f"{grid}-logs.tar.gz") as tf:
                tf.extractall(tmp)
                for run in data["runs"]:
                    log = Path(tmp) / grid / f"{run['name']}.log"
                    text = log.read_text(errors="replace")
                    if run["name"] in runs and run["seconds"] < 1:  # a start that never ran (broken call)
                        continue
                    shutil.copy(log, dest / f"{run['name']}.log")
                    runs[run["name"]] = {**summarise(run, text), "grid": grid, "lines": text.count("\n")}
    if a.facts:
        shutil.copy(a.facts, dest / "facts-h100-vllm026.json")
    if a.host:
        shutil.copy(a.host, dest / "host-h100-vllm026.json")
    index = {"recorded_on": "NVIDIA H100 80GB HBM3, driver 580.159.04, Python 3.12.3, torch 2.11.0+cu130, vLLM 0.26.0 (pruned wheel)",
             "model": "published Qwen2.5-VL-7B-Instruct config.json + preprocessor_config.json, load_format=dummy, qvdoctor's tiny tokenizer",
             "facts": "facts-h100-vllm026.json", "runs": dict(sorted(runs.items()))}
    (dest / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    print(f"{len(runs)} runs -> {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
