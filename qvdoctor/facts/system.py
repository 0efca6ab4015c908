"""System facts: nvcc, /dev/shm, container, memory and the environment variables that matter."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

from qvdoctor.facts.snapshot import SystemFacts

ENV_PREFIXES = ("VLLM_", "NCCL_", "GLOO_", "HF_", "HUGGING_FACE_", "MODELSCOPE_", "CUDA_", "TORCH_", "NVIDIA_", "XFORMERS_")
ENV_NAMES = ("CUDA_VISIBLE_DEVICES", "PYTORCH_CUDA_ALLOC_CONF", "LD_LIBRARY_PATH", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
_SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSW|CREDENTIAL|AUTH|COOKIE", re.I)
_SECRET_VALUE = re.compile(r"\b(hf_[A-Za-z0-9]{10,}|ms-[A-Za-z0-9-]{10,}|[A-Za-z0-9_-]{32,})\b")
_URL_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
REDACTED = "<redacted>"


def redact_value(name: str, value: str) -> str:
    """Never keep a secret: token-like names are dropped whole, token-like values masked."""
    if _SECRET_NAME.search(name):
        return REDACTED
    value = _URL_USERINFO.sub(REDACTED + "@", value)
    return _SECRET_VALUE.sub(REDACTED, value)


def relevant_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    environ = dict(os.environ if environ is None else environ)
    return {
        k: redact_value(k, v)
        for k, v in sorted(environ.items())
        if k.startswith(ENV_PREFIXES) or k in ENV_NAMES
    }


def nvcc_version() -> str | None:
    nvcc = shutil.which("nvcc") or ("/usr/local/cuda/bin/nvcc" if os.access("/usr/local/cuda/bin/nvcc", os.X_OK) else None)
    if not nvcc:
        return None
    try:
        out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"release (\d+\.\d+)", out)
    return match.group(1) if match else None


def shm_bytes(path: str = "/dev/shm") -> int | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_blocks * st.f_frsize


def container_evidence() -> str | None:
    for marker in ("/.dockerenv", "/run/.containerenv"):
        if os.path.exists(marker):
            return f"{marker} exists"
    try:
        cgroup = Path("/proc/1/cgroup").read_text()
    except OSError:
        return None
    for word in ("docker", "kubepods", "containerd", "lxc", "podman"):
        if word in cgroup:
            return f"/proc/1/cgroup mentions {word}"
    return None


def memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def read_system() -> SystemFacts:
    evidence = container_evidence()
    return SystemFacts(
        os=f"{platform.system()} {platform.release()} {platform.machine()}",
        python=sys.version.split()[0],
        cpu_count=os.cpu_count(),
        memory_bytes=memory_bytes(),
        nvcc_version=nvcc_version(),
        shm_bytes=shm_bytes(),
        in_container=evidence is not None,
        container_evidence=evidence,
        env=relevant_env(),
    )
