"""A broken install becomes a finding, never a traceback.

The tests put a fake site directory first on PYTHONPATH: a torch whose import raises or
segfaults, a truncated CUDA library, a distribution whose metadata is unreadable."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import run_qvdoctor


def fake_dist(site: Path, name: str, version: str | None, files: dict[str, bytes]) -> None:
    info = site / f"{name}-{version or '0'}.dist-info"
    info.mkdir(parents=True)
    if version is not None:
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    else:
        (info / "METADATA").write_bytes(b"\x00\xff garbage, no headers \xfe")
    record = []
    for rel, data in files.items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        record.append(f"{rel},,")
    (info / "RECORD").write_text("\n".join(record) + "\n")


def truncated_elf() -> bytes:
    return Path(shutil.which("ls") or "/bin/ls").read_bytes()[:200]


@pytest.mark.parametrize(
    "init, reason",
    [
        ("raise ImportError('libcudnn.so.9: cannot open shared object file')", "libcudnn.so.9: cannot open shared object file"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", "signal 11"),
    ],
)
def test_torch_that_fails_to_import_is_a_finding(tmp_path, init, reason):
    fake_dist(tmp_path, "torch", "2.9.0", {"torch/__init__.py": init.encode(), "torch/version.py": b"cuda = '12.8'\n"})
    result = run_qvdoctor("diagnose", "--probe", "--json", env={"PYTHONPATH": f"{tmp_path}:{Path(__file__).parent.parent}"})
    assert "Traceback" not in result.stderr
    data = result.json()
    (finding,) = [f for f in data["findings"] if f["id"] == "torch-import-fails"]
    assert finding["status"] == "fail"
    assert reason in finding["cause"]
    assert result.returncode == 2


def test_truncated_library_and_unreadable_metadata(tmp_path):
    fake_dist(tmp_path, "torch", "2.9.0", {"torch/lib/libtorch_cuda.so": truncated_elf(), "torch/version.py": b"cuda = '12.8'\n"})
    fake_dist(tmp_path, "xformers", None, {"xformers/__init__.py": b""})
    result = run_qvdoctor("diagnose", "--json", env={"PYTHONPATH": f"{tmp_path}:{Path(__file__).parent.parent}"})
    assert "Traceback" not in result.stderr
    data = result.json()
    libs = data["facts"]["libraries"]
    (lib,) = [x for x in libs if x["path"].endswith("libtorch_cuda.so")]
    assert lib["error"]
    (unreadable,) = [f for f in data["findings"] if f["id"] == "library-unreadable"]
    assert unreadable["status"] == "fail" and "libtorch_cuda.so" in unreadable["cause"]
    assert "pip install --force-reinstall" in unreadable["fix"]
    (meta,) = [f for f in data["findings"] if f["id"] == "package-metadata-broken"]
    assert meta["status"] == "fail" and "xformers" in meta["subject"]
    assert result.returncode == 2
