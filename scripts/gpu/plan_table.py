"""qvdoctor plan's prediction for every recorded GPU start, next to vLLM's own numbers.

    python scripts/gpu/plan_table.py [tests/logs/real/gpu]      # prints the markdown table of docs/plan.md

Each start of ``index.json`` is planned from the facts recorded on that host in the same session
(``facts-h100-vllm026.json``), vLLM 0.26.0, and the start's own settings (utilization,
max_model_len, enforce_eager, runner from its ``VLLM_USE_V2_MODEL_RUNNER``, the offline ``LLM``
class's batching defaults, 16-bit KV cache). ``tests/plan/test_plan_gpu_recorded.py`` asserts the
same comparisons."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
GPU_LOGS = ROOT / "tests" / "logs" / "real" / "gpu"
MODEL = ROOT / "tests" / "plan" / "fixtures" / "qwen2.5-vl-7b-instruct"
GIB = 1024**3


def load_index(folder: Path = GPU_LOGS) -> dict[str, Any]:
    return json.loads((folder / "index.json").read_text())


def predict(run: dict[str, Any], folder: Path = GPU_LOGS) -> dict[str, Any]:
    """Plan numbers for one recorded start: available KV bytes, KV tokens, vLLM's estimated
    maximum length at that memory, the largest max_model_len that fits, and the outcome."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from qvdoctor.plan import kv as kvmath
    from qvdoctor.plan import plan_for
    from qvdoctor.plan.versions import VllmBehaviour

    llm = run["llm"]
    plan = plan_for(str(MODEL), str(folder / load_index(folder)["facts"]), vllm_version="0.26.0",
                    gpu_memory_utilization=llm["gpu_memory_utilization"], max_model_len=llm["max_model_len"],
                    enforce_eager=bool(llm.get("enforce_eager")), tp=llm.get("tensor_parallel_size"),
                    env=run.get("env") or {}, server=False, max_num_seqs=1024, max_num_batched_tokens=16384,
                    kv_cache_dtype="auto")
    mml = llm["max_model_len"]
    layout = kvmath.KvLayout(plan.model.num_hidden_layers, max(1, plan.model.num_key_value_heads // plan.tp),
                             plan.model.head_dim, 2, plan.block_size)
    at_this_memory = kvmath.capacity(layout, plan.available_kv_bytes, mml, VllmBehaviour("0.26.0"), upper_len=mml)
    if plan.available_kv_bytes <= 0 or plan.num_blocks == 0:
        outcome = "no-kv-memory"
    elif not plan.fits:
        outcome = "max-model-len-too-large"
    else:
        outcome = "started"
    return {"plan": plan, "runner": plan.runner, "available_kv_bytes": min(r.available_kv_bytes for r in plan.ranks),
            "kv_cache_tokens": plan.kv_capacity_tokens, "estimated_max_model_len": at_this_memory.max_model_len_fit,
            "largest_fit": plan.max_model_len_fit, "outcome": outcome,
            "encoder_fails": bool(plan.encoder and plan.encoder.fails)}


def rel(a: float, b: float) -> float:
    return (a - b) / b * 100 if b else 0.0


def table(folder: Path = GPU_LOGS) -> str:
    idx = load_index(folder)
    rows = ["| start | runner | util | max_model_len | eager | vLLM: Available KV cache memory | plan | vLLM: GPU KV cache size | plan (Δ) | vLLM: estimated maximum model length | plan (Δ) | plan: largest max_model_len | vLLM outcome | plan outcome |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, run in idx["runs"].items():
        llm = run["llm"]
        if llm.get("tensor_parallel_size", 1) > 1:
            rows.append(f"| `{name}` | {run['runner'].upper()} | {llm['gpu_memory_utilization']} | {llm['max_model_len']:,} | "
                        f"{'yes' if llm.get('enforce_eager') else 'no'} | – | – | – | – | – | – | – | {run['outcome']} | (triage: `parallel`; plan assumes 2 GPUs) |")
            continue
        p = predict(run, folder)
        kv = run.get("available_kv_gib")
        if kv is None and run.get("non_kv_gib") is not None and run.get("requested_gib") is not None:
            kv = run["requested_gib"] - run["non_kv_gib"]  # requested - total non-KV (DEBUG line), when vLLM stops before printing it
        tok = run.get("kv_cache_tokens")
        est = run.get("estimated_max_model_len")
        kv_s = f"{kv:.2f} GiB" if kv is not None else "–"
        pkv = f"{p['available_kv_bytes'] / GIB:.2f} GiB"
        tok_s = f"{tok:,}" if tok else "–"
        ptok = f"{p['kv_cache_tokens']:,} ({rel(p['kv_cache_tokens'], tok):+.2f} %)" if tok else (f"{p['kv_cache_tokens']:,}" if p["available_kv_bytes"] > 0 else "–")
        est_s = f"{est:,}" if est else "–"
        pest = (f"{p['estimated_max_model_len']:,} ({rel(p['estimated_max_model_len'], est):+.2f} %)" if est
                else "–")
        outcome = run["outcome"] + (" (started; the 1st long video then OOMed in the encoder)" if run["outcome"] == "encoder-oom" else "")
        pout = p["outcome"] + ("; encoder check warns" if p["encoder_fails"] else "")
        rows.append(f"| `{name}` | {p['runner'].upper()} | {llm['gpu_memory_utilization']} | {llm['max_model_len']:,} | "
                    f"{'yes' if llm.get('enforce_eager') else 'no'} | {kv_s} | {pkv} | {tok_s} | {ptok} | {est_s} | {pest} | {p['largest_fit']:,} | {outcome} | {pout} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(table(Path(sys.argv[1]) if len(sys.argv) > 1 else GPU_LOGS), end="")
