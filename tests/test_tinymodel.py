"""The tiny random Qwen2.5-VL: published layout, real processor/tokenizer, cache, and a real vLLM run."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from qvdoctor import tinymodel
from tests.vllm_support import ROOT, require_vllm, run_tiny_vllm, tiny_model, video_prompt  # noqa: F401


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return tinymodel.build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def test_importing_the_module_does_not_import_torch():
    code = "import sys, qvdoctor.tinymodel; print(sorted(m for m in ('torch','transformers','tokenizers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_layout_and_config_match_a_published_qwen25_vl_repo(built):
    files = {p.name for p in built.iterdir()}
    assert {"config.json", "generation_config.json", "preprocessor_config.json", "chat_template.json",
            "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
            "model.safetensors"} <= files
    cfg = json.loads((built / "config.json").read_text())
    assert cfg["architectures"] == ["Qwen2_5_VLForConditionalGeneration"]
    assert (cfg["num_hidden_layers"], cfg["hidden_size"], cfg["num_attention_heads"],
            cfg["num_key_value_heads"]) == (2, 128, 2, 1)
    assert cfg["hidden_size"] // cfg["num_attention_heads"] == 64  # vLLM CPU attention: 64 or 128
    vis = cfg["vision_config"]
    assert vis["depth"] == 2 and vis["hidden_size"] // vis["num_heads"] == 64
    assert sum(cfg["rope_scaling"]["mrope_section"]) * 2 == 64
    pre = json.loads((built / "preprocessor_config.json").read_text())
    assert (pre["min_pixels"], pre["max_pixels"], pre["patch_size"], pre["merge_size"],
            pre["temporal_patch_size"]) == (3136, 12845056, 14, 2, 2)
    gen = json.loads((built / "generation_config.json").read_text())
    assert gen["eos_token_id"] == [cfg["eos_token_id"], cfg["bos_token_id"]]  # <|im_end|>, <|endoftext|>
    assert gen["repetition_penalty"] == 1.05


def test_weights_use_published_tensor_names(built):
    from safetensors import safe_open

    with safe_open(str(built / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
        assert str(f.get_slice("model.embed_tokens.weight").get_dtype()) == "BF16"
    assert {"lm_head.weight", "model.embed_tokens.weight", "model.norm.weight",
            "model.layers.1.self_attn.k_proj.weight", "visual.blocks.1.attn.qkv.weight",
            "visual.merger.mlp.2.weight", "visual.patch_embed.proj.weight"} <= keys
    assert not any(k.startswith("model.language_model.") or k.startswith("model.visual.") for k in keys)


def test_tokenizer_and_chat_template_load_through_transformers(built):
    from transformers import AutoProcessor

    cfg = json.loads((built / "config.json").read_text())
    proc = AutoProcessor.from_pretrained(str(built))
    tok = proc.tokenizer
    assert len(tok) == cfg["vocab_size"] == 640
    for name, key in [("<|video_pad|>", "video_token_id"), ("<|image_pad|>", "image_token_id"),
                      ("<|vision_start|>", "vision_start_token_id"), ("<|im_end|>", "eos_token_id")]:
        assert tok.convert_tokens_to_ids(name) == cfg[key]
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Describe this video."}]}]
    rendered = proc.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == video_prompt(1)
    ids = tok("<|im_start|>user\nWhat is happening in the video?<|im_end|>")["input_ids"]
    assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>") and max(ids) < cfg["vocab_size"]
    assert tok.decode(ids) == "<|im_start|>user\nWhat is happening in the video?<|im_end|>"


def test_second_call_reuses_the_cache_and_a_half_built_dir_is_rebuilt(built, tmp_path, monkeypatch):
    before = {p.name: p.stat().st_mtime_ns for p in built.iterdir()}
    assert tinymodel.build_tiny_model(built) == built
    assert {p.name: p.stat().st_mtime_ns for p in built.iterdir()} == before

    # A directory without the completion stamp (e.g. an interrupted copy) is not trusted.
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    assert tinymodel.build_tiny_model(broken) == broken
    assert json.loads((broken / "config.json").read_text())["num_hidden_layers"] == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temp dirs left behind"

    monkeypatch.setenv("QVDOCTOR_CACHE", str(tmp_path / "cache"))
    assert tinymodel.default_model_dir() == tmp_path / "cache" / "models" / "tiny-random-qwen2.5-vl"


def _smart_resize(h: int, w: int, factor: int = 28, min_pixels: int = 3136, max_pixels: int = 12845056):
    """qwen-vl-utils' smart_resize, for the expected token count."""
    hb, wb = round(h / factor) * factor, round(w / factor) * factor
    if hb * wb > max_pixels:
        beta = math.sqrt(h * w / max_pixels)
        hb, wb = math.floor(h / beta / factor) * factor, math.floor(w / beta / factor) * factor
    elif hb * wb < min_pixels:
        beta = math.sqrt(min_pixels / (h * w))
        hb, wb = math.ceil(h * beta / factor) * factor, math.ceil(w * beta / factor) * factor
    return hb, wb


@pytest.mark.vllm
@pytest.mark.usefixtures("require_vllm")
def test_vllm_cpu_answers_a_video_prompt(tiny_model):
    run = run_tiny_vllm({"model": str(tiny_model), "frames": 8, "width": 320, "height": 240})
    assert run.ok, run.tail()
    h, w = _smart_resize(240, 320)
    expected_video_tokens = (8 // 2) * (h // 14) * (w // 14) // 4  # temporal 2, patch 14, merge 2x2
    assert run.result["video_tokens"] == expected_video_tokens == 396
    assert len(run.result["output_token_ids"]) == 16
    assert all(0 <= t < 640 for t in run.result["output_token_ids"])
    assert "Resolved architecture: Qwen2_5_VLForConditionalGeneration" in run.log
