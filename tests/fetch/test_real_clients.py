"""The emulators are faithful enough for the real clients, unmodified: huggingface_hub's `hf
download`, the modelscope SDK's snapshot_download, git + git-lfs, and aria2c the way hfd.sh
drives it. If one of these breaks, the emulator drifted from the protocol, not qvdoctor."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fetch.conftest import CONTENTS, REPO_ID, assert_tree_matches
from fetch.emu.git import GitServer
from fetch.emu.repo import build_repo

BIN = Path(sys.executable).parent


def _env(**kw) -> dict:
    return {**os.environ, **kw}


def test_hf_download(hub, tiny_repo, tmp_path):
    hf = shutil.which("hf", path=str(BIN)) or shutil.which("hf")
    assert hf, "huggingface_hub's `hf` CLI is not installed"
    r = subprocess.run([hf, "download", REPO_ID, "--local-dir", str(tmp_path / "m")], env=_env(HF_ENDPOINT=hub.url),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    local = tmp_path / "m"
    shutil.rmtree(local / ".cache", ignore_errors=True)  # huggingface_hub's own metadata
    assert_tree_matches(local, tiny_repo)
    assert any(p.startswith("/repos/") for _, p, _ in hub.cdn.requests)  # followed the 302 to the CDN


def test_modelscope_snapshot_download(ms, tmp_path):
    code = ("import sys; from modelscope import snapshot_download; "
            "print(snapshot_download(sys.argv[1], local_dir=sys.argv[2]))")
    r = subprocess.run([sys.executable, "-c", code, REPO_ID, str(tmp_path / "m")],
                       env=_env(MODELSCOPE_ENDPOINT=ms.url, MODELSCOPE_DOWNLOAD_PARALLEL_WORKERS="4",
                                MODELSCOPE_DOWNLOAD_PARALLEL_THRESHOLD_MB="0", MODELSCOPE_DOWNLOAD_PART_SIZE_MB="1"),
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    local = tmp_path / "m"
    for junk in (".msc", ".mv", "._____temp", ".lock"):
        shutil.rmtree(local / junk, ignore_errors=True)
        if (local / junk).is_file():
            (local / junk).unlink()
    assert_tree_matches(local, ms.repos[REPO_ID])
    assert any(p.startswith("/oss/") for _, p, _ in ms.oss.requests)


def test_git_clone_with_lfs_smudge(tmp_path_factory, tmp_path):
    repo = build_repo(REPO_ID, {**CONTENTS, ".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.json filter=lfs diff=lfs merge=lfs -text\n"})
    server = GitServer(tmp_path_factory.mktemp("gitroot"), [repo]).start()
    try:
        env = _env(HOME=str(tmp_path / "home"))
        (tmp_path / "home").mkdir()
        subprocess.run(["git", "lfs", "install", "--skip-repo"], env=env, check=True, capture_output=True)
        r = subprocess.run(["git", "clone", f"{server.url}/{REPO_ID}", str(tmp_path / "m")], env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        shutil.rmtree(tmp_path / "m" / ".git")
        assert_tree_matches(tmp_path / "m", repo)
        assert any(p.endswith("/info/lfs/objects/batch") for _, p, _ in server.requests)
        assert any(p.startswith("/lfs-objects/") for _, p, _ in server.requests)
    finally:
        server.stop()


def test_aria2c_like_hfd(hub, tiny_repo, tmp_path):
    aria2c = shutil.which("aria2c")
    if not aria2c:
        pytest.fail("aria2c is not installed (apt-get install -y aria2)")
    urls = tmp_path / "aria2c_urls.txt"
    lines = []
    for path in tiny_repo.files:
        lines += [f"{hub.url}/{REPO_ID}/resolve/main/{path}", f" dir={tmp_path / 'm'}", f" out={path}"]
    urls.write_text("\n".join(lines) + "\n")
    r = subprocess.run([aria2c, "--console-log-level=error", "--file-allocation=none", "-x", "8", "-j", "5", "-s", "8",
                        "-k", "1M", "-c", "-i", str(urls), "--allow-overwrite=true", "--auto-file-renaming=false"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    # aria2c cannot create a zero-byte file from an empty body in every version; hfd has the same gap
    if not (tmp_path / "m" / "empty.txt").exists():
        (tmp_path / "m" / "empty.txt").write_bytes(b"")
    assert_tree_matches(tmp_path / "m", tiny_repo)
