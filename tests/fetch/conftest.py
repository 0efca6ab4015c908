"""Fixtures for the fetch tests: loopback emulators, a clean client environment (every endpoint
on 127.0.0.1, no tokens, no proxies, small chunks so multi-connection paths run on small files),
and helpers to run the CLI in-process or as a real process."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fetch.emu.hf import HubServer
from fetch.emu.ms import MsServer
from fetch.emu.repo import build_repo

DEAD = "http://127.0.0.1:9"  # discard port: connection refused, never leaves the machine

REPO_ID = "Qwen/Tiny-VL"
CONTENTS = {
    "config.json": b'{"model_type": "qwen2_5_vl", "hidden_size": 128}\n',
    "model-00001-of-00002.safetensors": 1_000_000,
    "model-00002-of-00002.safetensors": 600_000,
    "tokenizer/tokenizer.json": 40_000,
    "README.md": b"# tiny\n",
    "empty.txt": b"",
}


def sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def client_env(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("home")
    for k in list(os.environ):
        if k.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy") or k.startswith(("HF_", "MODELSCOPE_", "QVDOCTOR_")):
            monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("MODELSCOPE_CACHE", str(home / "ms"))
    monkeypatch.setenv("MODELSCOPE_HOME", str(home / ".modelscope"))
    monkeypatch.setenv("MODELSCOPE_DOWNLOAD_INTRA_CLOUD", "false")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_UPDATE_CHECK", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_ENDPOINT", DEAD)
    monkeypatch.setenv("QVDOCTOR_HF_MIRROR_ENDPOINT", DEAD)
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", DEAD)
    monkeypatch.setenv("QVDOCTOR_GIT_ENDPOINT", DEAD)
    monkeypatch.setenv("QVDOCTOR_FETCH_CHUNK_BYTES", str(128 * 1024))
    monkeypatch.setenv("QVDOCTOR_FETCH_BACKOFF", "0.01")
    monkeypatch.setenv("QVDOCTOR_FETCH_STALL_TIMEOUT", "1.0")
    monkeypatch.setenv("QVDOCTOR_PROBE_TIMEOUT", "10")
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    yield


@pytest.fixture
def tiny_repo():
    return build_repo(REPO_ID, CONTENTS)


@pytest.fixture
def hub(tiny_repo, monkeypatch):
    server = HubServer([tiny_repo]).start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    yield server
    server.stop()


@pytest.fixture
def ms(tiny_repo, monkeypatch):
    repo = build_repo(REPO_ID, CONTENTS, branch="master")
    server = MsServer([repo]).start()
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", server.url)
    yield server
    server.stop()


def run_cli(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m qvdoctor ...`` as a real process."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "qvdoctor", *args], cwd=ROOT, env=e, capture_output=True,
                          text=True, timeout=timeout)


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """The CLI in this process (fast): (exit code, stdout, stderr)."""
    from qvdoctor.cli import main

    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def read_pty(master: int, proc: subprocess.Popen, seconds: float = 60) -> str:
    """Everything a child wrote to its terminal (``master`` of ``pty.openpty()``) until it closed
    it, then wait for the child; the master is closed."""
    out = b""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=30)
    os.close(master)
    return out.decode("utf-8", "replace")


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def assert_tree_matches(local: Path, repo) -> None:
    """Every repo file is present with the right bytes, and nothing else outside .qvdoctor/."""
    for path, f in repo.files.items():
        assert sha256(local / path) == f.sha256, path
    on_disk = {str(p.relative_to(local)) for p in local.rglob("*") if p.is_file() and ".qvdoctor" not in p.parts}
    assert on_disk == set(repo.files), on_disk ^ set(repo.files)
