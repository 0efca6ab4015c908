"""Fixtures for the image tests: nvcc-built stand-in libraries, the local Docker engine, the
test base image (scripts/make-test-base-image.sh) and stand-in wheelhouses."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .standins import FA_GENCODE, nvcc_library

ROOT = Path(__file__).resolve().parents[2]


def _nvcc() -> str | None:
    return shutil.which("nvcc") or ("/usr/local/bin/nvcc" if os.path.exists("/usr/local/bin/nvcc") else None)


@pytest.fixture(scope="session")
def standin_libs(tmp_path_factory) -> dict[str, Path]:
    """Real fatbin-carrying libraries: 'sm75' (the stand-in for torch / vLLM / xformers) and 'fa' (sm_80 only)."""
    nvcc = _nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found: it builds the stand-in CUDA libraries")
    out = tmp_path_factory.mktemp("standin-libs")
    return {
        "sm75": nvcc_library(out / "libstandin_sm75.so", ["-gencode", "arch=compute_75,code=sm_75"], nvcc),
        "fa": nvcc_library(out / "libstandin_fa.so", FA_GENCODE, nvcc),
    }


def _answers() -> bool:
    try:
        from qvdoctor.image.build import connect

        connect()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def docker_client():
    """A docker-py client; starts dockerd (no bridge) through scripts/start-dockerd.sh if needed."""
    if not _answers():
        if shutil.which("dockerd") is None:
            pytest.skip("dockerd is not installed (apt-get install docker.io)")
        proc = subprocess.run(["bash", str(ROOT / "scripts" / "start-dockerd.sh")], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            pytest.skip(f"dockerd could not start: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
        for line in proc.stdout.splitlines():
            if line.startswith("DOCKER_HOST="):
                os.environ["DOCKER_HOST"] = line.split("=", 1)[1]
    from qvdoctor.image.build import connect

    return connect()


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    """The local stand-in for nvidia/cuda (built once, cached by tag)."""
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "make-test-base-image.sh")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]
