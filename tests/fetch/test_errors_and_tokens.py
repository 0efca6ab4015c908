"""One-line errors for the mistakes users make, and tokens that never leak."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fetch.conftest import CONTENTS, REPO_ID, assert_tree_matches, cli, run_cli, sha256
from fetch.emu.hf import HubServer
from fetch.emu.repo import build_repo

TOKEN = "hf_SECRETtoken0123456789abcdefXYZ"


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert len(lines) <= 2 and all(line.startswith(("error: ", "hint: ")) for line in lines), err
    return lines[0]


@pytest.mark.parametrize("bad", ["Qwen", "Qwen/Qwen2.5/VL", "../etc", "Qwen/ bad", "https://huggingface.co/Qwen/x"])
def test_malformed_repo_id(bad, capsys, tmp_path):
    code, _, err = cli(capsys, "fetch", bad, "--local-dir", str(tmp_path))
    assert code == 3
    assert "is not a repo id" in one_line_error(err)


def test_repo_not_found(hub, capsys, tmp_path):
    code, _, err = cli(capsys, "fetch", "Qwen/Does-Not-Exist", "--source", "hf", "--local-dir", str(tmp_path))
    assert code == 3
    assert "repository Qwen/Does-Not-Exist not found on hf" in one_line_error(err)


def test_missing_revision(hub, capsys, tmp_path):
    code, _, err = cli(capsys, "fetch", REPO_ID, "--source", "hf", "--revision", "v9.9", "--local-dir", str(tmp_path))
    assert code == 3
    assert "revision 'v9.9' not found in Qwen/Tiny-VL" in one_line_error(err)


def test_unreachable_source(capsys, tmp_path):
    code, _, err = cli(capsys, "fetch", REPO_ID, "--source", "hf", "--local-dir", str(tmp_path))
    assert code == 3
    assert "cannot reach hf" in one_line_error(err)


@pytest.fixture
def gated_hub(monkeypatch):
    repo = build_repo("meta-llama/Gated-VL", CONTENTS, gated=True)
    server = HubServer([repo], tokens={TOKEN}).start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    yield server, repo
    server.stop()


def test_gated_repo_without_token(gated_hub, capsys, tmp_path):
    code, _, err = cli(capsys, "fetch", "meta-llama/Gated-VL", "--source", "hf", "--local-dir", str(tmp_path))
    assert code == 3
    assert "is gated" in one_line_error(err) and "HF_TOKEN" in err


def test_gated_repo_with_wrong_token(gated_hub, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    code, _, err = cli(capsys, "fetch", "meta-llama/Gated-VL", "--source", "hf", "--local-dir", str(tmp_path))
    assert code == 2
    assert "GatedRepo" in one_line_error(err)
    assert "hf_wrong" not in err


def test_token_reaches_the_hub_but_never_output_logs_or_manifest(gated_hub, tmp_path):
    server, repo = gated_hub
    d = tmp_path / "m"
    outputs = []
    for args in (["--json"], [], ["--dry-run"], ["--dry-run", "--json"]):
        r = run_cli("fetch", "meta-llama/Gated-VL", "--source", "hf", "--local-dir", str(d), *args,
                    env={"HF_TOKEN": TOKEN, "HF_ENDPOINT": server.url, "QVDOCTOR_DEBUG": "1"})
        assert r.returncode == 0, r.stderr
        outputs += [r.stdout, r.stderr]
    assert_tree_matches(d, repo)
    assert f"Bearer {TOKEN}" in server.seen_auth  # it was used...
    assert not any(a for a in server.cdn.seen_auth)  # ...but not sent to the other origin (CDN)
    written = [p.read_bytes() for p in d.rglob("*") if p.is_file()]
    for blob in outputs:
        assert TOKEN not in blob and TOKEN[3:20] not in blob
    for blob in written:
        assert TOKEN.encode() not in blob
    # A failing run must not leak it either.
    r = run_cli("fetch", "meta-llama/Nope", "--source", "hf", "--local-dir", str(tmp_path / "x"),
                env={"HF_TOKEN": TOKEN, "HF_ENDPOINT": server.url})
    assert r.returncode == 3 and TOKEN not in r.stdout + r.stderr


def test_login_token_file_is_used(gated_hub, tmp_path, monkeypatch, capsys):
    """`hf auth login` stores the token under HF_HOME; fetch finds it like huggingface_hub does."""
    server, repo = gated_hub
    import os

    token_path = Path(os.environ["HF_HOME"]) / "token"  # where `hf auth login` writes it
    token_path.parent.mkdir(parents=True, exist_ok=True)
    token_path.write_text(TOKEN)
    r = run_cli("fetch", "meta-llama/Gated-VL", "--source", "hf", "--local-dir", str(tmp_path / "m"))
    assert r.returncode == 0, r.stderr
    assert TOKEN not in r.stdout + r.stderr
    assert f"Bearer {TOKEN}" in server.seen_auth


def test_not_enough_disk_space_is_refused_before_downloading(monkeypatch, tmp_path, capsys):
    from fetch.emu.repo import EmuFile

    huge = EmuFile("model.safetensors", 1 << 50, "ab" * 32, "cd" * 20, True, b"")  # 1 PiB, listed only
    repo = build_repo("Qwen/Huge", {"model.safetensors": huge, "config.json": b"{}"})
    server = HubServer([repo]).start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    try:
        code, _, err = cli(capsys, "fetch", "Qwen/Huge", "--source", "hf", "--local-dir", str(tmp_path))
        assert code == 3
        assert "not enough disk space" in one_line_error(err)
        assert server.cdn.body_bytes == 0
    finally:
        server.stop()


def test_disk_full_mid_download(hub, tiny_repo, tmp_path, capsys):
    """A real full filesystem (a 2 MiB tmpfs): a clear error, nothing unverified under a final name."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        hub.faults.update(rate=40_000)
        import os
        import sys
        import time

        from fetch.conftest import ROOT

        env = {**os.environ, "PYTHONPATH": str(ROOT), "QVDOCTOR_FETCH_STALL_TIMEOUT": "5"}
        proc = subprocess.Popen([sys.executable, "-m", "qvdoctor", "fetch", REPO_ID, "--source", "hf", "--local-dir",
                                 str(mnt), "--include", "model-00001*"], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 20
        while not list(mnt.glob(".qvdoctor/partial/*.part")) and time.time() < deadline:
            time.sleep(0.02)
        with open(mnt / "filler", "wb", buffering=0) as f:  # another program takes the rest of the disk
            try:
                while True:
                    f.write(b"x" * 4096)
            except OSError:
                pass
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 3, err
        assert "disk full" in one_line_error(err)
        assert not (mnt / "model-00001-of-00002.safetensors").exists()
        (mnt / "filler").unlink()
        hub.faults.update(rate=0)
        code, _, err = cli(capsys, "fetch", REPO_ID, "--source", "hf", "--local-dir", str(mnt), "--include", "model-00001*")
        assert code == 0, err  # the same command finishes once space is back
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_source_that_always_corrupts_gives_up_with_nothing_under_the_final_name(hub, tiny_repo, tmp_path, capsys, monkeypatch):
    """Persistent corruption ends in exit 2 and a clear error after the retry budget, never a bad file."""
    monkeypatch.setenv("QVDOCTOR_FETCH_BACKOFF", "0.001")
    hub.faults.update(corrupt_p=1.0)
    try:
        code, out, err = cli(capsys, "fetch", REPO_ID, "--source", "hf", "--local-dir", str(tmp_path / "m"))
    finally:
        hub.faults.update(corrupt_p=0.0)
    assert code == 2
    assert "Traceback" not in err
    for path, f in tiny_repo.files.items():
        final = tmp_path / "m" / path
        assert not final.exists() or sha256(final) == f.sha256, path
