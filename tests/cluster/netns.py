"""A real Ray cluster of N "machines" on this host, each in its own network, UTS and mount namespace.

Layout (every address exists only inside namespaces this module creates)::

    qvc<run>sw   : a switch namespace holding bridge br0
    qvc<run>n<i> : node i; one NIC (ens5, enp134s0f0, ...) = one end of a veth pair whose other
                   end is a port of br0; address 10.213.0.<i+1>/24; lo up; its own hostname
                   (node<i>), /etc/hosts and an /etc/resolv.conf naming only its loopback
                   (both bind-mounted in its own mount namespace)

Each node has an anchor process (``sleep infinity`` run by ``unshare --uts --mount``); everything
on the node (``ray start``, the driver, ``qvdoctor diagnose``) runs through ``nsenter`` into the
anchor's namespaces, so a node behaves like a separate machine: its own NIC names, addresses,
hostname, /etc/hosts and bind-mounted model directory. ``ray start`` runs with ``--temp-dir`` per
node, ``--num-cpus 1``, a 80 MB object store, no dashboard and usage stats off.

Teardown kills exactly the processes inside the node namespaces (``ip netns pids``), never by
name, then deletes the namespaces; :func:`cleanup_stale` does the same for namespaces left by a
killed run (name prefix ``qvc``). Run ``python tests/cluster/netns.py --cleanup`` by hand if needed.
"""

from __future__ import annotations

import atexit
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "qvc"
SUBNET = "10.213.0"
NIC_NAMES = ("ens5", "enp134s0f0", "eth0", "ens3f1", "enp6s0", "eno1", "ens7", "enp1s0")
ROOT = Path(__file__).resolve().parents[2]
PYTHON = Path(sys.executable)
RAY = PYTHON.parent / "ray"
RAY_PORT = 6379


_WARMED = False


def pycache_dir() -> Path:
    """A bytecode cache for the nodes' Python processes (PYTHONPYCACHEPREFIX), kept across runs:
    /tmp/qvc-pycache-UID if it is a directory of ours that nobody else can write, else a new one."""
    path = Path(f"/tmp/qvc-pycache-{os.geteuid()}")
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        st = os.lstat(path)
        if not (os.path.isdir(path) and not os.path.islink(path) and st.st_uid == os.geteuid() and not st.st_mode & 0o022):
            import tempfile

            return Path(tempfile.mkdtemp(prefix="qvc-pycache-"))
    return path


def sh(*args: str, check: bool = True, timeout: float = 30, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=check, capture_output=True, text=True, timeout=timeout, input=input)


