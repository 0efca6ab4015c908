"""The cluster as check entries see it: per node the derived facts (which NIC carries the Ray
address, what NCCL/Gloo will bind to, vLLM's IP, model state, unreachable ports, Gloo result),
and cluster-wide comparisons (version skew, duplicate VLLM_HOST_IP, parallel layout).

Check expressions in ``checks/cluster/`` read ``cluster`` (a :class:`ClusterView`) and, with
``each = "node in cluster.nodes"``, ``node`` (a :class:`NodeView`)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from qvdoctor import compat
from qvdoctor.cluster.collect import Collected, RayNode
from qvdoctor.cluster.ifnames import gloo_names, nccl_exact_value, nccl_matches

# packages whose versions must match on every node (fail) / should match (warn)
MUST_MATCH = ("python", "ray", "vllm", "torch", "nccl")
SHOULD_MATCH = ("transformers", "tokenizers", "flash_attn", "xformers", "flashinfer", "triton", "qwen_vl_utils")


@dataclass
class NodeView:
    index: int
    ip: str
    node_id: str
    is_head: bool
    label: str
    lost: str | None = None
    hostname: str = ""
    hostname_addrs: list[str] = field(default_factory=list)
    hostname_loopback: bool = False
    nics: dict[str, list[str]] = field(default_factory=dict)
    nics_text: str = ""  # "lo 127.0.0.1; ens5 10.213.0.1"
    ray_nic: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    nccl_value: str | None = None
    nccl_source: str = ""
    nccl_selected: list[str] = field(default_factory=list)
    nccl_problem: str | None = None
    gloo_value: str | None = None
    gloo_problem: str | None = None
    vllm_ip: str = ""
    vllm_ip_how: str = ""
    host_ip_env: str | None = None
    host_ip_shared_with: list[str] = field(default_factory=list)
    ray_gpus: float = 0.0
    ray_cpus: float = 0.0
    nvml_gpus: int = 0
    gpu_names: list[str] = field(default_factory=list)
    ccs: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    model_path: str | None = None
    model_state: str | None = None  # None (no --model) | ok | missing | different
    model_detail: list[str] = field(default_factory=list)
    model_files: dict[str, list] = field(default_factory=dict)  # rel path -> [size, fingerprint]
    unreachable: list[str] = field(default_factory=list)
    reachable: int = 0
    gloo: dict[str, Any] = field(default_factory=dict)
    shm_bytes: int | None = None
    mem_available_bytes: int | None = None
    ib_devices: list[str] = field(default_factory=list)
    memlock_soft: int | None = None
    cap_ipc_lock: bool | None = None
    seconds: float = 0.0
    timing: dict[str, Any] = field(default_factory=dict)  # the tasks' proc_stamp()s: {"facts": …, "net": …}
    facts: Any = None  # qvdoctor.facts.Facts of the node


@dataclass
class ClusterView:
    address: str
    nodes: list[NodeView]
    head: NodeView | None
    model: str | None = None
    tp: int | None = None
    pp: int | None = None
    device: str = "CPU"
    devices_per_node: list[int] = field(default_factory=list)
    total_gpus: int = 0
    rec_tp: int = 1
    rec_pp: int = 1
    layout_problem: str | None = None
    skew: list[dict[str, Any]] = field(default_factory=list)
    ccs: list[str] = field(default_factory=list)
    cc_mix: bool = False
    dtype_all: str | None = None
    nccl_universal: str | None = None
    gloo_ok: bool | None = None  # None: not run
    gloo_seconds: float | None = None
    gloo_bytes: int = 0
    gloo_error_nodes: list[NodeView] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def alive(self) -> list[NodeView]:
        return [n for n in self.nodes if n.lost is None]

    @property
    def lost(self) -> list[NodeView]:
        return [n for n in self.nodes if n.lost is not None]


def _label(node: RayNode, facts: dict[str, Any] | None, index: int) -> str:
    host = (facts or {}).get("hostname") or f"node{index}"
    return f"{host} ({node.ip}{', head' if node.is_head else ''})"


def _is_loopback(addr: str) -> bool:
    return addr.startswith("127.") or addr == "::1"


def build_view(collected: Collected, model: str | None = None, tp: int | None = None, pp: int | None = None) -> ClusterView:
    from qvdoctor.facts.snapshot import Facts

    names = {n.node_id: _label(n, n.facts, i) for i, n in enumerate(collected.nodes)}
    nodes: list[NodeView] = []
    for i, rn in enumerate(collected.nodes):
        v = NodeView(i, rn.ip, rn.node_id, rn.is_head, names[rn.node_id], lost=rn.lost, ray_gpus=rn.gpus, ray_cpus=rn.cpus)
        f = rn.facts
        if f is not None:
            _fill_node(v, f, Facts)
        if rn.net is not None:
            for p in rn.net.get("probes", []):
                if p.get("ok"):
                    v.reachable += 1
                else:
                    v.unreachable.append(f"{p['ip']}:{p['port']} ({p['what']} on {names.get(p['node'], p['node'])}): {p.get('error')}")
            v.gloo = rn.net.get("gloo") or {}
            v.timing["net"] = rn.net.get("timing")
        nodes.append(v)
    head = next((n for n in nodes if n.is_head), None)
    view = ClusterView(collected.address, nodes, head, model=model, tp=tp, pp=pp, seconds=dict(collected.seconds))
    alive = view.alive
    _interfaces(view, alive)
    _host_ips(alive)
    _versions(view, alive)
    _gpus(view, alive)
    _model(view, alive)
    _gloo(view, alive)
    return view


def _fill_node(v: NodeView, f: dict[str, Any], facts_type: Any) -> None:
    v.hostname = f.get("hostname", "")
    v.hostname_addrs = list(f.get("hostname_addrs", []))
    v.nics = {n["name"]: list(n.get("addrs", [])) for n in f.get("nics", [])}
    v.nics_text = "; ".join(f"{k} {' '.join(a) or '(no address)'}" for k, a in v.nics.items())
    v.ray_nic = next((name for name, addrs in v.nics.items() if v.ip in addrs), None)
    v.hostname_loopback = bool(v.hostname_addrs) and all(_is_loopback(a) for a in v.hostname_addrs)
    v.env = dict(f.get("env", {}))
    v.vllm_ip, v.vllm_ip_how = f.get("vllm_ip", ""), f.get("vllm_ip_how", "")
    v.host_ip_env = v.env.get("VLLM_HOST_IP") or None
    v.versions = dict(f.get("versions", {}))
    v.shm_bytes, v.mem_available_bytes = f.get("shm_bytes"), f.get("mem_available_bytes")
    v.ib_devices, v.memlock_soft, v.cap_ipc_lock = f.get("ib_devices", []), f.get("memlock_soft"), f.get("cap_ipc_lock")
    v.seconds = f.get("seconds", 0.0)
    v.timing["facts"] = f.get("timing")
    try:
        v.facts = facts_type.from_dict(f["facts"])
    except (KeyError, TypeError, ValueError):
        v.facts = None
    if v.facts is not None:
        v.nvml_gpus = len(v.facts.gpus)
        v.gpu_names = [g.name for g in v.facts.gpus]
        v.ccs = sorted({g.cc for g in v.facts.gpus}, key=compat.version_key)
    model = f.get("model")
    if model is not None:
        v.model_path = model.get("path")
        files = model.get("files", {})
        v.model_state = "ok" if model.get("exists") and not model.get("error") and files else "missing"
        if v.model_state == "missing":
            v.model_detail = [f"{model.get('path')}: {model.get('error') or ('empty directory' if model.get('exists') else 'not found')}"]
        v.model_files = dict(files)


def _interfaces(view: ClusterView, alive: list[NodeView]) -> None:
    ray_nics = [n.ray_nic for n in alive if n.ray_nic]
    universal = nccl_exact_value(ray_nics) if ray_nics else None
    # the exact list must not select a second, wrong NIC anywhere
    if universal and all(nccl_matches(universal, list(n.nics)) == [n.ray_nic] for n in alive if n.ray_nic):
        view.nccl_universal = universal
    head_nccl = view.head.env.get("NCCL_SOCKET_IFNAME") if view.head and view.head.lost is None else None
    for n in alive:
        own = n.env.get("NCCL_SOCKET_IFNAME")
        if head_nccl and not n.is_head:
            n.nccl_value, n.nccl_source = head_nccl, "the head's value, which vLLM copies to every Ray worker"
        else:
            n.nccl_value, n.nccl_source = own, "this node's raylet environment" if own else "unset (NCCL's default: all but lo and docker*)"
        names = list(n.nics)
        n.nccl_selected = nccl_matches(n.nccl_value, names)
        with_addr = [s for s in n.nccl_selected if n.nics.get(s)]
        if not n.ray_nic:
            n.nccl_problem = f"no interface on this node carries its Ray address {n.ip}"
        elif not with_addr:
            n.nccl_problem = f"NCCL_SOCKET_IFNAME={n.nccl_value!s} selects no interface with an address here (interfaces: {', '.join(names)})"
        elif n.ray_nic not in with_addr:
            n.nccl_problem = (f"NCCL_SOCKET_IFNAME={n.nccl_value!s} selects {', '.join(with_addr)}, not {n.ray_nic}, "
                              f"the interface carrying the Ray address {n.ip}")
        elif n.nccl_value and with_addr[0] != n.ray_nic:
            n.nccl_problem = f"NCCL_SOCKET_IFNAME={n.nccl_value} selects {', '.join(with_addr)}; NCCL bootstraps on the first, {with_addr[0]}, not {n.ray_nic}"
        n.gloo_value = n.env.get("GLOO_SOCKET_IFNAME")
        wanted = gloo_names(n.gloo_value)
        if wanted:
            missing = [w for w in wanted if w not in n.nics]
            if missing:
                n.gloo_problem = f"GLOO_SOCKET_IFNAME={n.gloo_value}: no interface named {', '.join(missing)} here (Gloo wants exact names; this node has {', '.join(n.nics)})"
            elif n.ray_nic not in wanted:
                n.gloo_problem = f"GLOO_SOCKET_IFNAME={n.gloo_value} is not {n.ray_nic}, the interface carrying the Ray address {n.ip}"


def _host_ips(alive: list[NodeView]) -> None:
    by_ip: dict[str, list[NodeView]] = defaultdict(list)
    for n in alive:
        if n.host_ip_env:
            by_ip[n.host_ip_env].append(n)
    for ip, group in by_ip.items():
        if len(group) > 1:
            for n in group:
                n.host_ip_shared_with = [m.label for m in group if m is not n]


def _versions(view: ClusterView, alive: list[NodeView]) -> None:
    for pkg in (*MUST_MATCH, *SHOULD_MATCH):
        seen: dict[str, list[str]] = defaultdict(list)
        for n in alive:
            seen[n.versions.get(pkg) or "not installed"].append(n.label)
        if len(seen) > 1 and not (pkg not in MUST_MATCH and set(seen) == {"not installed"}):
            ref = view.head.versions.get(pkg) if view.head and view.head.lost is None else None
            view.skew.append({"package": pkg, "versions": dict(seen), "head": ref or "not installed",
                              "must": pkg in MUST_MATCH,
                              "text": "; ".join(f"{ver} on {', '.join(labels)}" for ver, labels in seen.items())})


def _gpus(view: ClusterView, alive: list[NodeView]) -> None:
    view.device = "GPU" if any(n.nvml_gpus or n.ray_gpus for n in alive) else "CPU"
    view.devices_per_node = [n.nvml_gpus if view.device == "GPU" else 1 for n in alive]
    view.total_gpus = sum(n.nvml_gpus for n in alive)
    view.ccs = sorted({cc for n in alive for cc in n.ccs}, key=compat.version_key)
    view.cc_mix = len(view.ccs) > 1
    if view.ccs:
        view.dtype_all = "float16" if compat.version_lt(view.ccs[0], "8.0") else "bfloat16"
    per_node = min(view.devices_per_node) if view.devices_per_node else 0
    view.rec_tp = max(1, per_node)
    view.rec_pp = max(1, len([d for d in view.devices_per_node if d > 0]))
    if view.tp is None and view.pp is None:
        return
    tp, pp = view.tp or 1, view.pp or 1
    total = sum(view.devices_per_node)
    if tp * pp > total:
        view.layout_problem = f"TP {tp} x PP {pp} = {tp * pp} workers, but the cluster has {total} {view.device}s ({'+'.join(map(str, view.devices_per_node))})"
    elif per_node and tp > per_node:
        view.layout_problem = f"TP {tp} spans nodes ({per_node} {view.device}s per node): every layer's all-reduce would cross the network"
    elif tp * pp < total and (tp, pp) != (view.rec_tp, view.rec_pp):
        view.layout_problem = f"TP {tp} x PP {pp} uses {tp * pp} of the cluster's {total} {view.device}s"


def _model(view: ClusterView, alive: list[NodeView]) -> None:
    if not view.model:
        return
    ref = view.head if view.head in alive and view.head.model_state == "ok" else next((n for n in alive if n.model_state == "ok"), None)
    if ref is None:
        return
    want = ref.model_files
    for n in alive:
        if n is ref or n.model_state != "ok":
            continue
        have = n.model_files
        diff = []
        for rel, (size, fp) in want.items():
            if rel not in have:
                diff.append(f"{rel}: missing here (on {ref.label}: {size} bytes)")
            elif have[rel] != [size, fp]:
                diff.append(f"{rel}: {have[rel][0]} bytes, fingerprint {have[rel][1]}; on {ref.label}: {size} bytes, fingerprint {fp}")
        diff += [f"{rel}: only here" for rel in have if rel not in want and rel.endswith((".safetensors", ".json", ".bin"))]
        if diff:
            n.model_state = "different"
            n.model_detail = diff[:8] + ([f"... and {len(diff) - 8} more"] if len(diff) > 8 else [])


def _gloo(view: ClusterView, alive: list[NodeView]) -> None:
    results = [n.gloo for n in alive if n.gloo]
    if len(alive) < 2 or not results:
        return
    view.gloo_error_nodes = [n for n in alive if n.gloo and not n.gloo.get("ok")]
    view.gloo_ok = not view.gloo_error_nodes and len(results) == len(alive)
    if view.gloo_ok:
        view.gloo_seconds = max(n.gloo.get("allreduce_s", 0.0) for n in alive)
        view.gloo_bytes = int(results[0].get("bytes", 0))
