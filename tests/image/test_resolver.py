"""Known truths of the build matrix (image_matrix.md), checked through the resolver."""

from __future__ import annotations

import pytest

from qvdoctor.compat import version_key
from qvdoctor.errors import QvError
from qvdoctor.image.matrix import list_missing, load
from qvdoctor.image.resolve import Refused, resolve

CUDAS = ("11.8", "12.1", "12.4", "12.6", "12.8", "12.9", "13.0")
CCS = ("7.0", "7.5", "8.0", "8.6", "8.9", "9.0", "10.0", "12.0")


def test_cc75_with_cuda13_works():
    plan = resolve("7.5", cuda="13.0")
    assert plan.cuda == "13.0" and plan.path == "wheels"
    assert list_missing(plan.torch_archs, "7.5") is None
    assert plan.driver_min == "580.65.06"


def test_cc70_with_cuda13_is_refused_with_the_reason():
    with pytest.raises(Refused) as info:
        resolve("7.0", cuda="13.0")
    assert "CUDA 13.0 cannot compile for sm_70" in info.value.message
    assert "Volta" in info.value.message
    assert "--cuda 12.9" in info.value.hint


@pytest.mark.parametrize("cuda", CUDAS)
def test_cc120_needs_cuda_128(cuda):
    if version_key(cuda) >= (12, 8):
        assert resolve("12.0", cuda=cuda).cuda == cuda
    else:
        with pytest.raises(Refused, match=r"sm_120 needs CUDA >= 12\.8"):
            resolve("12.0", cuda=cuda)


def test_pascal_is_refused():
    with pytest.raises(Refused, match="below compute capability 7.0"):
        resolve("6.1")


def test_pre_ampere_gets_fp16_and_a_working_attention_backend():
    v0 = resolve("7.5", cuda="11.8")  # vLLM 0.8.5: V1 falls back to V0 on cc < 8.0
    assert v0.vllm == "0.8.5"
    assert v0.serve_args[:2] == ["--dtype", "half"]
    assert v0.env["VLLM_ATTENTION_BACKEND"] == "XFORMERS" and v0.env["VLLM_USE_V1"] == "0"
    assert any("bf16 is not supported" in n for n in v0.notes)
    assert any("FlashAttention" in n for n in v0.notes)
    v1 = resolve("7.5", cuda="13.0")  # newest vLLM: ViT attention must be forced to TORCH_SDPA
    assert v1.serve_args == ["--dtype", "half", "--mm-encoder-attn-backend", "TORCH_SDPA"]
    assert "VLLM_ATTENTION_BACKEND" not in v1.env


@pytest.mark.parametrize("cc", ["8.0", "8.6", "9.0", "12.0"])
def test_ampere_and_newer_keep_bf16(cc):
    plan = resolve(cc)
    assert "--dtype" not in plan.serve_args
    assert plan.env == {"VLLM_WORKER_MULTIPROC_METHOD": "spawn"}


def test_known_good_cu118_stack_for_turing():
    plan = resolve("7.5", cuda="11.8")
    assert (plan.torch, plan.torch_flavour, plan.xformers) == ("2.6.0", "11.8", "0.0.29.post2")
    assert plan.torch_spec == "torch==2.6.0+cu118"
    assert plan.pip_index_args == "--extra-index-url https://download.pytorch.org/whl/cu118"
    assert plan.vllm_spec.endswith("/v0.8.5/vllm-0.8.5+cu118-cp38-abi3-manylinux1_x86_64.whl")
    assert "transformers>=4.51.1" in plan.extra_specs


def test_qwen_transformers_floor_applies_to_old_vllm():
    plan = resolve("7.5", cuda="12.1")  # vLLM 0.7.3 only asks transformers >= 4.48.2
    assert plan.vllm == "0.7.3"
    assert "transformers>=4.49.0" in plan.extra_specs


def test_source_build_when_no_wheel_carries_the_cc():
    plan = resolve("7.0", cuda="12.6", vllm="0.10.1.1")  # xformers 0.0.31 dropped V100
    assert plan.path == "source" and plan.arch_list == "7.0"
    assert plan.xformers_from_source and not any(s.startswith("xformers") for s in plan.extra_specs)
    assert plan.build_base_image == "nvidia/cuda:12.6.3-devel-ubuntu22.04"


def test_vllm_that_dropped_volta_is_refused_at_cuda_128():
    with pytest.raises(Refused, match="compiles nothing for sm_70"):
        resolve("7.0", cuda="12.8", vllm="0.26.0")


@pytest.mark.parametrize("cc", CCS)
@pytest.mark.parametrize("cuda", CUDAS)
def test_every_accepted_plan_is_consistent(cc, cuda):
    m = load()
    try:
        plan = resolve(cc, cuda=cuda)
    except Refused:
        assert cc not in m.toolkits[cuda].archs or plan_impossible(cc, cuda)
        return
    row = m.vllm_release(plan.vllm)
    assert cc in m.toolkits[cuda].archs
    assert plan.torch == row.torch
    assert list_missing(plan.torch_archs, cc) is None, "the torch wheel must carry the cc"
    assert plan.torch_flavour.split(".")[0] == cuda.split(".")[0]
    assert version_key(row.python[0]) <= version_key(plan.python) <= version_key(row.python[1])
    if plan.path == "wheels":
        assert cuda in row.wheels and list_missing(plan.vllm_archs, cc) is None
    if row.xformers and not plan.xformers_from_source:
        xf = m.xformers[row.xformers]
        assert plan.torch_flavour in xf.flavours and list_missing(xf.archs_for(plan.torch_flavour), cc) is None


def plan_impossible(cc: str, cuda: str) -> bool:
    """Brute force over the matrix: no vLLM row can serve cc at this CUDA."""
    for row in load().vllm:
        try:
            resolve(cc, cuda=cuda, vllm=row.version)
            return False
        except Refused:
            continue
    return True


@pytest.mark.parametrize(
    "kwargs, message",
    [({"cc": "seven"}, "--cc must be MAJOR.MINOR"), ({"cc": "7.5", "cuda": "12.3"}, "--cuda 12.3 is not one"), ({"cc": "7.5", "vllm": "0.5.0"}, "--vllm 0.5.0 is not in")],
)
def test_bad_input_is_a_one_line_error(kwargs, message):
    with pytest.raises(QvError, match=message):
        resolve(**kwargs)


def test_driver_limits_the_cuda_choice():
    plan = resolve("7.5", driver="535.104.05")  # a 12.2 driver: CUDA 12.1 or older
    assert version_key(plan.cuda) <= (12, 1)
    assert plan.reasons[0].startswith("driver 535.104.05 fully supports CUDA up to 12.1")
    with pytest.raises(Refused, match=r"driver 535\.104\.05 is older than CUDA 12\.8 needs \(>= 570\.26\)"):
        resolve("7.5", cuda="12.8", driver="535.104.05")
    with pytest.raises(Refused, match=r"cc 12\.0 needs CUDA >= 12\.8, which needs a driver >= 570\.26"):
        resolve("12.0", driver="550.54.14")
