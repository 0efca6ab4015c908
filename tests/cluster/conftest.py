"""One real 3-node Ray cluster in network namespaces (tests/cluster/netns.py), shared by the
module; torn down by the fixture's finalizer, atexit, and a cleanup of stale namespaces first."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.cluster.netns import NetnsCluster, cleanup_stale


def bed_missing() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "nsenter", "unshare"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if importlib.util.find_spec("ray") is None:
        return "ray is not installed (scripts/python-test-packages.txt)"
    probe = f"qvcprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


@pytest.fixture(scope="session")
def require_bed() -> None:
    why = bed_missing()
    if why is None:
        return
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


def make_cluster(n: int, request: pytest.FixtureRequest) -> NetnsCluster:
    cleanup_stale()
    workdir = Path(tempfile.mkdtemp(prefix="qvc", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    cluster = NetnsCluster(n, workdir)
    cluster.warm_bytecode()
    request.addfinalizer(lambda: (cluster.close(), shutil.rmtree(workdir, ignore_errors=True)))
    cluster.create()
    return cluster