def netns_pids(ns: str) -> list[int]:
    out = sh("ip", "netns", "pids", ns, check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def kill_namespace(ns: str) -> None:
    """SIGTERM then SIGKILL every process inside ``ns`` (processes this bed started), then delete it."""
    for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
        pids = netns_pids(ns)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + wait
        while time.time() < deadline and netns_pids(ns):
            time.sleep(0.1)
    sh("ip", "netns", "del", ns, check=False)


def cleanup_stale(prefix: str = PREFIX) -> list[str]:
    """Remove every namespace named ``<prefix>...`` (left behind by a killed run)."""
    names = [line.split()[0] for line in sh("ip", "netns", "list", check=False).stdout.splitlines() if line.startswith(prefix)]
    for ns in names:
        kill_namespace(ns)
    return names


@dataclass
class Node:
    index: int
    ns: str
    nic: str
    ip: str
    hostname: str
    home: Path  # this node's own directory (ray temp dir, hosts file, logs)
    anchor: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=dict)  # the raylet's extra environment
    ray_args: list[str] = field(default_factory=list)

    @property
    def enter(self) -> list[str]:
        assert self.anchor is not None
        return ["nsenter", "-t", str(self.anchor.pid), "-n", "-u", "-m", "--"]

    def cmd(self, argv: list[str], env: dict[str, str] | None = None) -> list[str]:
        """``argv`` as run on this node (its namespaces, ``env`` added)."""
        extra = [f"{k}={v}" for k, v in (env or {}).items()]
        return [*self.enter, "env", *extra, *argv]

    def run(self, argv: list[str], env: dict[str, str] | None = None, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run(self.cmd(argv, env), capture_output=True, text=True, timeout=timeout, check=check)

    def ray_pids(self) -> list[int]:
        anchor = self.anchor.pid if self.anchor else None
        return [p for p in netns_pids(self.ns) if p != anchor]


class NetnsCluster:
    """``with NetnsCluster(3, tmp) as c: c.start_ray()``; ``c.nodes[0]`` is the head."""

    def __init__(self, n: int, workdir: Path, *, nics: tuple[str, ...] = NIC_NAMES, run_id: str | None = None,
                 bytecode: bool = True):
        self.run_id = run_id or uuid.uuid4().hex[:5]
        # bytecode: the nodes' Python processes read and write compiled modules in pycache_dir(),
        # as on a machine whose packages were installed with their .pyc files (pip's default).
        # The test venv is installed by uv without bytecode and this environment may set
        # PYTHONDONTWRITEBYTECODE, so without it every Ray worker compiles Ray's and torch's
        # sources again on import (about half of torch's import time)
        self.pycache = pycache_dir() if bytecode else None
        self.workdir = Path(workdir)
        self.switch = f"{PREFIX}{self.run_id}sw"
        self.nodes = [
            Node(i, f"{PREFIX}{self.run_id}n{i}", nics[i % len(nics)], f"{SUBNET}.{i + 1}", f"node{i}", self.workdir / f"node{i}")
            for i in range(n)
        ]
        self._closed = False

    # -- network -------------------------------------------------------------------------------
    def create(self) -> "NetnsCluster":
        atexit.register(self.close)
        sh("ip", "netns", "add", self.switch)
        sw = ["ip", "netns", "exec", self.switch]
        sh(*sw, "ip", "link", "add", "br0", "type", "bridge")
        sh(*sw, "ip", "link", "set", "br0", "up")
        hosts = "127.0.0.1 localhost\n" + "".join(f"{n.ip} {n.hostname}\n" for n in self.nodes)
        for node in self.nodes:
            self.add_node_namespace(node, hosts)
        return self

    def add_node_namespace(self, node: Node, hosts: str) -> None:
        sh("ip", "netns", "add", node.ns)
        sw = ["ip", "netns", "exec", self.switch]
        port = f"p{node.index}"
        # create the pair in the switch namespace, then move the node end and rename it
        sh(*sw, "ip", "link", "add", port, "type", "veth", "peer", "name", f"v{node.index}")
        sh(*sw, "ip", "link", "set", f"v{node.index}", "netns", node.ns)
        sh(*sw, "ip", "link", "set", port, "master", "br0", "up")
        ex = ["ip", "netns", "exec", node.ns]
        sh(*ex, "ip", "link", "set", f"v{node.index}", "name", node.nic)
        sh(*ex, "ip", "addr", "add", f"{node.ip}/24", "dev", node.nic)
        sh(*ex, "ip", "link", "set", node.nic, "up")
        sh(*ex, "ip", "link", "set", "lo", "up")
        # a default route like a real machine's (vLLM's get_ip() follows it); nothing answers
        # at .254 and the switch namespace has no uplink, so no packet leaves the namespaces
        sh(*ex, "ip", "route", "add", "default", "via", f"{SUBNET}.254", "dev", node.nic)
        node.home.mkdir(parents=True, exist_ok=True)
        (node.home / "hosts").write_text(hosts)
        self.start_anchor(node)

    def start_anchor(self, node: Node) -> None:
        # /etc/resolv.conf names a resolver on the node's own loopback, where nothing listens: a
        # lookup that misses /etc/hosts fails at once, as on a machine without DNS, instead of
        # sending queries towards the host's resolver (unreachable from here: each lookup would
        # hang ~6 s, e.g. torch.distributed's reverse lookup of every rendezvous socket)
        (node.home / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        script = (f"hostname {node.hostname} && mount --bind {shlex.quote(str(node.home / 'hosts'))} /etc/hosts"
                  f" && mount --bind {shlex.quote(str(node.home / 'resolv.conf'))} /etc/resolv.conf"
                  " && exec sleep infinity")
        node.anchor = subprocess.Popen(
            ["ip", "netns", "exec", node.ns, "unshare", "--uts", "--mount", "--propagation", "private", "--fork",
             "sh", "-c", script], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # the anchor is the forked child of unshare (the sleep); wait until it runs the new hostname
        deadline = time.time() + 10
        while time.time() < deadline:
            kids = sh("pgrep", "-P", str(node.anchor.pid), check=False).stdout.split()
            if kids:
                pid = int(kids[0])
                if Path(f"/proc/{pid}/comm").read_text().strip() == "sleep":
                    node.anchor = _Pid(pid)  # type: ignore[assignment]
                    return
            time.sleep(0.05)
        raise RuntimeError(f"node {node.index}: anchor process did not start")

    def set_hosts(self, node: Node, text: str) -> None:
        """Rewrite a node's /etc/hosts (bind-mounted file: write in place, keep the inode)."""
        with open(node.home / "hosts", "r+") as fh:
            fh.seek(0)
            fh.write(text)
            fh.truncate()

    def add_nic(self, node: Node, name: str, ip: str, default_route: bool = False) -> None:
        """A second NIC on ``node`` (a veth pair whose peer stays in the node, as no dummy module
        may be loadable); with ``default_route`` the default route uses it, as on a multi-NIC host
        whose default route is not the cluster network."""
        ex = ["ip", "netns", "exec", node.ns]
        sh(*ex, "ip", "link", "add", name, "type", "veth", "peer", "name", f"{name}p")
        sh(*ex, "ip", "addr", "add", f"{ip}/24", "dev", name)
        sh(*ex, "ip", "link", "set", f"{name}p", "up")
        sh(*ex, "ip", "link", "set", name, "up")
        if default_route:
            gw = ip.rsplit(".", 1)[0] + ".254"
            sh(*ex, "ip", "route", "replace", "default", "via", gw, "dev", name)

    def del_nic(self, node: Node, name: str) -> None:
        ex = ["ip", "netns", "exec", node.ns]
        sh(*ex, "ip", "link", "del", name, check=False)
        sh(*ex, "ip", "route", "replace", "default", "via", f"{SUBNET}.254", "dev", node.nic, check=False)

    def bind(self, node: Node, source: Path, target: Path) -> None:
        """Bind-mount ``source`` over ``target`` on this node only (its own mount namespace)."""
        node.run(["mount", "--bind", str(source), str(target)], check=True, timeout=10)

    # -- Ray -----------------------------------------------------------------------------------
    def base_env(self) -> dict[str, str]:
        env = {
            "PYTHONPATH": str(ROOT),
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_DEDUP_LOGS": "0",
            "PATH": f"{PYTHON.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        }
        if self.pycache is not None:
            env["PYTHONPYCACHEPREFIX"] = str(self.pycache)
            env["PYTHONDONTWRITEBYTECODE"] = ""  # empty: unset for Python
        return env

    def warm_bytecode(self) -> None:
        """Compile what the nodes import (torch.distributed, Ray, qvdoctor) into the bytecode
        cache once per process, outside any timing, so that nodes do not all compile them at once."""
        global _WARMED
        if self.pycache is None or _WARMED:
            return
        _WARMED = True
        code = "import torch.distributed, ray, ray.util.scheduling_strategies, qvdoctor.cli, qvdoctor.cluster.collect, qvdoctor.cluster.nodefacts, qvdoctor.cluster.netprobe, qvdoctor.facts.gather"
        subprocess.run([str(PYTHON), "-c", code], env={**os.environ, **self.base_env()}, capture_output=True, timeout=300)

    def ray_start(self, node: Node, timeout: float = 90) -> None:
        head = self.nodes[0]
        gpus = [] if "--num-gpus" in node.ray_args else ["--num-gpus", "0"]
        argv = [str(RAY), "start", "--node-ip-address", node.ip, "--num-cpus", "1", *gpus,
                "--object-store-memory", str(80 * 1024 * 1024), "--disable-usage-stats",
                "--temp-dir", str(node.home / "ray"), *node.ray_args]
        if node is head:
            argv += ["--head", "--port", str(RAY_PORT), "--include-dashboard=false"]
        else:
            argv += ["--address", f"{head.ip}:{RAY_PORT}"]
        env = {**self.base_env(), **node.env}
        out = node.run(argv, env=env, timeout=timeout)
        (node.home / "ray-start.log").write_text(out.stdout + out.stderr)
        if out.returncode != 0:
            raise RuntimeError(f"ray start on node {node.index} failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")

    def start_ray(self) -> "NetnsCluster":
        """The head first, then the workers two at a time (more at once overloads a 2-core GCS:
        "The current node timed out during startup"); one retry per node."""
        from concurrent.futures import ThreadPoolExecutor

        self.ray_start(self.nodes[0])

        def start(node: Node) -> None:
            try:
                self.ray_start(node)
            except RuntimeError:
                self.stop_ray(node)
                self.ray_start(node)

        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(start, self.nodes[1:]))
        self.wait_nodes(len(self.nodes))
        return self

    def stop_ray(self, node: Node) -> None:
        """Kill every process on the node except its anchor (like pulling a machine's plug)."""
        for pid in node.ray_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.time() + 5
        while time.time() < deadline and node.ray_pids():
            time.sleep(0.1)

    def restart_ray(self, node: Node) -> None:
        self.stop_ray(node)
        self.ray_start(node)

    def stop_all(self) -> None:
        for node in reversed(self.nodes):
            self.stop_ray(node)

    def alive_nodes(self) -> int:
        code = ("import ray,sys; ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False);"
                "print(sum(1 for n in ray.nodes() if n['Alive']))")
        head = self.nodes[0]
        out = head.run([str(PYTHON), "-c", code, f"{head.ip}:{RAY_PORT}"], env=self.base_env(), timeout=60)
        try:
            return int(out.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return -1

    def wait_nodes(self, n: int, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.alive_nodes() == n:
                return
            time.sleep(1)
        raise RuntimeError(f"the Ray cluster did not reach {n} live nodes")

    def qvdoctor(self, node: Node, args: list[str], env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
        """``python -m qvdoctor ARGS`` on ``node``."""
        return node.run([str(PYTHON), "-m", "qvdoctor", *args], env={**self.base_env(), **(env or {})}, timeout=timeout)

    # -- teardown ------------------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for node in self.nodes:
            kill_namespace(node.ns)
        kill_namespace(self.switch)

    def __enter__(self) -> "NetnsCluster":
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Pid:
    """The anchor's pid (the sleep inside the new namespaces), shaped like Popen for ``.pid``."""

    def __init__(self, pid: int):
        self.pid = pid


if __name__ == "__main__":
    if "--cleanup" in sys.argv:
        print("removed:", " ".join(cleanup_stale()) or "nothing")
