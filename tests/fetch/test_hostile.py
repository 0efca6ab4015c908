"""Hostile or broken servers: file names that escape --local-dir, symlinks, a 100k-file listing,
a Content-Length that lies."""

from __future__ import annotations

import time

import pytest

from fetch.conftest import REPO_ID, assert_tree_matches, cli, events
from fetch.emu.hf import HubServer
from fetch.emu.repo import build_repo


@pytest.mark.parametrize("name", ["../evil.safetensors", "/tmp/evil.safetensors", "sub/../../evil.bin",
                                  "a/\x00b.bin", ".qvdoctor/manifest.json", "C:\\evil.bin", ".git/config"])
def test_escaping_file_names_are_refused(name, tmp_path, monkeypatch, capsys):
    repo = build_repo("Evil/Repo", {"config.json": b"{}", "model.safetensors": 50_000})
    evil = repo.files["model.safetensors"]
    repo.hostile = [{"type": "file", "oid": evil.git_oid, "size": evil.size, "path": name,
                     "lfs": {"oid": evil.sha256, "size": evil.size, "pointerSize": 134}}]
    server = HubServer([repo]).start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    box = tmp_path / "box"
    box.mkdir()
    try:
        code, _, err = cli(capsys, "fetch", "Evil/Repo", "--source", "hf", "--local-dir", str(box / "m"))
        assert code == 3
        assert err.startswith("error: refusing file name") and "Traceback" not in err
        assert server.cdn.body_bytes == 0 and server.body_bytes == 0  # refused before any byte moved
        assert [p.name for p in box.iterdir()] in ([], ["m"])
        assert not list(tmp_path.rglob("evil*"))
    finally:
        server.stop()


def test_symlink_in_local_dir_leading_outside_is_refused(hub, tmp_path, capsys):
    outside = tmp_path / "outside"
    outside.mkdir()
    d = tmp_path / "m"
    d.mkdir()
    (d / "tokenizer").symlink_to(outside)
    code, _, err = cli(capsys, "fetch", REPO_ID, "--source", "hf", "--local-dir", str(d))
    assert code == 3
    assert "leads outside" in err and "symlink" in err
    assert list(outside.iterdir()) == []


def test_symlink_at_a_final_name_is_not_followed(hub, tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    d = tmp_path / "m"
    d.mkdir()
    (d / "README.md").symlink_to(victim)
    code, _, err = cli(capsys, "fetch", REPO_ID, "--source", "hf", "--local-dir", str(d))
    assert code == 3 and "symlink" in err
    assert victim.read_text() == "keep me"


def test_lying_content_length_on_every_answer(hub, tiny_repo, tmp_path, capsys):
    hub.faults.update(lie_p=1.0, seed=3)
    code, out, err = cli(capsys, "fetch", REPO_ID, "--source", "hf", "--local-dir", str(tmp_path), "--json")
    assert code == 0, err
    assert_tree_matches(tmp_path, tiny_repo)
    assert any("Content-Length" in e.get("reason", "") or "closed" in e.get("reason", "")
               for e in events(out) if e["event"] == "retry")


def test_size_that_disagrees_with_the_listing_fails_cleanly(tiny_repo, tmp_path, monkeypatch, capsys):
    """The server lists 1 MB but Content-Range says otherwise: no bytes are trusted."""
    f = tiny_repo.files["model-00001-of-00002.safetensors"]
    f.size -= 10  # listing now lies about the size
    server = HubServer([tiny_repo]).start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    try:
        code, _, err = cli(capsys, "fetch", REPO_ID, "--source", "hf", "--local-dir", str(tmp_path),
                           "--include", "model-00001*")
        assert code == 2
        assert "listing says" in err or "hash mismatch" in err
        assert not (tmp_path / "model-00001-of-00002.safetensors").exists()
    finally:
        server.stop()


def test_100k_file_listing(tmp_path, monkeypatch, capsys):
    contents = {f"shards/{i // 1000:03d}/part-{i:06d}.bin": b"%d\n" % i for i in range(100_000)}
    contents["config.json"] = b"{}"
    repo = build_repo("Big/Listing", contents)
    server = HubServer([repo]).start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    try:
        t0 = time.monotonic()
        code, out, err = cli(capsys, "fetch", "Big/Listing", "--source", "hf", "--local-dir", str(tmp_path / "m"),
                             "--dry-run", "--json")
        assert code == 0, err
        dry = events(out)[-1]
        assert dry["files"] == 100_001 and len(dry["listing"]) == 100_001
        tree_pages = [p for _, p, _ in server.requests if "/tree/" in p]
        assert tree_pages == []  # listing requests are not body transfers
        code, _, err = cli(capsys, "fetch", "Big/Listing", "--source", "hf", "--local-dir", str(tmp_path / "m"),
                           "--include", "shards/042/*", "--include", "config.json")
        assert code == 0, err
        got = list((tmp_path / "m" / "shards" / "042").iterdir())
        assert len(got) == 1000
        assert (tmp_path / "m" / "shards" / "042" / "part-042123.bin").read_bytes() == b"42123\n"
        assert time.monotonic() - t0 < 120
    finally:
        server.stop()
