"""`--source auto`: probe, pick the fastest, switch source mid-file on repeated errors while
continuing the same part file (the sources agree on the sha256)."""

from __future__ import annotations

import json

from fetch.conftest import REPO_ID, assert_tree_matches, cli, events


def _probe(out: str) -> dict:
    return [e for e in events(out) if e["event"] == "probe"][0]


def test_auto_picks_the_fastest_source(hub, ms, tmp_path, capsys):
    hub.faults.update(rate=300_000)  # Hugging Face slow here, ModelScope fast
    code, out, err = cli(capsys, "fetch", REPO_ID, "--local-dir", str(tmp_path), "--json")
    assert code == 0, err
    probe = _probe(out)
    assert probe["chosen"] == "modelscope"
    assert set(probe["sources"]) == {"hf", "hf-mirror", "modelscope"}
    assert "error" in probe["sources"]["hf-mirror"]  # nothing listens there: reported, not fatal
    assert probe["sources"]["hf"]["rate_mb_s"] < probe["sources"]["modelscope"]["rate_mb_s"]
    assert json.loads((tmp_path / ".qvdoctor" / "manifest.json").read_text())["source"] == "modelscope"
    assert_tree_matches(tmp_path, ms.repos[REPO_ID])


def test_auto_switches_source_mid_file_and_keeps_the_part_file(hub, ms, tiny_repo, tmp_path, capsys):
    big = tiny_repo.files["model-00001-of-00002.safetensors"]
    ms.set_faults(rate=1_000_000)  # ModelScope slower: hf is chosen
    # The hf CDN goes down 300 kB into the download (the probe read the first 1 MB).
    hub.faults.update(down_after=big.size + 300_000)
    code, out, err = cli(capsys, "fetch", REPO_ID, "--local-dir", str(tmp_path), "--json", "--connections", "2")
    assert code == 0, err
    assert _probe(out)["chosen"] == "hf"
    switches = [e for e in events(out) if e["event"] == "switch"]
    assert switches and all(s["previous"] == "hf" and s["source"] == "modelscope" for s in switches)
    m = json.loads((tmp_path / ".qvdoctor" / "manifest.json").read_text())
    both = [p for p, r in m["files"].items() if r["sources"] == ["hf", "modelscope"]]
    assert both, m["files"]
    assert_tree_matches(tmp_path, tiny_repo)
    # The same part file continued: the bytes hf sent were not fetched again from modelscope.
    lfs_total = sum(f.size for f in tiny_repo.files.values() if f.lfs)
    hf_bytes = hub.cdn.body_bytes - big.size  # minus the probe's sample
    assert hf_bytes > 100_000
    assert ms.oss.body_bytes - 1_000_000 <= lfs_total - hf_bytes + 2 * 128 * 1024


def test_auto_with_no_reachable_source(capsys, tmp_path):
    code, _, err = cli(capsys, "fetch", REPO_ID, "--local-dir", str(tmp_path))
    assert code == 3
    # Every source named with its endpoint and why it failed, before any hub client runs.
    assert err.startswith("error: no source could be asked for Qwen/Tiny-VL: hf (http://127.0.0.1:9): connection refused")

