"""Render findings for people (rich, grouped by area, flutter-doctor style) and machines (JSON)."""

from __future__ import annotations

import json
from typing import Any

from qvdoctor.facts.snapshot import Facts
from qvdoctor.doctor.findings import Finding, combined_patch
from qvdoctor.launch import flag_args

MARKS = {"fail": "[red]✖[/]", "warn": "[yellow]⚠[/]", "fixed": "[green]✚[/]", "ok": "[green]✔[/]", "info": "[blue]ℹ[/]"}
# Said in words too, so the report reads the same without colour.
WORDS = {"fail": "FAIL", "warn": "WARN", "fixed": "FIXED", "ok": "ok", "info": "note"}
AREAS = {
    "kernel-arch": "Kernels and driver",
    "attention-backend": "Attention backends",
    "dtype": "Data types",
    "multiproc": "Worker processes",
    "version": "Package versions",
    "shm-nccl": "Shared memory and NCCL",
    "parallel-divisibility": "Parallelism",
    "quant-alignment": "Quantization",
    "kv-cache": "KV cache and context length",
    "oom": "Memory",
    "network": "Network",
    "video-backend": "Video decoding",
    "mm-limits": "Multimodal limits",
    "other": "Machine",
}


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def facts_summary(facts: Facts) -> list[str]:
    lines = [f"[bold]{_esc(facts.label)}[/] ({facts.provenance})"]
    if facts.nvidia.gpus:
        lines.append(f"  driver {facts.nvidia.driver_version}, CUDA driver API {facts.nvidia.cuda_driver_version}")
        for gpu in facts.nvidia.gpus:
            lines.append(f"  GPU {gpu.index}: {_esc(gpu.name)}, cc {gpu.cc}, {gpu.memory_total_bytes / 2**30:.1f} GiB")
    else:
        lines.append(f"  no NVIDIA GPU ({_esc(facts.nvidia.error or 'none found')})")
    names = ("torch", "vllm", "transformers", "xformers", "flash_attn", "flashinfer")
    pkgs = [f"{facts.packages[n].dist} {facts.packages[n].version}" + (f" (CUDA {facts.packages[n].cuda})" if facts.packages[n].cuda else "") for n in names if n in facts.packages]
    if pkgs:
        lines.append("  " + _esc(", ".join(pkgs)))
    return lines


def print_findings(findings: list[Finding], facts: Facts | None = None, console: Any = None, verbose: bool = False) -> None:
    """The report: facts summary, findings by area (failures first), then the combined fix."""
    from rich.console import Console

    console = console or Console(highlight=False, soft_wrap=True)
    if facts is not None:
        for line in facts_summary(facts):
            console.print(line)
        console.print()
    by_area: dict[str, list[Finding]] = {}
    for f in findings:
        by_area.setdefault(f.family, []).append(f)
    for family, group in by_area.items():
        console.print(f"[bold]{AREAS.get(family, family)}[/]")
        for f in group:
            role = f" [dim]({'not a problem' if f.role == 'benign' else f.role})[/]" if f.role and f.role != "root" else ""
            ident = f"  [dim]{f.id}[/]" if f.status in ("fail", "warn", "fixed") else ""
            console.print(f"  {MARKS[f.status]} {WORDS[f.status]}: {_esc(f.title)}{role}{ident}")
            if f.status in ("fail", "warn") or verbose:
                for e in f.evidence:
                    where = f"line {e.line}: " if e.line else ""
                    console.print(f"      [dim]evidence:[/] {where}{_esc(e.text)}")
                if f.cause:
                    console.print(f"      [dim]cause:[/] {_esc(f.cause)}")
                if f.fix:
                    console.print(f"      [dim]fix:[/] {_esc(f.fix)}")
        console.print()
    counts = {s: sum(f.status == s for f in findings) for s in ("fail", "warn", "fixed", "ok", "info")}
    console.print(f"{counts['fail']} failing, {counts['warn']} warnings, {counts['fixed']} fixed by the launch, "
                  f"{counts['ok']} ok, {counts['info']} notes")


def print_launch(rx: Any, console: Any = None, emitted: dict[str, str] | None = None) -> None:
    """The recommendation: one launch line (never wrapped), what changed from the request and
    why; or, when nothing fits, why not."""
    from rich.console import Console
    from rich.text import Text

    console = console or Console(highlight=False)
    console.print()
    if rx.launch is None:
        console.print("[bold red]Nothing fits[/]: no launch qvdoctor knows works here; what stands in the way:")
        for line in rx.why_nothing_fits:
            console.print(f"  - {_esc(line)}")
        console.print("No launch is printed: each finding above says its fix; run qvdoctor again once they are done.")
        return
    console.print("[bold]Launch[/] (checked against the model and this machine by qvdoctor's rules; not run):")
    console.print(Text(rx.launch.command()), soft_wrap=True)
    if rx.launch.model == "MODEL":
        console.print("[dim](MODEL: your model; 'qvdoctor diagnose --model M' checks the launch for it)[/]")
    if rx.changes:
        console.print("[dim]changed from the request:[/]")
        for line in rx.changes:
            console.print(f"  - {_esc(line)}")
    for what, path in (emitted or {}).items():
        console.print(f"{what} written to {_esc(path)}")


def prescription_json(rx: Any) -> dict[str, Any]:
    """The ``launch`` / ``changes`` / ``nothing_fits`` / ``findings`` keys of every command's JSON."""
    return {"launch": rx.launch.to_json() if rx.launch is not None else None, "changes": rx.changes,
            "nothing_fits": rx.why_nothing_fits if rx.launch is None else [],
            "findings": [f.to_dict() for f in rx.findings],
            "recommended_flags": dict(rx.launch.flags) if rx.launch is not None else None}


def to_json(findings: list[Finding], facts: Facts | None = None, patch: Any = None, **extra: Any) -> str:
    patch = patch if patch is not None else combined_patch(findings)
    data: dict[str, Any] = {
        "facts": facts.to_dict() if facts is not None else None,
        "findings": [f.to_dict() for f in findings],
        "patch": {"flags": patch.flags, "env": patch.env, "args": flag_args(patch.flags)},
        **extra,
    }
    return json.dumps(data, indent=2, default=str)
