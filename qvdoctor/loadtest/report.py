"""A bench result as a terminal table, markdown, CSV, PNG plots and one self-contained HTML page
(plots inlined as base64 PNG: it opens without network)."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import sys
from pathlib import Path
from typing import Any

from qvdoctor.errors import QvError

CSV_FIELDS = ["concurrency", "rate", "requests", "ok", "errors",
              "ttft_ms_p50", "ttft_ms_p90", "ttft_ms_p99", "tpot_ms_p50", "tpot_ms_p90", "tpot_ms_p99",
              "itl_ms_p50", "itl_ms_p90", "itl_ms_p99", "e2e_ms_p50", "e2e_ms_p90", "e2e_ms_p99",
              "req_per_s", "output_tok_per_s", "prompt_tokens", "visual_tokens", "visual_tokens_expected",
              "usage_mismatch", "client_bound", "meets_slo", "queue_ms", "prefill_ms", "rest_ms",
              "mm_cache_hit_rate", "prefix_cache_hit_rate", "preemptions"]


def _v(x: Any, nd: int = 1) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def flat(p: dict[str, Any]) -> dict[str, Any]:
    row = {k: p.get(k) for k in CSV_FIELDS if k in p}
    for key in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"):
        for q in ("p50", "p90", "p99"):
            row[f"{key}_{q}"] = p[key][q]
    b = p.get("ttft_breakdown_ms") or {}
    for k in ("queue_ms", "prefill_ms", "rest_ms"):
        row[k] = b.get(k)
    cache = p.get("server_cache") or {}
    row["mm_cache_hit_rate"] = (cache.get("mm_cache") or {}).get("hit_rate")
    row["prefix_cache_hit_rate"] = (cache.get("prefix_cache") or {}).get("hit_rate")
    row["preemptions"] = (p.get("server") or {}).get("preemptions")
    return row


def table_rows(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    load = "conc" if result["mode"] == "concurrency" else "rate"
    head = [load, "ok/sent", "TTFT p50/p90/p99 ms", "TPOT p50/p90 ms", "ITL p50/p99 ms", "e2e p50/p99 ms",
            "req/s", "out tok/s", "visual tok (exp)", "TTFT queue/prefill/rest ms", "mm cache hits", "preempt", "flags"]
    rows = []
    for p in result["points"]:
        b = p.get("ttft_breakdown_ms") or {}
        mm = ((p.get("server_cache") or {}).get("mm_cache") or {})
        flags = [f for f, on in (("CLIENT-BOUND", p.get("client_bound")), ("USAGE-MISMATCH", p.get("usage_mismatch")),
                                 ("SLO-MISS", p.get("meets_slo") is False)) if on]
        t, tp, it, e = p["ttft_ms"], p["tpot_ms"], p["itl_ms"], p["e2e_ms"]
        rows.append([
            _v(p["concurrency"] if load == "conc" else p["rate"], 2), f"{p['ok']}/{p['requests']}",
            f"{_v(t['p50'])}/{_v(t['p90'])}/{_v(t['p99'])}", f"{_v(tp['p50'], 2)}/{_v(tp['p90'], 2)}",
            f"{_v(it['p50'], 2)}/{_v(it['p99'], 2)}", f"{_v(e['p50'])}/{_v(e['p99'])}",
            _v(p["req_per_s"], 2), _v(p["output_tok_per_s"], 0),
            f"{_v(p.get('visual_tokens'), 0)} ({_v(p.get('visual_tokens_expected'))})",
            f"{_v(b.get('queue_ms'))}/{_v(b.get('prefill_ms'))}/{_v(b.get('rest_ms'))}" if b else "-",
            f"{_v(mm.get('hits'), 0)}/{_v(mm.get('queries'), 0)}" if mm else "-",
            _v((p.get("server") or {}).get("preemptions"), 0),
            " ".join(flags) or "-",
        ])
    return head, rows


def summary_lines(result: dict[str, Any]) -> list[str]:
    out = [f"server: {result['url']}  model: {result['model']}  media: {result['media']}  max_tokens: {result['max_tokens']}"]
    kn = result.get("knee") or {}
    key = result["mode"]
    out.append(f"knee: {_v(kn.get(key))} {'concurrent requests' if key == 'concurrency' else 'req/s'}"
               f" ({_v(kn.get('req_per_s'), 2)} req/s) — {kn.get('rule', '')}")
    c = result.get("client_ceiling")
    if c:
        out.append(f"client ceiling: {c['req_per_s']:.0f} req/s, {c['output_tok_per_s']:.0f} output tok/s at concurrency {c['concurrency']} "
                   f"against a local do-nothing server (points at >= 50 % of it are marked client-bound)")
    pred = result.get("prediction") or {}
    for src in ("from_plan", "from_server"):
        p = pred.get(src)
        if p:
            out.append(f"prediction ({p['source']}): KV {p['kv_capacity_tokens'] if 'kv_capacity_tokens' in p else p['tokens']:,} tokens / "
                       f"{p['tokens_per_request']:g} tokens per request -> KV fills at {p['kv_fill_concurrency']} concurrent requests; "
                       f"predicted knee {p['predicted_knee']} ({p['limited_by']}); measured knee {_v(pred.get('measured_knee'))}")
    lim = result.get("limit")
    if lim:
        key = "concurrency" if result["mode"] == "concurrency" else "rate"
        out.append(f"limit at {key} {_v(lim['load'])}: {lim['stage']} — {lim['cause']}")
        out.extend(f"  evidence: {e}" for e in lim["evidence"])
        if lim.get("hint"):
            out.append(f"  {'fix' if lim.get('fix') else 'hint'}: {lim['hint']}")
    u = result.get("usage_check")
    if u:
        verdict = "MISMATCH" if u["mismatch"] else "agree"
        out.append(f"visual tokens: server usage {_v(u['visual_tokens_measured'])} vs qvdoctor's arithmetic {u['visual_tokens_expected']}: {verdict}")
    if result.get("stopped"):
        out.append(result["stopped"])
    return out


def render_text(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(width=None if sys.stdout.isatty() else 220)
    head, rows = table_rows(result)
    t = Table(show_lines=False)
    for h in head:
        t.add_column(h, overflow="fold")
    for r in rows:
        t.add_row(*r)
    con.print(t)
    for line in summary_lines(result):
        con.print(line, highlight=False, markup=False)


def to_markdown(result: dict[str, Any], images: list[str]) -> str:
    head, rows = table_rows(result)
    lines = ["# qvdoctor bench report", ""]
    lines += [f"  - {s.strip()}" if s.startswith("  ") else f"- {s}" for s in summary_lines(result)]  # evidence nests
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines.append("")
    for img in images:
        lines += [f"![{Path(img).stem}]({Path(img).name})", ""]
    return "\n".join(lines)


def to_csv(result: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for p in result["points"]:
        w.writerow({k: ("" if v is None else v) for k, v in flat(p).items()})
    return buf.getvalue()


def to_html(result: dict[str, Any], images: list[Path]) -> str:
    head, rows = table_rows(result)
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>qvdoctor bench report</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #bbb;padding:3px 6px;font-size:13px}img{max-width:100%;display:block;margin:1em 0}</style>",
             "</head><body><h1>qvdoctor bench report</h1><ul>"]
    parts += [f"<li>{html.escape(s)}</li>" for s in summary_lines(result)]
    parts.append("</ul><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>")
    parts += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows]
    parts.append("</table>")
    for img in images:
        data = base64.b64encode(img.read_bytes()).decode()
        parts.append(f"<h2>{html.escape(img.stem)}</h2><img alt='{html.escape(img.stem)}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(result: dict[str, Any], directory: str) -> list[str]:
    """Write report.md, points.csv, result.json, the PNG plots and report.html into ``directory``."""
    from qvdoctor.loadtest import plots

    d = Path(directory)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise QvError(f"cannot create the report directory {d}: {exc}") from None
    images: list[Path] = []
    if result["points"]:
        images.append(plots.latency_plot(result, d / "latency.png"))
        images.append(plots.throughput_plot(result, d / "throughput.png"))
        kv = plots.kv_plot(result, d / "kv_capacity.png")
        if kv is not None:
            images.append(kv)
    (d / "report.md").write_text(to_markdown(result, [str(i) for i in images]))
    (d / "points.csv").write_text(to_csv(result))
    (d / "result.json").write_text(json.dumps(result, indent=2))
    (d / "report.html").write_text(to_html(result, images))
    return [str(d / n) for n in ("report.md", "points.csv", "result.json", "report.html")] + [str(i) for i in images]
