"""A repo id that is not on disk: only its JSON files come from the hub (through qvdoctor.fetch),
served here by the hub emulator of the fetch tests on 127.0.0.1."""

from __future__ import annotations

import json

import pytest

from planfix import FIXTURES

emu = pytest.importorskip("fetch.emu.hf")
from fetch.emu.repo import build_repo  # noqa: E402


def test_plan_a_repo_id_from_its_json_files(tmp_path, monkeypatch, qvdoctor):
    config = (FIXTURES / "qwen2.5-vl-7b-instruct" / "config.json").read_bytes()
    pre = (FIXTURES / "qwen2.5-vl-7b-instruct" / "preprocessor_config.json").read_bytes()
    big = b"\\0" * 300_000  # a weights file that must not be downloaded
    repo = build_repo("Qwen/Qwen2.5-VL-7B-Instruct", {"config.json": config, "preprocessor_config.json": pre,
                                                      "model.safetensors.index.json": json.dumps({"weight_map": {"x": "model-00001-of-00001.safetensors"}}).encode(),
                                                      "model-00001-of-00001.safetensors": big})
    server = emu.HubServer([repo]).start()
    try:
        env = {"HF_ENDPOINT": server.url, "QVDOCTOR_CACHE": str(tmp_path / "cache"), "HF_HUB_CACHE": str(tmp_path / "hf"),
               "QVDOCTOR_PROBE_TIMEOUT": "10"}
        r = qvdoctor("plan", "--model", "Qwen/Qwen2.5-VL-7B-Instruct", "--facts",
                     str(FIXTURES.parents[2] / "qvdoctor" / "data" / "machines" / "rtx4090.json"), "--json", env=env)
    finally:
        server.stop()
    assert r.returncode in (0, 1), r.stderr
    d = r.json()
    assert d["kv_bytes_per_token"] == 57_344
    assert d["model"]["weights_source"] == "derived from config.json"
    got = tmp_path / "cache" / "model-configs" / "Qwen--Qwen2.5-VL-7B-Instruct"
    assert (got / "config.json").is_file() and not (got / "model-00001-of-00001.safetensors").exists()


def test_offline_repo_id_is_a_clear_error(tmp_path, qvdoctor):
    r = qvdoctor("plan", "--model", "Qwen/Qwen2.5-VL-7B-Instruct", "--device", "cpu", "--kv-cache-memory-bytes", "1000000",
                 env={"QVDOCTOR_OFFLINE": "1", "QVDOCTOR_CACHE": str(tmp_path), "HF_HUB_CACHE": str(tmp_path / "hf")})
    assert r.returncode == 3 and "qvdoctor fetch Qwen/Qwen2.5-VL-7B-Instruct" in r.stderr
