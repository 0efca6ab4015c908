"""The network test that runs on every node at once (one Ray task each): TCP reachability of
the other nodes' ports, then one real timed Gloo all-reduce across all nodes.

Reachability: every node first listens on its probe port (the port the Gloo rendezvous then
uses on rank 0), then connects to every target until ``deadline``; "refused" is retried (the
listener may not be up yet), a timeout means something drops the packets (a firewall)."""

from __future__ import annotations

import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

CONNECT_TIMEOUT = 1.5


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _listen(ports: list[int], stop: threading.Event) -> list[socket.socket]:
    socks = []
    for port in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", port))
            s.listen(64)
            s.settimeout(0.2)
        except OSError:
            s.close()
            continue
        socks.append(s)

    def accept_loop(sock: socket.socket) -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                conn.close()
            except OSError:
                continue

    for s in socks:
        threading.Thread(target=accept_loop, args=(s,), daemon=True).start()
    return socks


def probe(target: dict[str, Any], deadline: float) -> dict[str, Any]:
    """Connect to ``target`` (``ip``, ``port``, ``what``, ``node``) until it answers or ``deadline``."""
    start = time.monotonic()
    last = ""
    while True:
        try:
            with socket.create_connection((target["ip"], target["port"]), timeout=CONNECT_TIMEOUT):
                return {**target, "ok": True, "ms": round((time.monotonic() - start) * 1000, 1)}
        except ConnectionRefusedError:
            last = "connection refused"
        except socket.timeout:
            last = f"no answer in {CONNECT_TIMEOUT:g} s (packets dropped)"
        except OSError as exc:
            last = exc.strerror or str(exc)
        if time.monotonic() >= deadline:
            return {**target, "ok": False, "error": last}
        time.sleep(0.2)


def gloo_allreduce(rank: int, world: int, master: str, port: int, timeout: float, numel: int = 1 << 18) -> dict[str, Any]:
    """One all-reduce of ``numel`` float32 over torch.distributed's Gloo backend, as vLLM's CPU
    group does it (this node's GLOO_SOCKET_IFNAME / hostname decide the interface)."""
    import datetime

    start = time.monotonic()
    try:
        import torch
        import torch.distributed as dist
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": f"torch cannot be imported: {exc}", "skipped": True}
    imported = time.monotonic()
    try:
        dist.init_process_group("gloo", init_method=f"tcp://{master}:{port}", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=timeout))
        joined = time.monotonic()
        tensor = torch.ones(numel, dtype=torch.float32) * (rank + 1)
        t0 = time.monotonic()
        dist.all_reduce(tensor)
        reduce_s = time.monotonic() - t0
        expected = world * (world + 1) / 2
        ok = bool(abs(float(tensor[0]) - expected) < 1e-3)
        dist.destroy_process_group()
        return {"ok": ok, "connect_s": round(joined - imported, 3), "allreduce_s": round(reduce_s, 4),
                "bytes": numel * 4, "value": float(tensor[0]), "expected": expected,
                "import_s": round(imported - start, 3)}
    except Exception as exc:  # noqa: BLE001 - the error text is the evidence
        try:
            if dist.is_initialized():
                dist.destroy_process_group()
        except Exception:  # noqa: BLE001
            pass
        return {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:600]}", "seconds": round(time.monotonic() - imported, 3)}


def network_task(listen_ports: list[int], targets: list[dict[str, Any]], probe_seconds: float,
                 gloo: dict[str, Any] | None) -> dict[str, Any]:
    """Runs on one node: listen, probe every target, then join the Gloo all-reduce."""
    from qvdoctor.cluster.nodefacts import proc_stamp

    stamp = proc_stamp()
    stop = threading.Event()
    socks = _listen(listen_ports, stop)
    deadline = time.monotonic() + probe_seconds
    with ThreadPoolExecutor(max_workers=min(32, max(1, len(targets)))) as pool:
        results = list(pool.map(lambda t: probe(t, deadline), targets))
    # keep listening a little so slower nodes can still reach us, then free the rendezvous port
    time.sleep(max(0.0, min(1.0, deadline - time.monotonic())))
    stop.set()
    for s in socks:
        s.close()
    out: dict[str, Any] = {"probes": results, "listening": listen_ports,
                           "gloo_ifname": os.environ.get("GLOO_SOCKET_IFNAME")}
    out["timing"] = {"start": stamp, "probed": proc_stamp()}
    if gloo is not None:
        out["gloo"] = gloo_allreduce(**gloo)
    out["timing"]["end"] = proc_stamp()
    return out
