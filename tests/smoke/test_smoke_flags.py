"""The launch under test: --flag parsing, how a finding's patch changes it, and its renderings."""

from __future__ import annotations

import shlex

import pytest
import yaml

from qvdoctor.errors import QvError
from qvdoctor.doctor.findings import Patch
from qvdoctor.launch import Launch, parse_value

BASE = Launch(
    {"tensor_parallel_size": 3, "max_model_len": 4096, "limit_mm_per_prompt": {"image": 0, "video": 1},
     "enforce_eager": True},
    {"VLLM_WORKER_MULTIPROC_METHOD": "spawn"},
)


@pytest.mark.parametrize(
    "text, value",
    [("4096", 4096), ("0.9", 0.9), ("true", True), ("False", False), ("none", None),
     ('{"video": 2}', {"video": 2}), ("bfloat16", "bfloat16"), ("TORCH_SDPA", "TORCH_SDPA")],
)
def test_flag_values_are_typed_like_the_cli(text, value):
    assert parse_value(text) == value


def test_assignments_accept_kebab_and_snake_names_and_env():
    launch = BASE.with_assignments(["--max-model-len=8192", "dtype=float16", "env:VLLM_USE_V1=1", "enforce_eager=none"])
    assert launch.flags["max_model_len"] == 8192
    assert launch.flags["dtype"] == "float16"
    assert "enforce_eager" not in launch.flags
    assert launch.env == {"VLLM_WORKER_MULTIPROC_METHOD": "spawn", "VLLM_USE_V1": "1"}


@pytest.mark.parametrize("bad", ["max_model_len", "=3", "max model len=3"])
def test_bad_assignments_are_one_line_errors(bad):
    with pytest.raises(QvError):
        Launch().with_assignments([bad])


def test_patch_replaces_removes_and_sets_env_without_touching_the_original():
    patched = BASE.apply(Patch({"tensor_parallel_size": 2, "enforce_eager": None, "limit_mm_per_prompt": {"image": 0, "video": 2}},
                               {"VLLM_ATTENTION_BACKEND": "TORCH_SDPA"}))
    assert patched.flags == {"tensor_parallel_size": 2, "max_model_len": 4096, "limit_mm_per_prompt": {"image": 0, "video": 2}}
    assert patched.env["VLLM_ATTENTION_BACKEND"] == "TORCH_SDPA"
    assert BASE.flags["tensor_parallel_size"] == 3 and "enforce_eager" in BASE.flags
    assert patched.key() != BASE.key()
    assert BASE.apply(Patch({"max_model_len": 4096})).key() == BASE.key()  # a no-op patch is the same launch


def test_serve_command_is_a_shell_line_that_round_trips():
    launch = BASE.copy()
    launch.model = "/models/Qwen2.5-VL-7B-Instruct"
    words = shlex.split(launch.command())
    assert words[0] == "VLLM_WORKER_MULTIPROC_METHOD=spawn"
    assert words[1:] == launch.argv()
    assert words[1:4] == ["vllm", "serve", "/models/Qwen2.5-VL-7B-Instruct"]
    i = words.index("--limit-mm-per-prompt")
    assert words[i + 1] == '{"image":0,"video":1}'
    assert "--enforce-eager" in words and "--tensor-parallel-size" in words


def test_config_yaml_holds_the_model_flags_and_the_env_as_a_comment():
    launch = BASE.copy()
    launch.model = "Qwen/Qwen2.5-VL-7B-Instruct"
    text = launch.config_yaml()
    data = yaml.safe_load(text)
    assert data == {"model": "Qwen/Qwen2.5-VL-7B-Instruct", "tensor-parallel-size": 3, "max-model-len": 4096,
                    "limit-mm-per-prompt": {"image": 0, "video": 1}, "enforce-eager": True}
    assert "export VLLM_WORKER_MULTIPROC_METHOD=spawn" in text
