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
RETRY_S = 0.05  # a refused connection (the peer's listener not up yet) is retried this often
STORE_QUIET_S = 0.15


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return s.getsockname()[1]


class Listeners:
    """TCP listeners on ``ports`` that accept and close at once, noting who connected. The
    network task keeps them open until every expected peer has connected to every port (no
    fixed wait), or the probe deadline passes (a peer whose packets are dropped never arrives)."""

    def __init__(self, ports: list[int]):
        self.stop = threading.Event()
        self.cond = threading.Condition()
        self.peers: dict[int, set[str]] = {}
        self.socks: list[socket.socket] = []
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
            self.socks.append(s)
            self.peers[port] = set()
        for s in self.socks:
            threading.Thread(target=self._accept_loop, args=(s,), daemon=True).start()

    def _accept_loop(self, sock: socket.socket) -> None:
        port = sock.getsockname()[1]
        while not self.stop.is_set():
            try:
                conn, addr = sock.accept()
                conn.close()
            except OSError:
                continue
            with self.cond:
                self.peers[port].add(addr[0])
                self.cond.notify_all()

    def wait(self, peers: int, deadline: float) -> None:
        """Until ``peers`` distinct addresses have connected to every port, or ``deadline``."""
        with self.cond:
            while any(len(p) < peers for p in self.peers.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self.cond.wait(left)

    def close(self) -> None:
        self.stop.set()
        for s in self.socks:
            s.close()


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
        time.sleep(RETRY_S)


def wait_for_store(host: str, port: int, deadline: float) -> float:
    """Wait until rank 0's torch.distributed TCPStore accepts on ``host:port``; returns the
    seconds waited. Rank 0's own probe listener may still hold that port: it closes every
    connection at once (EOF), while the store keeps a new connection open waiting for its
    handshake, so a connection with no EOF within STORE_QUIET_S is the store. Gives up at
    ``deadline``, or at once when the connection gets no answer at all (dropped): the caller
    then lets torch report what is wrong."""
    start = time.monotonic()
    while time.monotonic() < deadline:
        try:
            conn = socket.create_connection((host, port), timeout=min(CONNECT_TIMEOUT, max(0.05, deadline - time.monotonic())))
        except socket.timeout:
            break  # no answer (packets dropped): torch reports that itself, with the time left
        except OSError:  # refused: rank 0 is not listening yet
            time.sleep(RETRY_S)
            continue
        with conn:
            conn.settimeout(STORE_QUIET_S)
            try:
                data = conn.recv(1)
            except socket.timeout:
                break  # connected, no EOF: the store is up
            except OSError:
                data = b""  # reset: our listener closing
        if data != b"":
            break  # not our listener (which never sends): let torch talk to it
        time.sleep(RETRY_S)
    return time.monotonic() - start


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
    waited = 0.0
    if rank != 0:
        # torch's TCPStore client retries a refused connect with a randomised exponential backoff
        # (seconds between tries once rank 0 is late); wait for rank 0's store here instead, then
        # join with what is left of the timeout
        waited = wait_for_store(master, port, imported + timeout)
    try:
        dist.init_process_group("gloo", init_method=f"tcp://{master}:{port}", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=max(1.0, timeout - waited)))
        joined = time.monotonic()
        tensor = torch.ones(numel, dtype=torch.float32) * (rank + 1)
        t0 = time.monotonic()
        dist.all_reduce(tensor)
        reduce_s = time.monotonic() - t0
        expected = world * (world + 1) / 2
        ok = bool(abs(float(tensor[0]) - expected) < 1e-3)
        dist.destroy_process_group()
        return {"ok": ok, "connect_s": round(joined - imported, 3), "store_wait_s": round(waited, 3), "allreduce_s": round(reduce_s, 4),
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
                 gloo: dict[str, Any] | None, peers: int = 0) -> dict[str, Any]:
    """Runs on one node: listen, probe every target, then join the Gloo all-reduce. ``peers`` is
    how many other nodes probe this node's ports: the listeners close as soon as all of them have
    connected (at the latest at the probe deadline), which frees rank 0's rendezvous port."""
    from qvdoctor.cluster.nodefacts import prewarm_torch, proc_stamp

    stamp = proc_stamp()
    if gloo is not None:
        prewarm_torch()  # normally already under way since the facts task (same worker process)
    listeners = Listeners(listen_ports)
    deadline = time.monotonic() + probe_seconds
    with ThreadPoolExecutor(max_workers=min(32, max(1, len(targets)))) as pool:
        results = list(pool.map(lambda t: probe(t, deadline), targets))
    listeners.wait(peers, deadline)
    listeners.close()
    out: dict[str, Any] = {"probes": results, "listening": listen_ports,
                           "gloo_ifname": os.environ.get("GLOO_SOCKET_IFNAME")}
    out["timing"] = {"start": stamp, "probed": proc_stamp()}
    if gloo is not None:
        out["gloo"] = gloo_allreduce(**gloo)
    out["timing"]["end"] = proc_stamp()
    return out
