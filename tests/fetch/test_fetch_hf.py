"""`qvdoctor fetch --source hf` and `qvdoctor verify` against the Hugging Face Hub emulator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from fetch.conftest import REPO_ID, ROOT, assert_tree_matches, cli, events, run_cli, sha256
from fetch.emu.hf import HubServer
from fetch.emu.repo import build_repo


def test_fetch_verifies_every_file_and_writes_manifest(hub, tiny_repo, tmp_path, capsys):
    code, out, err = cli(capsys, "fetch", REPO_ID, "--source", "hf", "--local-dir", str(tmp_path / "m"))
    assert code == 0, err
    assert_tree_matches(tmp_path / "m", tiny_repo)
    manifest = json.loads((tmp_path / "m" / ".qvdoctor" / "manifest.json").read_text())
    assert manifest["commit"] == tiny_repo.commit and manifest["source"] == "hf"
    assert manifest["endpoint"] == hub.url
    for path, f in tiny_repo.files.items():
        assert manifest["files"][path]["sha256"] == f.sha256
        assert manifest["files"][path]["size"] == f.size
    assert not list((tmp_path / "m" / ".qvdoctor" / "partial").glob("*.part"))
    assert "6 files verified" in out

    code, out, _ = cli(capsys, "verify", str(tmp_path / "m"))
    assert code == 0 and "6 ok, 0 missing, 0 changed" in out


def test_big_files_use_ranges_over_several_connections(hub, tiny_repo, tmp_path, capsys):
    code, _, err = cli(capsys, "fetch", REPO_ID, "--source", "hf", "--local-dir", str(tmp_path), "--connections", "4")
    assert code == 0, err
    big = tiny_repo.files["model-00001-of-00002.safetensors"]
    ranges = [r for m, p, r in hub.cdn.requests if big.sha256 in p]
    starts = sorted(int(r.split("=")[1].split("-")[0]) for r in ranges)
    assert len(starts) >= 7 and starts[0] == 0 and starts[1] == 128 * 1024  # 1 MB in 128 KiB chunks (the cap in tests)
    # The listing's small file was served by the hub itself, with the same Range protocol.
    assert any("config.json" in p for _, p, _ in hub.requests)


def test_rerun_transfers_nothing_and_verify_catches_changes(hub, tiny_repo, tmp_path, capsys):
    d = tmp_path / "m"
    assert cli(capsys, "fetch", REPO_ID, "--source", "hf", "--local-dir", str(d))[0] == 0
    before = hub.body_bytes_total
    code, out, _ = cli(capsys, "fetch", REPO_ID, "--source", "hf", "--local-dir", str(d), "--json")
    assert code == 0
    assert hub.body_bytes_total == before
    done = [e for e in events(out) if e["event"] == "done"][0]
    assert done["present"] == 6 and done["transferred"] == 0

    p = d / "model-00002-of-00002.safetensors"
    data = bytearray(p.read_bytes())
    data[1000] ^= 1
    p.write_bytes(bytes(data))
    (d / "README.md").unlink()
    code, out, _ = cli(capsys, "verify", str(d))
    assert code == 2
    assert "changed  model-00002-of-00002.safetensors" in out and "missing  README.md" in out

    # fetch repairs exactly what verify flagged
    code, _, _ = cli(capsys, "fetch", REPO_ID, "--source", "hf", "--local-dir", str(d))
    assert code == 0
    assert_tree_matches(d, tiny_repo)


def test_dry_run_include_exclude(hub, tmp_path, capsys):
    code, out, _ = cli(capsys, "fetch", REPO_ID, "--source", "hf", "--local-dir", str(tmp_path / "m"), "--dry-run",
                       "--include", "*.safetensors", "--include", "tokenizer/", "--exclude", "model-00002*")
    assert code == 0
    assert "model-00001-of-00002.safetensors" in out and "tokenizer/tokenizer.json" in out
    assert "model-00002-of" not in out and "config.json" not in out
    assert not (tmp_path / "m").exists()


def test_selected_files_only(hub, tiny_repo, tmp_path, capsys):
    code, _, _ = cli(capsys, "fetch", REPO_ID, "--source", "hf", "--local-dir", str(tmp_path), "--include", "*.json")
    assert code == 0
    got = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file() and ".qvdoctor" not in p.parts)
    assert got == ["config.json", "tokenizer/tokenizer.json"]


def test_revision_tag_and_commit(tiny_repo, tmp_path, capsys, monkeypatch):
    tiny_repo.tags["v1"] = tiny_repo.commit
    hub = HubServer([tiny_repo], resolve_cache=True).start()  # regular files via a relative 307
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    try:
        for rev in ("v1", tiny_repo.commit):
            d = tmp_path / rev
            code, _, err = cli(capsys, "fetch", REPO_ID, "--source", "hf", "--revision", rev, "--local-dir", str(d))
            assert code == 0, err
            m = json.loads((d / ".qvdoctor" / "manifest.json").read_text())
            assert m["commit"] == tiny_repo.commit and m["revision"] == rev
        assert any(p.startswith("/api/resolve-cache/") for _, p, _ in hub.requests)
    finally:
        hub.stop()


@pytest.mark.parametrize("mode", ["ignore_range", "drop_after", "corrupt_p", "lie_p", "burst_5xx", "stall_p"])
def test_each_fault_still_ends_verified(hub, tiny_repo, tmp_path, capsys, mode):
    faults = {"ignore_range": {"ignore_range": True}, "drop_after": {"drop_after": 70_000},
              "corrupt_p": {"corrupt_p": 0.3}, "lie_p": {"lie_p": 0.3}, "burst_5xx": {"burst_5xx": 8},
              "stall_p": {"stall_p": 0.2, "stall_s": 1.5}}[mode]
    hub.faults.update(seed=7, **faults)
    code, out, err = cli(capsys, "fetch", REPO_ID, "--source", "hf", "--local-dir", str(tmp_path), "--json")
    assert code == 0, err + out[-2000:]
    assert_tree_matches(tmp_path, tiny_repo)
    kinds = {e["event"] for e in events(out)}
    if mode != "ignore_range":
        assert "retry" in kinds  # the fault was seen and handled, not missed


def test_corruption_never_lands_under_the_final_name(hub, tiny_repo, tmp_path, capsys):
    hub.faults.update(corrupt_p=1.0)  # every body corrupted: nothing can verify
    code, out, err = cli(capsys, "fetch", REPO_ID, "--source", "hf", "--local-dir", str(tmp_path),
                         "--include", "model-00002*")
    assert code == 2
    assert "hash mismatch" in err and "error:" in err
    assert not (tmp_path / "model-00002-of-00002.safetensors").exists()


def test_kill_9_resumes_from_the_exact_byte(tiny_repo, tmp_path):
    big = build_repo("Qwen/Big", {"weights.safetensors": 3_000_000, "config.json": b"{}"})
    hub = HubServer([big]).start()
    hub.faults.update(rate=400_000)  # 400 KB/s per connection
    env = {"HF_ENDPOINT": hub.url, "QVDOCTOR_FETCH_CHUNK_BYTES": str(256 * 1024)}
    d = tmp_path / "big"
    try:
        e = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        proc = subprocess.Popen([sys.executable, "-m", "qvdoctor", "fetch", "Qwen/Big", "--source", "hf",
                                 "--local-dir", str(d), "--connections", "4"], cwd=ROOT, env=e,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while hub.body_bytes_total < 1_200_000 and time.time() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        sent_first = hub.body_bytes_total
        assert 1_000_000 < sent_first < 3_000_000
        assert not (d / "weights.safetensors").exists()
        journals = list((d / ".qvdoctor" / "partial").glob("*.journal"))
        assert journals
        hub.faults.update(rate=0)
        r = run_cli("fetch", "Qwen/Big", "--source", "hf", "--local-dir", str(d), "--json", env=env)
        assert r.returncode == 0, r.stderr
        resumed = [e for e in events(r.stdout) if e["event"] == "file_start" and e["path"] == "weights.safetensors"][0]
        assert resumed["resumed"] > 800_000
        total_sent = hub.body_bytes_total
        # Only what the killed run had not written is sent again; bytes in flight in socket
        # buffers at the kill are the only overlap.
        assert total_sent - 3_000_002 < 4 * 300_000, (sent_first, total_sent)
        assert sha256(d / "weights.safetensors") == big.files["weights.safetensors"].sha256
    finally:
        hub.stop()


def test_two_concurrent_fetches_into_one_directory(hub, tiny_repo, tmp_path):
    hub.faults.update(rate=2_000_000)
    env = {"HF_ENDPOINT": hub.url}
    e = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    args = [sys.executable, "-m", "qvdoctor", "fetch", REPO_ID, "--source", "hf", "--local-dir", str(tmp_path)]
    procs = [subprocess.Popen(args, cwd=ROOT, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert_tree_matches(tmp_path, tiny_repo)
    assert run_cli("verify", str(tmp_path)).returncode == 0


@pytest.mark.parametrize("connections, widest", [(None, 20), ("6", 6)])
def test_all_connections_open_from_the_first_second_unless_fixed(tmp_path, capsys, monkeypatch, connections, widest):
    """hf-mirror caps each connection: qvdoctor opens 20 for a lone large file at once (an
    8 MiB file in 32 chunks), before any chunk could finish, instead of waiting to detect the
    throttle; an explicit --connections is kept."""
    repo = build_repo("Qwen/Throttled", {"model.safetensors": 8 << 20, "config.json": b"{}"})
    server = HubServer([repo]).start()
    try:
        server.faults.update(rate=200_000)  # bytes/s per connection: a 256 KiB chunk takes 1.3 s
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("QVDOCTOR_FETCH_CHUNK_BYTES", str(256 * 1024))
        seen: list[int] = []
        stop = threading.Event()

        def watch() -> None:  # the most bodies streaming at once in the first second of transfer
            while not stop.is_set() and not getattr(server.cdn, "streams", 0):
                time.sleep(0.005)
            t0 = time.monotonic()
            while not stop.is_set() and time.monotonic() - t0 < 1.0:
                seen.append(getattr(server.cdn, "streams", 0))
                time.sleep(0.005)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        args = ["fetch", "Qwen/Throttled", "--source", "hf", "--local-dir", str(tmp_path / "m")]
        code, _, err = cli(capsys, *args, *(["--connections", connections] if connections else []))
        stop.set()
        watcher.join()
        assert code == 0, err
        assert max(seen) == widest, seen
        # a finished stream may still be closing on the server when its successor starts: +1 at most
        assert server.cdn.max_streams <= widest + 1
    finally:
        server.stop()
