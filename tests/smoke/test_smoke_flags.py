"""The launch under test: --flag parsing, how a finding's patch changes it, and its renderings."""

from __future__ import annotations

import shlex

import pytest
import yaml

from qvdoctor.errors import QvError
from qvdoctor.doctor.findings import Patch
from qvdoctor.consistency import repair_patch
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


def test_a_patch_to_a_dict_flag_keeps_the_users_other_keys():
    """A fix of max_pixels must not drop the user's min_pixels / fps (vLLM replaces the whole dict)."""
    user = Launch({"mm_processor_kwargs": {"min_pixels": 64, "fps": 2, "max_pixels": 100}})
    fixed = user.apply(Patch({"mm_processor_kwargs": {"max_pixels": 3136}}))
    assert fixed.flags["mm_processor_kwargs"] == {"min_pixels": 64, "fps": 2, "max_pixels": 3136}
    words = shlex.split(fixed.command())
    assert words[words.index("--mm-processor-kwargs") + 1] == '{"min_pixels":64,"fps":2,"max_pixels":3136}'
    # two findings' patches of one dict flag combine key by key
    both = Patch({"limit_mm_per_prompt": {"video": 2}}).merged(Patch({"limit_mm_per_prompt": {"image": 0}}))
    assert BASE.apply(both).flags["limit_mm_per_prompt"] == {"image": 0, "video": 2}


def test_a_command_line_assignment_replaces_a_dict_flag_as_vllms_parser_does():
    launch = BASE.with_assignments(['limit_mm_per_prompt={"video": 3}'])
    assert launch.flags["limit_mm_per_prompt"] == {"video": 3}


@pytest.mark.parametrize("other", [
    Launch({"mm_processor_kwargs": {"max_pixels": 3136}, "max_model_len": 4096}),  # a key dropped
    Launch({"mm_processor_kwargs": {"min_pixels": 64, "max_pixels": 3136}}),
    Launch({"mm_processor_kwargs": 7}),
    Launch({}),
])
def test_patch_to_gives_the_patch_that_makes_the_other_launch(other):
    mine = Launch({"mm_processor_kwargs": {"min_pixels": 64, "max_pixels": 100}, "max_model_len": 4096})
    patch = mine.patch_to(other)
    assert mine.apply(patch).key() == other.key()
    assert "null" not in Launch().apply(patch).key()  # a dropped key is no null in a launch


def test_a_false_switch_is_the_negated_flag_on_the_command_line_and_in_yaml():
    """vLLM's switches that are on by default (prefix caching on the V1 engine) are turned off with --no-X."""
    launch = Launch({"enable_prefix_caching": False, "enforce_eager": True}, model="m")
    assert launch.argv()[3:] == ["--no-enable-prefix-caching", "--enforce-eager"]
    assert yaml.safe_load(launch.config_yaml())["enable-prefix-caching"] is False


def test_an_attention_backend_patch_is_the_variable_before_vllm_013_and_the_flag_after():
    """vLLM 0.13 deprecated VLLM_ATTENTION_BACKEND for --attention-config's backend; 0.26 ignores the variable."""
    patch = Patch(env={"VLLM_ATTENTION_BACKEND": "TRITON_ATTN", "NCCL_P2P_DISABLE": "1"})
    new = Launch(vllm_version="0.26.0").apply(patch)
    assert new.flags == {"attention_config": {"backend": "TRITON_ATTN"}} and new.env == {"NCCL_P2P_DISABLE": "1"}
    assert "--attention-config" in new.argv()
    for old in ("0.12.0", None):  # a release before 0.13, or one not known: the variable
        launch = Launch(vllm_version=old).apply(patch)
        assert launch.env["VLLM_ATTENTION_BACKEND"] == "TRITON_ATTN" and not launch.flags
    # the patch diagnose --log prints for a log of 0.26 carries the flag, not the variable
    fixed, _ = repair_patch(patch, Launch(vllm_version="0.26.0"), None, None)
    assert fixed.flags == {"attention_config": {"backend": "TRITON_ATTN"}} and "VLLM_ATTENTION_BACKEND" not in fixed.env


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
