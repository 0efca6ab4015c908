"""Cross-node findings (the entries under ``checks/cluster/``) plus each node's own diagnose
findings, ordered root cause first."""

from __future__ import annotations

from typing import Any

from qvdoctor.cluster.view import ClusterView
from qvdoctor.doctor.catalog import CheckEntry, load_catalog
from qvdoctor.doctor.context import build_context
from qvdoctor.doctor.findings import Finding
from qvdoctor.doctor.rules import dedupe, run_checks
from qvdoctor.facts.snapshot import Facts

# earlier = closer to the root: a dead node or a version skew explains everything after it, a wrong
# interface explains an unreachable port, and all of those explain a failed Gloo all-reduce
ROOT_ORDER = (
    "cluster-node-lost",
    "cluster-version-skew",
    "cluster-duplicate-vllm-host-ip",
    "cluster-vllm-ip-mismatch",
    "cluster-gloo-socket-ifname",
    "cluster-nccl-socket-ifname",
    "cluster-hostname-loopback",
    "cluster-port-unreachable",
    "cluster-head-without-gpus",
    "cluster-ray-gpus-mismatch",
    "cluster-model-missing",
    "cluster-model-different",
    "cluster-parallel-layout",
    "cluster-cc-mix",
    "cluster-rdma-memlock",
    "cluster-version-skew-minor",
    "cluster-gloo-allreduce",
    "cluster-gloo-allreduce-ok",
)
_STATUS = {"fail": 0, "warn": 1, "info": 2, "ok": 3}


def cluster_entries() -> list[CheckEntry]:
    return [e for e in load_catalog() if e.path.parent.name == "cluster"]


def node_entries() -> list[CheckEntry]:
    return [e for e in load_catalog() if e.path.parent.name != "cluster"]


def _rank(f: Finding) -> tuple[int, int, int]:
    order = ROOT_ORDER.index(f.id) if f.id in ROOT_ORDER else len(ROOT_ORDER)
    return (_STATUS.get(f.status, 4), 0 if f.id.startswith("cluster-") else 1, order)


def cluster_findings(view: ClusterView) -> list[Finding]:
    head_facts = view.head.facts if view.head is not None and view.head.facts is not None else Facts("cluster", "live")
    names = build_context(head_facts, extra={"cluster": view})
    findings = run_checks(names, cluster_entries())
    per_node = []
    for node in view.alive:
        if node.facts is None:
            continue
        for f in run_checks(build_context(node.facts), node_entries()):
            f.subject = f"{node.label}" + (f": {f.subject}" if f.subject else "")
            per_node.append(f)
    merged = findings + _merge_nodes(per_node)
    merged.sort(key=_rank)
    _roles(merged)
    return merged


def _merge_nodes(findings: list[Finding]) -> list[Finding]:
    """The same finding on several nodes becomes one, naming them all."""
    out: dict[tuple[str, str, str], Finding] = {}
    for f in findings:
        key = (f.id, f.status, f.title)
        if key in out:
            kept = out[key]
            kept.subject += f", {f.subject}"
            kept.evidence += [e for e in f.evidence if e not in kept.evidence]
        else:
            out[key] = f
    return dedupe(list(out.values()))


def _roles(findings: list[Finding]) -> None:
    """The first failure is the root; a failed Gloo all-reduce after a network cause is its symptom."""
    causes = [f for f in findings if f.status == "fail"]
    if not causes:
        return
    causes[0].role = "root"
    network_cause = any(f.family == "network" and f.id != "cluster-gloo-allreduce" for f in causes) or any(
        f.id == "cluster-node-lost" for f in causes)
    for f in causes[1:]:
        f.role = "symptom" if f.id == "cluster-gloo-allreduce" and network_cause else "contributing"


def node_patches(view: ClusterView, findings: list[Finding]) -> dict[str, dict[str, str]]:
    """Env changes per node label, from failing/warning findings whose subject is that node.
    NCCL_SOCKET_IFNAME goes to every node: vLLM copies the head's value to all workers."""
    out: dict[str, dict[str, str]] = {n.label: {} for n in view.nodes}
    shared: dict[str, str] = {}
    for f in findings:
        if f.status not in ("fail", "warn") or not f.patch.env or not f.id.startswith("cluster-"):
            continue
        for label in out:
            if f.subject == label:
                out[label].update(f.patch.env)
        if "NCCL_SOCKET_IFNAME" in f.patch.env:
            shared["NCCL_SOCKET_IFNAME"] = f.patch.env["NCCL_SOCKET_IFNAME"]
    for env in out.values():
        env.update(shared)
    return out


def flag_patch(findings: list[Finding]) -> dict[str, Any]:
    flags: dict[str, Any] = {}
    for f in findings:
        if f.status in ("fail", "warn") and f.id.startswith("cluster-"):
            flags.update(f.patch.flags)
    return flags
