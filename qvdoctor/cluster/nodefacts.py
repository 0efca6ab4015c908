"""What one node of the cluster looks like from inside a Ray worker on it (runs there, as a task).

Everything is read from the worker process, so the environment is the raylet's environment as
every vLLM worker on that node will inherit it, not the shell of whoever runs ``qvdoctor``.
Stdlib only (plus :func:`qvdoctor.facts.gather`): no torch, no vLLM, no Ray imports here."""

from __future__ import annotations

import hashlib
import os
import resource
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qvdoctor.facts.system import relevant_env

EXTRA_DISTS = {"nccl": ("nvidia-nccl-cu12", "nvidia-nccl-cu13", "nvidia-nccl-cu11")}
FINGERPRINT_BYTES = 1 << 20  # sha256 of the first and last MiB of every file, plus its size


@dataclass
class Nic:
    name: str
    addrs: list[str] = field(default_factory=list)  # IPv4 and IPv6 addresses, without prefix length
    up: bool = True


@dataclass
class ModelFiles:
    """The model directory as this node sees it: per file, size and a fingerprint."""

    path: str
    exists: bool
    files: dict[str, list] = field(default_factory=dict)  # rel path -> [size, fingerprint]
    error: str | None = None


@dataclass
class NodeFacts:
    hostname: str = ""
    hostname_addrs: list[str] = field(default_factory=list)  # what the hostname resolves to here
    nics: list[Nic] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # redacted, as workers inherit it
    vllm_ip: str = ""  # vllm.utils.network_utils.get_ip() on this node
    vllm_ip_how: str = ""
    python: str = ""
    versions: dict[str, str] = field(default_factory=dict)  # ray, vllm, torch, transformers, nccl, python
    shm_bytes: int | None = None
    shm_free_bytes: int | None = None
    mem_available_bytes: int | None = None
    ib_devices: list[str] = field(default_factory=list)
    memlock_soft: int | None = None  # -1 = unlimited
    cap_ipc_lock: bool | None = None
    model: ModelFiles | None = None
    facts: dict[str, Any] = field(default_factory=dict)  # qvdoctor.facts.Facts.to_dict()
    free_port: int | None = None  # a free TCP port here (rank 0's Gloo rendezvous, if this is rank 0)
    seconds: float = 0.0
    timing: dict[str, Any] = field(default_factory=dict)  # proc_stamp() at the task's start and end

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def proc_stamp() -> dict[str, Any]:
    """Where this process stands: pid, wall clock, its CPU seconds so far (user+sys, from its
    start: a fresh Ray worker's start-up is in the first stamp) and when it started."""
    t = os.times()
    out: dict[str, Any] = {"pid": os.getpid(), "t": round(time.time(), 3), "cpu": round(t.user + t.system, 3)}
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rpartition(")")[2].split()[19])
        btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime"))
        out["proc_start"] = round(btime + start_ticks / os.sysconf("SC_CLK_TCK"), 2)
    except (OSError, ValueError, IndexError, StopIteration):
        pass
    return out


def read_nics() -> list[Nic]:
    """Interfaces and all their addresses: ``ip -j addr`` where iproute2 exists, else the
    kernel's interface list with each one's primary IPv4 address (``SIOCGIFADDR``)."""
    import json
    import shutil
    import subprocess

    if shutil.which("ip"):
        try:
            out = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True, timeout=5).stdout
            return [Nic(i["ifname"], [a["local"] for a in i.get("addr_info", []) if a.get("scope") != "link"],
                        "UP" in i.get("flags", [])) for i in json.loads(out)]
        except (OSError, ValueError, KeyError, subprocess.TimeoutExpired):
            pass
    import fcntl
    import struct

    nics = []
    for _, name in socket.if_nameindex():
        nic = Nic(name)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                raw = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))
                nic.addrs.append(socket.inet_ntoa(raw[20:24]))
            except OSError:
                pass
        nics.append(nic)
    return nics


def vllm_get_ip(environ: dict[str, str] | None = None) -> tuple[str, str]:
    """vLLM's ``get_ip()`` (vllm/utils/network_utils.py, 0.6-0.32): VLLM_HOST_IP, else the
    source address of a UDP socket "connected" to 8.8.8.8 (the default route), else IPv6, else
    0.0.0.0. Returns (ip, how)."""
    environ = os.environ if environ is None else environ
    if environ.get("VLLM_HOST_IP"):
        return environ["VLLM_HOST_IP"], "VLLM_HOST_IP"
    for family, target in ((socket.AF_INET, ("8.8.8.8", 80)), (socket.AF_INET6, ("2001:4860:4860::8888", 80))):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect(target)
                return s.getsockname()[0], "default route"
        except OSError:
            continue
    return "0.0.0.0", "no default route (vLLM falls back to 0.0.0.0)"


