"""Bad input to ``qvdoctor smoke``: one clear error line, a hint, exit 3, and no engine started."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT, run_qvdoctor


def _error_lines(res) -> list[str]:
    return [line for line in res.stderr.splitlines() if line.startswith(("error:", "hint:"))]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--video", "/nonexistent/clip.mp4", "--model", "tiny-random"], "video not found: /nonexistent/clip.mp4"),
        (["--model", "tiny-random", "--flag", "max_model_len"], "--flag 'max_model_len' is not KEY=VALUE"),
        (["--model", "tiny-random", "--backend", "tensorrt"], "unknown backend 'tensorrt'"),
        (["--model", "tiny-random", "--max-attempts", "0"], "--max-attempts must be at least 1"),
    ],
)
def test_bad_arguments_are_one_line_errors(args, message, tmp_path):
    res = run_qvdoctor("smoke", "--workdir", str(tmp_path), *args)
    assert res.returncode == 3
    assert res.stderr.splitlines()[0] == f"error: {message}"
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "attempt-1").exists()


def test_a_corrupt_video_is_refused_before_any_engine_starts(tmp_path):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    res = run_qvdoctor("smoke", "--video", str(bad), "--model", "tiny-random", "--workdir", str(tmp_path / "wd"))
    assert res.returncode == 3, res.stderr
    err = _error_lines(res)
    assert err[0].startswith(f"error: cannot read {bad}") and err[1].startswith("hint: ")
    assert not (tmp_path / "wd" / "attempt-1").exists()


def test_without_a_model_it_points_to_fetch(tmp_path):
    empty = tmp_path / "hf"
    res = run_qvdoctor("smoke", "--workdir", str(tmp_path / "wd"),
                       env={"HF_HOME": str(empty), "HF_HUB_CACHE": str(empty / "hub")})
    assert res.returncode == 3
    assert _error_lines(res) == [
        "error: no --model given and no Qwen2.5-VL model found locally",
        "hint: download one with 'qvdoctor fetch Qwen/Qwen2.5-VL-3B-Instruct', pass --model PATH, or try --model tiny-random",
    ]


def test_a_config_only_directory_is_not_a_model_for_smoke(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    res = run_qvdoctor("smoke", "--model", str(tmp_path / "m"), "--workdir", str(tmp_path / "wd"))
    assert res.returncode == 3
    assert res.stderr.splitlines()[0] == f"error: {tmp_path / 'm'} has a config.json but no weights (*.safetensors)"
    assert "qvdoctor fetch" in res.stderr


def test_the_smoke_command_does_not_import_heavy_packages():
    code = ("import sys; from qvdoctor.cli import app, _register; _register(); import qvdoctor.smoke, qvdoctor.smoke.session;"
            " print(sorted(m for m in ('torch', 'vllm', 'transformers', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
