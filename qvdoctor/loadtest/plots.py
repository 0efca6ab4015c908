"""PNG plots of a bench result (matplotlib, Agg backend; imported only when a report is written)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qvdoctor.errors import QvError


def _plt() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise QvError("the plots need matplotlib", "pip install matplotlib") from None
    return plt


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _x(result: dict[str, Any]) -> tuple[list[float], str]:
    key = "concurrency" if result["mode"] == "concurrency" else "rate"
    return [p[key] for p in result["points"]], ("concurrency" if key == "concurrency" else "request rate (req/s)")


def latency_plot(result: dict[str, Any], path: Path) -> Path:
    plt = _plt()
    xs, label = _x(result)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, key, title in zip(axes, ("ttft_ms", "tpot_ms", "e2e_ms"), ("TTFT", "TPOT", "end-to-end")):
        for q, style in (("p50", "o-"), ("p90", "s--"), ("p99", "^:")):
            ax.plot(xs, [p[key][q] for p in result["points"]], style, label=q)
        ax.set_title(f"{title} (ms)")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
        for s in result.get("slo") or []:
            if s.startswith(key.split("_")[0] + " "):
                ax.axhline(float(s.split("<=")[1].split()[0]), color="red", lw=1, label="SLO")
    return _save(plt, fig, path)


def throughput_plot(result: dict[str, Any], path: Path) -> Path:
    plt = _plt()
    xs, label = _x(result)
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.plot(xs, [p["req_per_s"] for p in result["points"]], "o-", color="C0", label="req/s")
    ax.set_xlabel(label)
    ax.set_ylabel("requests/s", color="C0")
    ax2 = ax.twinx()
    ax2.plot(xs, [p["output_tok_per_s"] for p in result["points"]], "s--", color="C1", label="output tok/s")
    ax2.set_ylabel("output tokens/s", color="C1")
    for p in result["points"]:
        if p.get("client_bound"):
            ax.annotate("client-bound", (p[result["mode"]], p["req_per_s"]), fontsize=8, color="red")
    knee = (result.get("knee") or {}).get(result["mode"])
    if knee is not None:
        ax.axvline(knee, color="green", lw=1.5, ls="--")
        ax.text(knee, ax.get_ylim()[1] * 0.95, " knee", color="green", va="top")
    ax.grid(alpha=0.3)
    ax.set_title("throughput")
    return _save(plt, fig, path)


def kv_plot(result: dict[str, Any], path: Path) -> Path | None:
    """KV demand of c concurrent requests against the KV capacity; predicted vs measured knee."""
    from qvdoctor.loadtest.predict import kv_demand

    pred = result.get("prediction") or {}
    cap = pred.get("from_server") or pred.get("from_plan")
    tpr = pred.get("tokens_per_request")
    if not cap or not tpr or result["mode"] != "concurrency":
        return None
    plt = _plt()
    top = max([p["concurrency"] for p in result["points"]] + [cap["kv_fill_concurrency"] + 1, 2])
    cs = list(range(1, int(top * 1.25) + 2))
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.plot(cs, kv_demand(cs, tpr, cap["block_size"]), "-", label=f"KV demand ({tpr:g} tokens/request)")
    ax.axhline(cap["kv_capacity_tokens"] if "kv_capacity_tokens" in cap else cap["tokens"], color="black",
               label=f"KV capacity ({cap['source']})")
    if pred.get("from_plan") and pred.get("from_server"):
        ax.axhline(pred["from_plan"]["kv_capacity_tokens"], color="gray", ls=":", label="KV capacity (plan)")
    ax.axvline(cap["predicted_knee"], color="C1", ls="--", label=f"predicted knee {cap['predicted_knee']}")
    if pred.get("measured_knee") is not None:
        ax.axvline(pred["measured_knee"], color="green", ls="-.", label=f"measured knee {pred['measured_knee']}")
    ax.set_xlabel("concurrent requests")
    ax.set_ylabel("KV cache tokens")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("KV demand vs capacity; predicted vs measured knee")
    return _save(plt, fig, path)