def resolve_hostname(name: str) -> list[str]:
    try:
        return sorted({info[4][0] for info in socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)})
    except OSError:
        return []


def _versions(facts: dict[str, Any]) -> dict[str, str]:
    from importlib import metadata

    out = {name: pkg["version"] for name, pkg in facts.get("packages", {}).items()}
    for name, dists in EXTRA_DISTS.items():
        for dist in dists:
            try:
                out[name] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    out["python"] = facts.get("system", {}).get("python", "")
    return out


def _statvfs(path: str) -> tuple[int | None, int | None]:
    try:
        st = os.statvfs(path)
    except OSError:
        return None, None
    return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize


def _meminfo(key: str) -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _cap_ipc_lock() -> bool | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) & (1 << 14))
    except (OSError, ValueError):
        pass
    return None


def fingerprint(path: Path, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        h.update(fh.read(FINGERPRINT_BYTES))
        if size > FINGERPRINT_BYTES:
            fh.seek(max(FINGERPRINT_BYTES, size - FINGERPRINT_BYTES))
            h.update(fh.read(FINGERPRINT_BYTES))
    return h.hexdigest()[:16]


def model_files(spec: str) -> ModelFiles:
    """The model directory at ``spec`` (a path, or a repo id in this node's HF cache)."""
    path = Path(spec).expanduser()
    if not path.is_dir() and not spec.startswith(("/", ".", "~")):
        try:
            from qvdoctor.model.info import resolve_model_dir

            path = resolve_model_dir(spec)
        except Exception as exc:  # noqa: BLE001 - reported, the check goes on
            return ModelFiles(spec, False, error=str(exc))
    if not path.is_dir():
        return ModelFiles(str(path), False, error="no such directory")
    out = ModelFiles(str(path), True)
    try:
        for file in sorted(path.rglob("*")):
            rel = file.relative_to(path).as_posix()
            if rel.startswith(".") or not file.is_file():
                continue
            size = file.stat().st_size
            out.files[rel] = [size, fingerprint(file, size)]
    except OSError as exc:
        out.error = str(exc)
    return out


def prewarm_torch() -> None:
    """Import torch in the background (once per process): Ray runs the next task (the Gloo
    all-reduce) in this same worker process, which then finds it imported or under way. Never
    waited for here."""
    import importlib.util
    import sys
    import threading

    if "torch" in sys.modules or any(t.name == "qvdoctor-torch-prewarm" for t in threading.enumerate()):
        return
    if importlib.util.find_spec("torch") is not None:
        threading.Thread(target=lambda: __import__("torch"), daemon=True, name="qvdoctor-torch-prewarm").start()


def gather_node(model: str | None = None, torch_next: bool = False) -> dict[str, Any]:
    """All facts of the node this runs on, as a plain dict (it crosses Ray's object store).
    ``torch_next``: a Gloo all-reduce follows (2+ nodes), so start importing torch now, in
    parallel with the gather."""
    from qvdoctor.facts import gather

    stamp = proc_stamp()
    start = time.monotonic()
    if torch_next:
        prewarm_torch()
    facts = gather(probe=False).to_dict()
    host = socket.gethostname()
    shm_total, shm_free = _statvfs("/dev/shm")
    ip, how = vllm_get_ip()
    try:
        ib = sorted(os.listdir("/sys/class/infiniband"))
    except OSError:
        ib = []
    soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    env = relevant_env()
    for name in ("PYTHONPATH", "RAY_ADDRESS", "HOSTNAME"):
        if name in os.environ:
            env[name] = os.environ[name]
    node = NodeFacts(
        hostname=host,
        hostname_addrs=resolve_hostname(host),
        nics=read_nics(),
        env=env,
        vllm_ip=ip,
        vllm_ip_how=how,
        python=facts.get("system", {}).get("python", ""),
        versions=_versions(facts),
        shm_bytes=shm_total,
        shm_free_bytes=shm_free,
        mem_available_bytes=_meminfo("MemAvailable"),
        ib_devices=ib,
        memlock_soft=-1 if soft == resource.RLIM_INFINITY else soft,
        cap_ipc_lock=_cap_ipc_lock(),
        model=model_files(model) if model else None,
        facts=facts,
    )
    from qvdoctor.cluster.netprobe import free_port

    node.free_port = free_port()
    node.seconds = round(time.monotonic() - start, 3)
    node.timing = {"start": stamp, "end": proc_stamp()}
    return node.to_dict()
