"""`qvdoctor fetch --source modelscope` against the ModelScope emulator (listing through the
modelscope SDK, OSS answering ranges with 200 + Content-Range)."""

from __future__ import annotations

import json

from fetch.conftest import REPO_ID, assert_tree_matches, cli, events


def test_fetch_from_modelscope_with_the_200_content_range_quirk(ms, tmp_path, capsys):
    repo = ms.repos[REPO_ID]
    code, out, err = cli(capsys, "fetch", REPO_ID, "--source", "modelscope", "--local-dir", str(tmp_path), "--json")
    assert code == 0, err
    assert_tree_matches(tmp_path, repo)
    m = json.loads((tmp_path / ".qvdoctor" / "manifest.json").read_text())
    assert m["source"] == "modelscope" and m["revision"] == "master" and m["commit"] == repo.commit
    # the OSS really answered ranges with 200 + Content-Range, several per big file
    big = repo.files["model-00001-of-00002.safetensors"]
    ranges = [r for _, p, r in ms.oss.requests if big.sha256 in p]
    assert len(ranges) >= 7 and ms.oss.faults.range_200
    # downloads are pinned to the resolved commit, not the branch name
    assert any(f"Revision={repo.commit}" in p for _, p, _ in ms.requests)


def test_modelscope_errors(ms, tmp_path, capsys):
    code, _, err = cli(capsys, "fetch", "Qwen/Nope", "--source", "modelscope", "--local-dir", str(tmp_path))
    assert code == 3 and err.startswith("error: repository Qwen/Nope not found on modelscope")
    code, _, err = cli(capsys, "fetch", REPO_ID, "--source", "modelscope", "--revision", "v2", "--local-dir", str(tmp_path))
    assert code == 3 and err.startswith("error: revision 'v2' not found in Qwen/Tiny-VL on modelscope")


def test_modelscope_token_sent_as_the_sdk_does_but_never_shown(ms, tmp_path, monkeypatch, capsys):
    token = "ms-SECRET-5f0c2d7e-token"
    monkeypatch.setenv("MODELSCOPE_API_TOKEN", token)
    code, out, err = cli(capsys, "fetch", REPO_ID, "--source", "modelscope", "--local-dir", str(tmp_path), "--json")
    assert code == 0, err
    assert any(token in a for a in ms.seen_auth)
    assert token not in out + err
    assert all(token.encode() not in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())


def test_modelscope_faults_end_verified(ms, tmp_path, capsys):
    ms.set_faults(drop_p=0.3, corrupt_p=0.1, error_p=0.1, seed=5)
    code, out, err = cli(capsys, "fetch", REPO_ID, "--source", "modelscope", "--local-dir", str(tmp_path), "--json")
    assert code == 0, err
    assert_tree_matches(tmp_path, ms.repos[REPO_ID])
    assert any(e["event"] == "retry" for e in events(out))
