""""Verified" means hashed in this run, or proven by an intact manifest entry whose file kept its
size, mtime, ctime and inode. A byte flipped in place with size and mtime restored is never
reported verified; `verify --repair` re-fetches exactly what differs; `--verify-all` re-hashes."""

from __future__ import annotations

import json
import os
from pathlib import Path

from fetch.conftest import REPO_ID, assert_tree_matches, cli, events, sha256

SHARD = "model-00002-of-00002.safetensors"


def _flip_keeping_size_and_mtime(p: Path, offset: int = 1234) -> None:
    st = p.stat()
    with open(p, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = p.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)


def _fetch(capsys, d: Path, *extra: str) -> tuple[int, dict, str]:
    code, out, err = cli(capsys, "fetch", REPO_ID, "--source", "hf", "--local-dir", str(d), "--json", *extra)
    done = [e for e in events(out) if e["event"] == "done"]
    return code, (done[0] if done else {}), out + err


def test_same_size_same_mtime_corruption_is_never_reported_verified(hub, tiny_repo, tmp_path, capsys):
    d = tmp_path / "m"
    assert _fetch(capsys, d)[0] == 0
    _flip_keeping_size_and_mtime(d / SHARD)

    code, out, _ = cli(capsys, "verify", str(d))
    assert code == 2 and f"changed  {SHARD}: sha256" in out

    before = hub.cdn.body_bytes
    code, done, text = _fetch(capsys, d)
    assert code == 0, text
    # The flipped file was hashed (its ctime moved), found wrong and fetched again; the five
    # untouched files were proven by the manifest, and the summary says which is which.
    assert done["hashed"] == 1 and done["unchanged"] == 5 and done["verified"] == 6
    assert hub.cdn.body_bytes - before == tiny_repo.files[SHARD].size
    assert sha256(d / SHARD) == tiny_repo.files[SHARD].sha256
    assert "do not match sha256 of the listing; fetching it again" in text
    assert cli(capsys, "verify", str(d))[0] == 0


def test_plain_summary_says_what_was_hashed_and_what_the_manifest_proved(hub, tmp_path, capsys):
    d = tmp_path / "m"
    assert cli(capsys, "fetch", REPO_ID, "--source", "hf", "--local-dir", str(d))[0] == 0
    code, out, _ = cli(capsys, "fetch", REPO_ID, "--source", "hf", "--local-dir", str(d))
    assert code == 0
    assert "fetch: 6 files verified (0 hashed in this run, 6 unchanged since the manifest), 0.0 MB" in out


def test_verify_repair_refetches_exactly_what_differs(hub, tiny_repo, tmp_path, capsys):
    d = tmp_path / "m"
    assert _fetch(capsys, d)[0] == 0
    _flip_keeping_size_and_mtime(d / SHARD)
    (d / "tokenizer" / "tokenizer.json").unlink()
    before = hub.body_bytes_total

    code, out, err = cli(capsys, "verify", str(d), "--repair")
    assert code == 0, out + err
    assert "6 ok, 0 missing, 0 changed" in out
    assert f"  repaired {SHARD}" in out and "  repaired tokenizer/tokenizer.json" in out
    assert_tree_matches(d, tiny_repo)
    # Exactly the two damaged files' bytes came over the wire, nothing else.
    repaired = tiny_repo.files[SHARD].size + tiny_repo.files["tokenizer/tokenizer.json"].size
    assert hub.body_bytes_total - before == repaired


def test_verify_repair_with_nothing_to_repair_fetches_nothing(hub, tmp_path, capsys):
    d = tmp_path / "m"
    assert _fetch(capsys, d)[0] == 0
    hub.requests.clear()
    code, out, _ = cli(capsys, "verify", str(d), "--repair", "--json")
    assert code == 0 and json.loads(out)["repaired"] == []
    assert hub.requests == []


def test_verify_all_rehashes_every_file(hub, tmp_path, capsys):
    d = tmp_path / "m"
    assert _fetch(capsys, d)[0] == 0
    code, done, _ = _fetch(capsys, d, "--verify-all")
    assert code == 0 and done["hashed"] == 6 and done["unchanged"] == 0 and done["transferred"] == 0


def test_an_edited_manifest_proves_nothing(hub, tiny_repo, tmp_path, capsys):
    """Someone 'fixes' the manifest by hand to match a corrupted file: its table no longer matches
    its recorded sha256, so every file is hashed again and the corrupt one is replaced."""
    d = tmp_path / "m"
    assert _fetch(capsys, d)[0] == 0
    p = d / SHARD
    _flip_keeping_size_and_mtime(p)
    mpath = d / ".qvdoctor" / "manifest.json"
    m = json.loads(mpath.read_text())
    st = p.stat()
    m["files"][SHARD].update(ctime_ns=st.st_ctime_ns, mtime_ns=st.st_mtime_ns, ino=st.st_ino)
    mpath.write_text(json.dumps(m))
    code, done, text = _fetch(capsys, d)
    assert code == 0, text
    assert "does not match its recorded sha256" in text
    assert done["hashed"] == 6 and done["unchanged"] == 0
    assert sha256(p) == tiny_repo.files[SHARD].sha256
