"""Talk to the Ray cluster: one task pinned to each live node (node affinity, ``soft=False``)
gathers the node's facts, then one network task per node probes ports and joins a Gloo
all-reduce. Ray is imported here, when the command runs, never at qvdoctor import time.

A node that does not answer within the timeout, or dies meanwhile, is reported (``lost``), not
waited for."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from qvdoctor.errors import QvError

DEFAULT_PORT = 6379


@dataclass
class RayNode:
    node_id: str
    ip: str
    is_head: bool
    resources: dict[str, float]
    manager_port: int | None = None
    object_port: int | None = None
    facts: dict[str, Any] | None = None  # NodeFacts.to_dict()
    net: dict[str, Any] | None = None  # netprobe.network_task result
    lost: str | None = None  # why this node gave no answer

    @property
    def gpus(self) -> float:
        return self.resources.get("GPU", 0.0)

    @property
    def cpus(self) -> float:
        return self.resources.get("CPU", 0.0)


@dataclass
class Collected:
    address: str
    gcs_port: int
    nodes: list[RayNode] = field(default_factory=list)
    driver_ip: str = ""
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def head(self) -> RayNode | None:
        return next((n for n in self.nodes if n.is_head), None)


def _check_reachable(address: str) -> None:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=3):
            return
    except (OSError, ValueError) as exc:
        raise QvError(f"cannot reach the Ray head at {address}: {getattr(exc, 'strerror', None) or exc}",
                      hint="start it with 'ray start --head --port 6379' and pass --address HEAD_IP:6379") from None


def connect(address: str | None) -> tuple[Any, str]:
    """``ray.init`` against a running cluster; never starts a new one."""
    try:
        import ray
    except ImportError:
        raise QvError("Ray is not installed here", hint="pip install 'ray[default]' (the same version as on the cluster)") from None
    address = address or os.environ.get("RAY_ADDRESS") or "auto"
    if address != "auto":
        if ":" not in address:
            address = f"{address}:{DEFAULT_PORT}"
        _check_reachable(address.removeprefix("ray://"))
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False, namespace="qvdoctor-cluster",
                 configure_logging=True)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise QvError(f"cannot connect to the Ray cluster at {address}: {str(exc).splitlines()[0]}",
                      hint="run on a node of the cluster (after 'ray start'), or pass --address HEAD_IP:6379") from None
    return ray, address


def live_nodes(ray: Any) -> list[RayNode]:
    nodes = []
    for n in ray.nodes():
        if not n.get("Alive"):
            continue
        res = dict(n.get("Resources", {}))
        nodes.append(RayNode(n["NodeID"], n["NodeManagerAddress"], "node:__internal_head__" in res,
                             {k: v for k, v in res.items() if k in ("CPU", "GPU", "memory", "object_store_memory")},
                             n.get("NodeManagerPort"), n.get("ObjectManagerPort")))
    nodes.sort(key=lambda n: (not n.is_head, tuple(int(p) if p.isdigit() else 0 for p in n.ip.split("."))))
    return nodes


def _pinned(ray: Any, remote_fn: Any, node_id: str) -> Any:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return remote_fn.options(num_cpus=0, max_retries=0,
                             scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node_id, soft=False))


def _why_lost(ray: Any, node: RayNode, timeout: float, exc: BaseException | None = None) -> str:
    alive = {n["NodeID"]: n.get("Alive") for n in ray.nodes()}
    if not alive.get(node.node_id, False):
        return "the node died during the check (Ray marked it dead)"
    if exc is not None:
        text = str(exc).strip().splitlines()
        return f"its task failed: {type(exc).__name__}: {text[-1] if text else ''}"[:400]
    return f"no answer within {timeout:g} s (the node is overloaded, hung, or cannot be reached)"


def run_pinned(ray: Any, nodes: list[RayNode], fn: Any, args_of: Any, timeout: float) -> dict[str, Any]:
    """Run ``fn(*args_of(node))`` on every node at once; returns node_id -> result or exception."""
    remote_fn = ray.remote(fn)  # one remote function (exported once), pinned per node by .options
    refs = {_pinned(ray, remote_fn, n.node_id).remote(*args_of(n)): n for n in nodes}
    ready, pending = ray.wait(list(refs), num_returns=len(refs), timeout=timeout)
    out: dict[str, Any] = {}
    for ref in ready:
        try:
            out[refs[ref].node_id] = ray.get(ref, timeout=5)
        except Exception as exc:  # noqa: BLE001 - any task error is a lost node
            out[refs[ref].node_id] = exc
    for ref in pending:
        out[refs[ref].node_id] = TimeoutError(f"no answer within {timeout:g} s")
        try:
            ray.cancel(ref, force=True)
        except Exception:  # noqa: BLE001
            pass
    return out


def collect(address: str | None, model: str | None, *, timeout: float = 60.0, gloo_timeout: float = 20.0,
            probe_seconds: float = 4.0, network: bool = True) -> Collected:
    import contextlib
    import sys

    # Ray's driver prints cluster events ("(raylet) The node ... has been marked dead") to stdout;
    # keep stdout for the report (and valid --json) by sending them to stderr
    with contextlib.redirect_stdout(sys.stderr):
        return _collect(address, model, timeout, gloo_timeout, probe_seconds, network)


def _collect(address: str | None, model: str | None, timeout: float, gloo_timeout: float, probe_seconds: float,
             network: bool) -> Collected:
    from qvdoctor.cluster.nodefacts import gather_node

    t0 = time.monotonic()
    started_at = time.time()
    ray, address = connect(address)
    t_connect = time.monotonic()
    try:
        gcs = ray.get_runtime_context().gcs_address
        result = Collected(address=gcs, gcs_port=int(gcs.rpartition(":")[2]), nodes=live_nodes(ray))
        result.driver_ip = ray.util.get_node_ip_address()
        torch_next = network and len(result.nodes) > 1  # the Gloo all-reduce needs 2+ nodes
        answers = run_pinned(ray, result.nodes, gather_node, lambda n: (model, torch_next), timeout)
        for node in result.nodes:
            got = answers.get(node.node_id)
            if isinstance(got, dict):
                node.facts = got
            else:
                node.lost = _why_lost(ray, node, timeout, None if isinstance(got, TimeoutError) else got)
        t_facts = time.monotonic()
        alive = [n for n in result.nodes if n.lost is None]
        if network and alive:
            _network(ray, result, alive, timeout, gloo_timeout, probe_seconds)
        t_net = time.monotonic()
        result.seconds = {"connect": round(t_connect - t0, 3), "facts": round(t_facts - t_connect, 3),
                          "network": round(t_net - t_facts, 3), "total": round(t_net - t0, 3),
                          "started_at": round(started_at, 3)}
        return result
    finally:
        try:
            ray.shutdown()
        except Exception:  # noqa: BLE001
            pass


def _network(ray: Any, result: Collected, alive: list[RayNode], timeout: float, gloo_timeout: float, probe_seconds: float) -> None:
    from qvdoctor.cluster.netprobe import network_task

    rank0 = result.head if result.head in alive else alive[0]
    order = [rank0] + [n for n in alive if n is not rank0]
    rendezvous = int((rank0.facts or {}).get("free_port") or 0) or None

    def listen_ports(n: RayNode) -> list[int]:
        ports = []
        if n is rank0 and rendezvous:
            ports.append(rendezvous)
        vllm_port = (n.facts or {}).get("env", {}).get("VLLM_PORT")
        if vllm_port and vllm_port.isdigit():
            ports.append(int(vllm_port))
        return ports

    def targets(me: RayNode) -> list[dict[str, Any]]:
        out = []
        for other in alive:
            if other is me:
                continue
            name = other.node_id
            if other.is_head:
                out.append({"node": name, "ip": other.ip, "port": result.gcs_port, "what": "Ray GCS"})
            if other.manager_port:
                out.append({"node": name, "ip": other.ip, "port": other.manager_port, "what": "raylet"})
            if other.object_port:
                out.append({"node": name, "ip": other.ip, "port": other.object_port, "what": "object manager"})
            for port in listen_ports(other):
                what = "Gloo rendezvous (torch.distributed TCPStore)" if port == rendezvous and other is rank0 else "VLLM_PORT"
                out.append({"node": name, "ip": other.ip, "port": port, "what": what})
        return out

    def args_of(n: RayNode) -> tuple:
        gloo = None
        if rendezvous and len(order) > 1:
            gloo = {"rank": order.index(n), "world": len(order), "master": rank0.ip, "port": rendezvous, "timeout": gloo_timeout}
        return (listen_ports(n), targets(n), probe_seconds, gloo, len(alive) - 1)

    answers = run_pinned(ray, alive, network_task, args_of, timeout + gloo_timeout + probe_seconds)
    for node in alive:
        got = answers.get(node.node_id)
        if isinstance(got, dict):
            node.net = got
        else:
            node.lost = _why_lost(ray, node, timeout, None if isinstance(got, TimeoutError) else got)
