"""``qvdoctor plan --sweep KEY=V1,V2,...``: the per-GPU memory breakdown (weights, activation,
CUDA graphs, non-torch, KV cache) of the plan across one setting's values, and the KV demand of
N concurrent requests (text + visual tokens) against the KV capacity, with the crossing marked.

Keys: ``concurrency`` (= max_num_seqs; the KV demand of that many requests), ``max_model_len``,
``max_pixels``, ``frames`` (a video of that many frames at vLLM's 2 fps sampling, of
``--video-size``, default 1280x720), ``dtype``, ``kv_cache_dtype``. A request holds its visual
prompt tokens (when a video is planned) plus :data:`TEXT_TOKENS` of text and answer."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from dataclasses import replace
from typing import Any

from qvdoctor.errors import QvError
from qvdoctor.plan.terms import GIB

KEYS = ("concurrency", "max_model_len", "max_pixels", "frames", "dtype", "kv_cache_dtype")
INT_KEYS = ("concurrency", "max_model_len", "max_pixels", "frames")
TEXT_TOKENS = 512  # prompt text + answer of one request, on top of its visual tokens
COLUMNS = ("weights", "activation", "graphs", "non_torch", "kv_cache")
SAMPLER_FPS = 2.0  # vLLM's Qwen2-VL video loader samples 2 frames a second


def parse_sweep(text: str) -> tuple[str, list[Any]]:
    key, sep, vals = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or key not in KEYS or not vals.strip():
        raise QvError(f"--sweep {text!r} is not KEY=V1,V2,...", f"keys: {', '.join(KEYS)}; e.g. --sweep concurrency=1,8,32,128")
    out: list[Any] = []
    for v in vals.split(","):
        v = v.strip()
        if key in INT_KEYS:
            try:
                n = int(v)
            except ValueError:
                raise QvError(f"--sweep {key}: {v!r} is not a whole number") from None
            if n < 1:
                raise QvError(f"--sweep {key}: {n} must be at least 1")
            out.append(n)
        else:
            out.append(v)
    return key, out


def _settings_for(base: Any, key: str, value: Any, video_size: tuple[int, int]) -> Any:
    from qvdoctor.plan import VideoSpec

    if key == "concurrency":
        return replace(base, max_num_seqs=value)
    if key == "frames":
        w, h = base.video.width if base.video else video_size[0], base.video.height if base.video else video_size[1]
        return replace(base, video=VideoSpec(duration=value / SAMPLER_FPS, width=w, height=h, fps=30.0))
    return replace(base, **{key: value})


def _term(rank: Any, prefix: str) -> int:
    return sum(t.bytes for t in rank.terms if t.name.startswith(prefix))


def row_for(plan: Any, key: str, value: Any) -> dict[str, Any]:
    r = plan.ranks[0]
    visual = (plan.video_tokens + 2) if plan.video_tokens else 0
    per_req = visual + TEXT_TOKENS
    per_req_blocks = math.ceil(per_req / plan.block_size)
    conc = value if key == "concurrency" else plan.max_num_seqs
    demand = conc * per_req_blocks * plan.block_size
    return {
        key: value,
        "weights": _term(r, "weights"), "activation": _term(r, "peak activation"), "graphs": _term(r, "CUDA graphs"),
        "non_torch": _term(r, "non-torch"), "kv_cache": max(0, plan.num_blocks * plan.bytes_per_block),
        "kv_capacity_tokens": plan.kv_capacity_tokens, "visual_tokens": plan.video_tokens or 0,
        "tokens_per_request": per_req, "concurrency": conc, "kv_demand_tokens": demand,
        "kv_fill_concurrency": plan.num_blocks // per_req_blocks if per_req_blocks else None,
        "fits": plan.fits and demand <= plan.kv_capacity_tokens,
        "max_model_len": plan.max_model_len, "max_num_seqs": plan.max_num_seqs, "kv_cache_dtype": plan.kv_cache_dtype,
        "dtype": plan.dtype,
    }


def sweep_rows(info: Any, facts: Any, base: Any, key: str, values: list[Any], video_size: tuple[int, int] = (1280, 720)) -> list[dict[str, Any]]:
    from qvdoctor.plan import make_plan

    rows = []
    for v in values:
        plan = make_plan(info, facts, _settings_for(base, key, v, video_size))
        rows.append(row_for(plan, key, v))
    return rows


def to_csv(rows: list[dict[str, Any]], key: str) -> str:
    buf = io.StringIO()
    fields = [key] + [c + "_bytes" for c in COLUMNS] + ["kv_capacity_tokens", "visual_tokens", "tokens_per_request",
                                                         "concurrency", "kv_demand_tokens", "kv_fill_concurrency", "fits"]
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(fields)
    for r in rows:
        w.writerow([r[key]] + [r[c] for c in COLUMNS] + [r[f] for f in fields[1 + len(COLUMNS):]])
    return buf.getvalue()


def print_table(rows: list[dict[str, Any]], key: str) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"memory per GPU across {key}")
    for h in (key, "weights", "activation", "graphs", "non-torch", "KV cache", "KV tokens", "tokens/req", "KV demand", "KV fills at", "fits"):
        t.add_column(h, justify="right")
    for r in rows:
        t.add_row(str(r[key]), *(f"{r[c] / GIB:.2f} GiB" for c in COLUMNS), f"{r['kv_capacity_tokens']:,}",
                  f"{r['tokens_per_request']:,}", f"{r['kv_demand_tokens']:,} ({r['concurrency']} req)",
                  f"{r['kv_fill_concurrency']} req", "yes" if r["fits"] else "NO")
    Console(width=None if sys.stdout.isatty() else 200).print(t)


def plot(rows: list[dict[str, Any]], key: str, path: str) -> None:
    """Stacked bars of the memory breakdown; beside them KV demand against KV capacity."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise QvError("--plot needs matplotlib", "pip install matplotlib") from None
    labels = [str(r[key]) for r in rows]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
    bottom = [0.0] * len(rows)
    for c in COLUMNS:
        vals = [r[c] / GIB for r in rows]
        ax.bar(labels, vals, bottom=bottom, label=c.replace("_", "-"))
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_xlabel(key)
    ax.set_ylabel("GiB per GPU")
    ax.set_title("memory breakdown")
    ax.legend(fontsize=8)
    if key == "concurrency":
        xs = [r["concurrency"] for r in rows]
        ax2.plot(xs, [r["kv_demand_tokens"] for r in rows], "o-", label="KV demand (text + visual tokens)")
        cap = rows[0]["kv_capacity_tokens"]
        ax2.axhline(cap, color="black", label=f"KV capacity {cap:,} tokens")
        fill = rows[0]["kv_fill_concurrency"]
        if fill is not None:
            ax2.axvline(fill, color="red", ls="--", label=f"KV full at {fill} requests")
        ax2.set_xlabel("concurrent requests")
    else:
        ax2.plot(labels, [r["kv_demand_tokens"] for r in rows], "o-", label="KV demand at max_num_seqs")
        ax2.plot(labels, [r["kv_capacity_tokens"] for r in rows], "s--", color="black", label="KV capacity")
        for r, lab in zip(rows, labels):
            if r["kv_demand_tokens"] > r["kv_capacity_tokens"]:
                ax2.annotate("demand > capacity", (lab, r["kv_demand_tokens"]), fontsize=7, color="red")
        ax2.set_xlabel(key)
    ax2.set_ylabel("KV cache tokens")
    ax2.set_title("KV demand vs capacity")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=90)
    except OSError as exc:
        raise QvError(f"cannot write the plot {path}: {exc}") from None
    finally:
        plt.close(fig)


def run_sweep(o: dict[str, Any]) -> int:
    """``plan --sweep``: the options of ``plan`` plus ``sweep`` and ``plot``."""
    from qvdoctor.commands.plan import settings_from_options
    from qvdoctor.model.info import load_model_info
    from qvdoctor.plan.video_probe import parse_size

    key, values = parse_sweep(o["sweep"])
    if key == "concurrency" and o.get("max_num_seqs") is not None:
        raise QvError("--sweep concurrency sets max_num_seqs; leave --max-num-seqs out")
    base = settings_from_options(o)
    info = load_model_info(o["model"])
    facts = None
    if base.device == "cuda" or o.get("facts") is not None:
        from qvdoctor.facts.load import load_or_gather

        facts = load_or_gather(o.get("facts"), probe=False)
    size = parse_size(o["video_size"]) if o.get("video_size") else (1280, 720)
    rows = sweep_rows(info, facts, base, key, values, size)
    if o.get("plot"):
        plot(rows, key, str(o["plot"]))
    if o.get("json_out"):
        print(json.dumps({"sweep": key, "rows": rows}, indent=2))
    elif o.get("fmt") == "csv":
        sys.stdout.write(to_csv(rows, key))
    else:
        print_table(rows, key)
    return 0
