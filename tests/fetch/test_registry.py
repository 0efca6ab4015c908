"""The local model registry: what fetch fetched is found by repo id, offline, by plan, diagnose
--model and smoke's model lookup; `fetch --cache` lands where huggingface_hub (and so vLLM and
transformers) look the id up."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fetch.conftest import DEAD, ROOT, cli
from fetch.emu.hf import HubServer
from fetch.emu.repo import build_repo

MODEL = "Qwen/Qwen2.5-VL-3B-Instruct"
FIXTURE = ROOT / "tests" / "plan" / "fixtures" / "qwen2.5-vl-3b-instruct"  # the published config
T4 = str(ROOT / "qvdoctor" / "data" / "machines" / "t4.json")


@pytest.fixture
def qwen_hub(monkeypatch):
    """A hub serving the published Qwen2.5-VL-3B config files plus a stand-in shard (a valid
    safetensors file holding no tensor)."""
    contents = {p.name: p.read_bytes() for p in FIXTURE.iterdir()}
    header = json.dumps({"__metadata__": {"format": "pt"}}).encode()
    contents["model-00001-of-00001.safetensors"] = struct.pack("<Q", len(header)) + header  # valid, no tensors
    server = HubServer([build_repo(MODEL, contents)]).start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    yield server
    server.stop()


def _registry() -> dict:
    from qvdoctor.model.registry import registry_path

    return json.loads(registry_path().read_text())


def test_fetch_records_and_plan_finds_it_offline_fast(qwen_hub, tmp_path, capsys, monkeypatch):
    d = tmp_path / "models" / "qwen3b"
    code, _, err = cli(capsys, "fetch", MODEL, "--source", "hf", "--local-dir", str(d), "--exclude", "*.safetensors")
    assert code == 0, err
    entry = [e for e in _registry()["models"] if e["repo_id"] == MODEL][0]
    assert entry["directory"] == str(d) and entry["source"] == "hf" and entry["revision"] == "main"
    assert entry["commit"] == qwen_hub.repos[MODEL].commit and entry["complete"] is False  # --exclude was given
    assert entry["manifest"] == str(d / ".qvdoctor" / "manifest.json")

    qwen_hub.stop()  # the hub is gone: nothing may ask it
    monkeypatch.setenv("HF_ENDPOINT", DEAD)
    t0 = time.monotonic()
    code, out, err = cli(capsys, "plan", "--model", MODEL, "--facts", T4, "--json")
    took = time.monotonic() - t0
    assert code in (0, 1, 2), err  # a plan, whatever it says about the T4
    assert took < 2.0
    plan = json.loads(out)
    assert plan["model"]["path"] == str(d)
    found = f"{MODEL}: found in the qvdoctor registry at {d} (fetched from hf, commit {entry['commit'][:12]}, small files only)"
    assert found in json.dumps(plan), plan.get("notes")


def test_diagnose_model_and_smoke_lookup_use_the_registry(qwen_hub, tmp_path, capsys, monkeypatch):
    from qvdoctor.model.locate import resolve

    d = tmp_path / "m"
    assert cli(capsys, "fetch", MODEL, "--source", "hf", "--local-dir", str(d))[0] == 0
    monkeypatch.setenv("HF_ENDPOINT", DEAD)
    choice = resolve(MODEL)  # what smoke does with --model REPO_ID
    # Outside the Hugging Face cache vLLM would not find it by id: the serve command names the path.
    assert choice.directory == d and choice.name == str(d)
    assert choice.where.startswith(f"{MODEL}: found in the qvdoctor registry at {d}")
    # diagnose --model and plan read the model through load_model_info (diagnose itself cannot
    # run on this branch's base: doctor/render.py there has a 3.12-only f-string, fixed on main).
    from qvdoctor.model.info import load_model_info

    info = load_model_info(MODEL)
    assert info.path == str(d)
    assert any(n.startswith(f"{MODEL}: found in the qvdoctor registry at {d}") for n in info.notes), info.notes


def test_smoke_prefers_a_whole_copy_over_small_files(qwen_hub, tmp_path, capsys, monkeypatch):
    from qvdoctor.model.locate import resolve

    whole, small = tmp_path / "whole", tmp_path / "small"
    assert cli(capsys, "fetch", MODEL, "--source", "hf", "--local-dir", str(whole))[0] == 0
    assert cli(capsys, "fetch", MODEL, "--source", "hf", "--local-dir", str(small), "--include", "*.json")[0] == 0
    monkeypatch.setenv("HF_ENDPOINT", DEAD)
    assert resolve(MODEL).directory == whole


def test_a_moved_directory_is_not_found(qwen_hub, tmp_path, capsys, monkeypatch):
    from qvdoctor.model.registry import find

    d = tmp_path / "m"
    assert cli(capsys, "fetch", MODEL, "--source", "hf", "--local-dir", str(d))[0] == 0
    assert find(MODEL).directory == d
    d.rename(tmp_path / "elsewhere")
    assert find(MODEL) is None


def test_fetch_cache_is_found_by_huggingface_hub_offline(qwen_hub, tmp_path, capsys):
    code, out, err = cli(capsys, "fetch", MODEL, "--source", "hf", "--cache")
    assert code == 0, err
    commit = qwen_hub.repos[MODEL].commit
    hub_cache = Path(os.environ["HF_HOME"]) / "hub"
    snap = hub_cache / "models--Qwen--Qwen2.5-VL-3B-Instruct" / "snapshots" / commit
    assert (snap / "config.json").is_file() and (snap / "model-00001-of-00001.safetensors").is_file()
    assert (hub_cache / "models--Qwen--Qwen2.5-VL-3B-Instruct" / "refs" / "main").read_text() == commit
    assert _registry()["models"][-1]["directory"] == str(snap)
    from qvdoctor.model.locate import resolve

    assert resolve(MODEL).name == MODEL  # in the cache: the serve command may name the id
    # The lookups vLLM and transformers make for a repo id, with the hub switched off.
    probe = ("from huggingface_hub import hf_hub_download, snapshot_download; "
             f"print(snapshot_download({MODEL!r}, local_files_only=True)); "
             f"print(hf_hub_download({MODEL!r}, 'config.json'))")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(snap), str(snap / "config.json")]
    # A second --cache fetch finds everything in place.
    code, out, _ = cli(capsys, "fetch", MODEL, "--source", "hf", "--cache")
    assert code == 0 and "0 hashed in this run, 3 unchanged" in out


def test_cache_and_local_dir_together_are_refused(capsys, tmp_path):
    code, _, err = cli(capsys, "fetch", MODEL, "--cache", "--local-dir", str(tmp_path))
    assert code == 3 and "--cache and --local-dir" in err
