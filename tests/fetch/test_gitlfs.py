"""`qvdoctor fetch --source git-lfs` with the real git and git-lfs against git http-backend plus
the LFS batch API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from fetch.conftest import CONTENTS, REPO_ID, ROOT, assert_tree_matches, cli, run_cli, sha256
from fetch.emu.git import GitServer
from fetch.emu.repo import build_repo

GITATTR = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.json filter=lfs diff=lfs merge=lfs -text\n"


@pytest.fixture
def git_repo():
    return build_repo(REPO_ID, {**CONTENTS, ".gitattributes": GITATTR})


@pytest.fixture
def gitsrv(git_repo, tmp_path_factory, monkeypatch):
    server = GitServer(tmp_path_factory.mktemp("gitroot"), [git_repo]).start()
    monkeypatch.setenv("QVDOCTOR_GIT_ENDPOINT", server.url)
    yield server
    server.stop()


def test_fetch_with_git_lfs(gitsrv, git_repo, tmp_path, capsys):
    code, out, err = cli(capsys, "fetch", REPO_ID, "--source", "git-lfs", "--local-dir", str(tmp_path))
    assert code == 0, err
    assert_tree_matches(tmp_path, git_repo)
    m = json.loads((tmp_path / ".qvdoctor" / "manifest.json").read_text())
    assert m["source"] == "git-lfs" and m["commit"] == gitsrv.commits[REPO_ID]
    assert all(m["files"][p]["sha256"] == f.sha256 for p, f in git_repo.files.items())
    assert not (tmp_path / ".qvdoctor" / "git").exists() or not any((tmp_path / ".qvdoctor" / "git").iterdir())
    assert any("/lfs-objects/" in p for _, p, _ in gitsrv.requests)  # bytes came through the LFS batch API
    assert cli(capsys, "verify", str(tmp_path))[0] == 0


def test_git_lfs_errors_and_include(gitsrv, git_repo, tmp_path, capsys):
    code, _, err = cli(capsys, "fetch", "Qwen/Nope", "--source", "git-lfs", "--local-dir", str(tmp_path / "a"))
    assert code == 3 and err.startswith("error: repository Qwen/Nope not found on git-lfs")
    code, _, err = cli(capsys, "fetch", REPO_ID, "--source", "git-lfs", "--revision", "v9", "--local-dir", str(tmp_path / "b"))
    assert code == 3 and err.startswith("error: revision 'v9' not found")
    code, _, err = cli(capsys, "fetch", REPO_ID, "--source", "git-lfs", "--include", "model-00002*", "--local-dir", str(tmp_path / "c"))
    assert code == 0, err
    assert [p.name for p in (tmp_path / "c").iterdir() if p.name != ".qvdoctor"] == ["model-00002-of-00002.safetensors"]


def test_git_lfs_survives_dropped_connections(gitsrv, git_repo, tmp_path, capsys, monkeypatch):
    for k, v in {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "lfs.transfer.maxretrydelay", "GIT_CONFIG_VALUE_0": "1"}.items():
        monkeypatch.setenv(k, v)  # git-lfs retries on its own; keep its backoff short in tests
    gitsrv.faults.update(drop_p=0.5, seed=11)
    code, _, err = cli(capsys, "fetch", REPO_ID, "--source", "git-lfs", "--local-dir", str(tmp_path))
    assert code == 0, err
    assert_tree_matches(tmp_path, git_repo)


def test_git_lfs_resumes_after_kill_9(tmp_path_factory, tmp_path, monkeypatch):
    repo = build_repo("Qwen/Big", {"weights.safetensors": 2_000_000, ".gitattributes": GITATTR})
    server = GitServer(tmp_path_factory.mktemp("gitroot"), [repo]).start()
    server.faults.update(rate=500_000)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QVDOCTOR_GIT_ENDPOINT": server.url}
    d = tmp_path / "big"
    try:
        proc = subprocess.Popen([sys.executable, "-m", "qvdoctor", "fetch", "Qwen/Big", "--source", "git-lfs",
                                 "--local-dir", str(d)], cwd=ROOT, env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while server.body_bytes < 800_000 and time.time() < deadline:
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)  # qvdoctor and its git-lfs child, like a power cut
        proc.wait()
        first = server.body_bytes
        assert 600_000 < first < 2_000_000
        assert not (d / "weights.safetensors").exists()
        server.faults.update(rate=0)
        r = run_cli("fetch", "Qwen/Big", "--source", "git-lfs", "--local-dir", str(d), env={"QVDOCTOR_GIT_ENDPOINT": server.url})
        assert r.returncode == 0, r.stderr
        assert sha256(d / "weights.safetensors") == repo.files["weights.safetensors"].sha256
        assert server.body_bytes < 2_000_000 + 600_000, server.body_bytes  # resumed, not restarted
        assert any(rng.startswith("bytes=") and not rng.startswith("bytes=0-") for _, _, rng in server.requests)
    finally:
        server.stop()


def test_symlink_in_the_repo_is_refused(tmp_path_factory, tmp_path, monkeypatch, capsys):
    repo = build_repo("Evil/Links", {"config.json": b"{}"})
    server = GitServer(tmp_path_factory.mktemp("gitroot"))
    server.add(repo, symlinks={"model.safetensors": "/etc/passwd"})
    server.start()
    monkeypatch.setenv("QVDOCTOR_GIT_ENDPOINT", server.url)
    try:
        code, _, err = cli(capsys, "fetch", "Evil/Links", "--source", "git-lfs", "--local-dir", str(tmp_path / "m"))
        assert code == 3 and "symlink" in err
        assert not (tmp_path / "m" / "model.safetensors").exists()
        assert not (tmp_path / "m" / "model.safetensors").is_symlink()
    finally:
        server.stop()


def test_git_lfs_never_trusts_a_file_edited_in_place(gitsrv, git_repo, tmp_path, capsys):
    """Same rule as the HTTP sources: a byte flipped with size and mtime restored is hashed,
    found wrong and fetched again; --verify-all re-hashes the rest without fetching them."""
    assert cli(capsys, "fetch", REPO_ID, "--source", "git-lfs", "--local-dir", str(tmp_path))[0] == 0
    p = tmp_path / "model-00002-of-00002.safetensors"
    st = p.stat()
    with open(p, "r+b") as f:
        f.seek(99)
        b = f.read(1)
        f.seek(99)
        f.write(bytes([b[0] ^ 1]))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    code, out, err = cli(capsys, "fetch", REPO_ID, "--source", "git-lfs", "--local-dir", str(tmp_path), "--json")
    assert code == 0, err
    done = [json.loads(line) for line in out.splitlines() if '"done"' in line][-1]
    assert done["unchanged"] == len(git_repo.files) - 1 and done["present"] == len(git_repo.files) - 1
    assert_tree_matches(tmp_path, git_repo)
    code, out, err = cli(capsys, "fetch", REPO_ID, "--source", "git-lfs", "--local-dir", str(tmp_path), "--json", "--verify-all")
    done = [json.loads(line) for line in out.splitlines() if '"done"' in line][-1]
    assert code == 0 and done["unchanged"] == 0 and done["hashed"] == len(git_repo.files) and done["transferred"] == 0
