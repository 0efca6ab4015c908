"""``qvdoctor cluster`` output: the per-node table, the findings root cause first, the
``ray start`` line of every node and the one ``vllm serve`` launch for the head (or JSON)."""

from __future__ import annotations

import json
from typing import Any

from qvdoctor.cluster.launchplan import RayStart
from qvdoctor.cluster.view import ClusterView, NodeView
from qvdoctor.doctor.findings import Finding
from qvdoctor.launch import Launch

MARKS = {"fail": "[red]✖[/]", "warn": "[yellow]⚠[/]", "ok": "[green]✔[/]", "info": "[blue]ℹ[/]"}


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(str(text))


def _gpus(n: NodeView) -> str:
    if n.nvml_gpus:
        return f"{n.nvml_gpus}x {n.gpu_names[0]} (cc {'/'.join(n.ccs)})"
    return "none"


def node_rows(view: ClusterView) -> list[dict[str, str]]:
    rows = []
    for n in view.nodes:
        if n.lost is not None:
            rows.append({"node": n.label, "status": "LOST", "detail": n.lost})
            continue
        gloo = "-" if not n.gloo else ("ok" if n.gloo.get("ok") else "FAILED")
        rows.append({
            "node": n.label,
            "status": "ok",
            "nic": f"{n.ray_nic or '?'}",
            "vllm ip": n.vllm_ip,
            "gpus (nvml/ray)": f"{_gpus(n)} / {n.ray_gpus:g}",
            "vllm": n.versions.get("vllm", "-"),
            "torch": n.versions.get("torch", "-"),
            "ray": n.versions.get("ray", "-"),
            "python": n.versions.get("python", "-"),
            "shm": f"{(n.shm_bytes or 0) / 2**30:.1f} GiB",
            "free ram": f"{(n.mem_available_bytes or 0) / 2**30:.1f} GiB",
            "model": n.model_state or "-",
            "ports": f"{n.reachable} ok" + (f", {len(n.unreachable)} blocked" if n.unreachable else ""),
            "gloo": gloo,
        })
    return rows


def print_report(view: ClusterView, findings: list[Finding], starts: list[RayStart], launch: Launch, verbose: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    import sys

    console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 220)
    console.print(f"[bold]Ray cluster at {_esc(view.address)}[/]: {len(view.alive)} node(s) answered"
                  + (f", [red]{len(view.lost)} lost[/]" if view.lost else "")
                  + f" ({view.seconds.get('total', 0):.1f} s)")
    table = Table(show_edge=False, pad_edge=False, box=None)
    cols = ["node", "nic", "vllm ip", "gpus (nvml/ray)", "vllm", "torch", "ray", "python", "shm", "free ram", "model", "ports", "gloo"]
    for c in cols:
        table.add_column(c, no_wrap=True)
    for row in node_rows(view):
        if row["status"] == "LOST":
            table.add_row(_esc(row["node"]), f"[red]LOST: {_esc(row['detail'])}[/]", *[""] * (len(cols) - 2))
        else:
            table.add_row(*[_esc(row[c]) for c in cols])
    console.print(table)
    console.print()
    console.print("[bold]Findings[/] (root cause first)")
    for f in findings:
        if f.status == "ok" and not verbose:
            continue
        role = f" [dim]({f.role})[/]" if f.role and f.role != "root" else (" [bold red](root cause)[/]" if f.role == "root" else "")
        console.print(f"  {MARKS[f.status]} {_esc(f.title)}{role}  [dim]{f.id}[/]")
        if f.subject and f.subject not in f.title:
            console.print(f"      [dim]on:[/] {_esc(f.subject)}")
        if f.status in ("fail", "warn") or verbose:
            for e in f.evidence:
                console.print(f"      [dim]evidence:[/] {_esc(e.text)}")
            if f.cause:
                console.print(f"      [dim]cause:[/] {_esc(f.cause)}")
            if f.fix:
                console.print(f"      [dim]fix:[/] {_esc(f.fix)}")
    oks = [f for f in findings if f.status == "ok"]
    if oks and not verbose:
        console.print(f"  {MARKS['ok']} {len(oks)} checks passed (-v lists them)")
    console.print()
    console.print("[bold]Start Ray[/] (one line per node, in this order)")
    for s in starts:
        console.print(f"  [dim]# {_esc(s.label)}[/]")
        console.print(f"  {_esc(s.command())}")
    console.print()
    console.print("[bold]Then on the head[/]")
    console.print(f"  {_esc(launch.command())}")
    counts = {s: sum(f.status == s for f in findings) for s in ("fail", "warn", "ok", "info")}
    console.print()
    console.print(f"{counts['fail']} failing, {counts['warn']} warnings, {counts['ok']} ok, {counts['info']} notes")


def to_json(view: ClusterView, findings: list[Finding], starts: list[RayStart], launch: Launch, exit_code: int) -> str:
    nodes: list[dict[str, Any]] = []
    for n in view.nodes:
        nodes.append({
            "label": n.label, "ip": n.ip, "node_id": n.node_id, "head": n.is_head, "lost": n.lost,
            "hostname": n.hostname, "hostname_addrs": n.hostname_addrs, "nics": n.nics, "ray_nic": n.ray_nic,
            "vllm_ip": n.vllm_ip, "vllm_ip_how": n.vllm_ip_how, "env": n.env,
            "nccl": {"value": n.nccl_value, "source": n.nccl_source, "selected": n.nccl_selected},
            "gloo_socket_ifname": n.gloo_value, "gpus": {"nvml": n.nvml_gpus, "ray": n.ray_gpus, "names": n.gpu_names, "ccs": n.ccs},
            "versions": n.versions, "shm_bytes": n.shm_bytes, "mem_available_bytes": n.mem_available_bytes,
            "ib_devices": n.ib_devices, "memlock_soft": n.memlock_soft, "cap_ipc_lock": n.cap_ipc_lock,
            "model": {"path": n.model_path, "state": n.model_state, "detail": n.model_detail},
            "unreachable": n.unreachable, "reachable": n.reachable, "gloo": n.gloo, "facts_seconds": n.seconds,
            "timing": n.timing,
        })
    data = {
        "address": view.address,
        "nodes": nodes,
        "findings": [f.to_dict() for f in findings],
        "ray_start": [s.to_json() for s in starts],
        "launch": launch.to_json(),
        "recommended": {"tensor_parallel_size": view.rec_tp, "pipeline_parallel_size": view.rec_pp},
        "gloo_allreduce": {"ok": view.gloo_ok, "seconds": view.gloo_seconds, "bytes": view.gloo_bytes},
        "seconds": view.seconds,
        "exit_code": exit_code,
    }
    return json.dumps(data, indent=2, default=str)
