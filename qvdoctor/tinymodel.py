"""Build (once, cached) a tiny random Qwen2.5-VL that real vLLM / transformers can load.

The model is random (seeded) and small enough to run on a 2-core CPU, but it is laid out exactly
like a published Qwen2.5-VL-Instruct repository: a flat ``config.json`` with a ``vision_config``,
safetensors weights under the published tensor names, a byte-level BPE tokenizer (trained here)
carrying all of Qwen2.5's special tokens, the published chat template, processor configuration
and generation config. Nothing in it is downloaded.

torch, transformers and tokenizers are imported inside :func:`build_tiny_model` only.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path

#: Bump when anything below changes the produced files; a cached model with another recipe is rebuilt.
RECIPE_VERSION = "2"
MODEL_NAME = "tiny-random-qwen2.5-vl"
STAMP_FILE = ".qvdoctor-tiny-model.json"
SEED = 0

#: Qwen2.5 added tokens, in the published order (151643..151664 in the real vocabulary).
#: ``special`` is False only for the tool-call tags, as in the published tokenizer_config.json.
QWEN_ADDED_TOKENS: list[tuple[str, bool]] = [
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
]
# In the published tokenizer_config.json the FIM / repo tokens are "special": false too.

VOCAB_SIZE = 640  # embedding rows; the BPE vocabulary + the 22 added tokens fill it exactly
BPE_VOCAB_SIZE = VOCAB_SIZE - len(QWEN_ADDED_TOKENS)

#: Qwen2's pre-tokenizer split (published tokenizer.json of Qwen2.5 / Qwen2.5-VL).
QWEN2_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

#: Published chat template of Qwen/Qwen2.5-VL-7B-Instruct (chat_template.json), verbatim.
QWEN25_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

#: preprocessor_config.json as published for Qwen/Qwen2.5-VL-7B-Instruct (same for 3B/32B/72B; the
#: first revision named the image processor "Qwen2_5_VLImageProcessor", the current one this).
#: The published repos ship no video_preprocessor_config.json: transformers' Qwen2-VL video
#: processor then falls back to these (image) limits, and so does vLLM. We keep that on purpose.
QWEN25_VL_PREPROCESSOR_CONFIG: dict = {
    "min_pixels": 3136,
    "max_pixels": 12845056,
    "patch_size": 14,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "image_processor_type": "Qwen2VLImageProcessor",
    "processor_class": "Qwen2_5_VLProcessor",
}


def default_cache_root() -> Path:
    """qvdoctor's cache root: ``$QVDOCTOR_CACHE`` or ``~/.cache/qvdoctor``."""
    env = os.environ.get("QVDOCTOR_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "qvdoctor"


def default_model_dir() -> Path:
    return default_cache_root() / "models" / MODEL_NAME


def token_id(name: str) -> int:
    """Id of a Qwen added token in the tiny vocabulary (they follow the BPE vocabulary)."""
    names = [t for t, _ in QWEN_ADDED_TOKENS]
    return BPE_VOCAB_SIZE + names.index(name)


def tiny_config() -> dict:
    """config.json of the tiny model, in the flat layout of the published Qwen2.5-VL configs."""
    hidden = 128
    return {
        "architectures": ["Qwen2_5_VLForConditionalGeneration"],
        "model_type": "qwen2_5_vl",
        "attention_dropout": 0.0,
        "bos_token_id": token_id("<|endoftext|>"),
        "eos_token_id": token_id("<|im_end|>"),
        "vision_start_token_id": token_id("<|vision_start|>"),
        "vision_end_token_id": token_id("<|vision_end|>"),
        "vision_token_id": token_id("<|vision_pad|>"),
        "image_token_id": token_id("<|image_pad|>"),
        "video_token_id": token_id("<|video_pad|>"),
        "hidden_act": "silu",
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": 256,
        "max_position_embeddings": 32768,
        "max_window_layers": 2,
        "num_attention_heads": 2,  # head_dim = 128 / 2 = 64 (vLLM's CPU attention needs 64 or 128)
        "num_hidden_layers": 2,
        "num_key_value_heads": 1,
        "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0,
        "rope_scaling": {"type": "mrope", "mrope_section": [8, 12, 12]},  # sums to head_dim / 2
        "sliding_window": 32768,
        "use_sliding_window": False,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "vocab_size": VOCAB_SIZE,
        "vision_config": {
            "depth": 2,
            "hidden_act": "silu",
            "hidden_size": 128,
            "intermediate_size": 256,
            "num_heads": 2,  # vision head_dim 64
            "in_chans": 3,
            "out_hidden_size": hidden,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "spatial_patch_size": 14,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [1],
            "tokens_per_second": 2,
        },
    }


def generation_config() -> dict:
    """generation_config.json of Qwen/Qwen2.5-VL-7B-Instruct (written from a verbatim public copy of
    the published file), with the token ids mapped to the tiny vocabulary."""
    eot, im_end = token_id("<|endoftext|>"), token_id("<|im_end|>")
    return {
        "bos_token_id": eot,
        "pad_token_id": eot,
        "do_sample": True,
        "eos_token_id": [im_end, eot],
        "repetition_penalty": 1.05,
        "temperature": 0.1,
        "top_p": 0.001,
        "top_k": 1,
    }


def _corpus(n_sentences: int = 4000) -> list[str]:
    """A deterministic English-ish corpus with chat and video vocabulary for the BPE trainer."""
    words = (
        "the a an of to and in is it that this what which who where when how why video image "
        "frame frames second seconds minute clip scene person people man woman child dog cat car "
        "street room table window door light red green blue yellow black white small large left "
        "right top bottom front back moving walking running sitting standing holding looking "
        "shows describe explain count there are was were has have had can will would should "
        "system user assistant helpful you are answer question please briefly detail color "
        "number one two three four five six seven eight nine ten first last then next while "
        "during after before model vision language token text output input test pattern bars "
        "moves across screen camera background foreground object objects motion static "
        "happening happens time start end middle quickly slowly very not no yes"
    ).split()
    rng = random.Random(SEED)
    lines = [
        "You are a helpful assistant.",
        "Describe this video.",
        "What is happening in the video?",
        "How many frames are there?",
    ]
    for _ in range(n_sentences):
        n = rng.randint(4, 14)
        s = " ".join(rng.choice(words) for _ in range(n))
        s = s[0].upper() + s[1:] + rng.choice([".", "?", "!", ",", ":"])
        if rng.random() < 0.2:
            s += f" {rng.randint(0, 9999)}"
        lines.append(s)
    return lines


def _write_tokenizer(out: Path) -> None:
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False, trim_offsets=False),
        ]
    )
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, use_regex=False, trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB_SIZE,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    if tok.get_vocab_size() != BPE_VOCAB_SIZE:
        raise RuntimeError(f"BPE trained {tok.get_vocab_size()} tokens, wanted {BPE_VOCAB_SIZE}")
    from tokenizers import AddedToken

    for text, special in QWEN_ADDED_TOKENS:
        added = AddedToken(text, single_word=False, lstrip=False, rstrip=False, normalized=False,
                           special=special)
        if special:
            tok.add_special_tokens([added])
        else:
            tok.add_tokens([added])
    tok.save(str(out / "tokenizer.json"))
    # vocab.json / merges.txt, as the published repos also ship them.
    tok.model.save(str(out))

    added_decoder = {
        str(token_id(text)): {
            "content": text,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": special,
        }
        for text, special in QWEN_ADDED_TOKENS
    }
    tokenizer_config = {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added_decoder,
        "additional_special_tokens": [
            "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
            "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>",
            "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>",
            "<|video_pad|>",
        ],
        "bos_token": None,
        "chat_template": QWEN25_VL_CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 131072,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }
    _write_json(out / "tokenizer_config.json", tokenizer_config)
    _write_json(out / "chat_template.json", {"chat_template": QWEN25_VL_CHAT_TEMPLATE})


def _published_name(key: str) -> str:
    """Map transformers-5 module names to the tensor names of the published checkpoints."""
    if key.startswith("model.language_model."):
        return "model." + key[len("model.language_model."):]
    if key.startswith("model.visual."):
        return key[len("model."):]
    return key


def _write_weights(out: Path, config: dict) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(SEED)
    hf_config = Qwen2_5_VLConfig(**{k: v for k, v in config.items() if k != "architectures"})
    model = Qwen2_5_VLForConditionalGeneration(hf_config).to(torch.bfloat16)
    state = {
        _published_name(k): v.detach().contiguous().clone()
        for k, v in model.state_dict().items()
    }
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _is_complete(path: Path) -> bool:
    stamp = path / STAMP_FILE
    try:
        return json.loads(stamp.read_text())["recipe"] == RECIPE_VERSION
    except (OSError, ValueError, KeyError, TypeError):
        return False


def build_tiny_model(dest: Path | None = None) -> Path:
    """Return a directory holding the tiny random Qwen2.5-VL, building it on first use.

    ``dest`` defaults to ``$QVDOCTOR_CACHE/models/tiny-random-qwen2.5-vl`` (``~/.cache/qvdoctor``).
    The model is built in a temporary sibling directory and renamed into place, so a directory at
    ``dest`` that carries the recipe stamp is always complete; an older recipe is rebuilt.
    """
    dest = Path(dest) if dest is not None else default_model_dir()
    if _is_complete(dest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        config = tiny_config()
        _write_tokenizer(tmp)
        _write_weights(tmp, config)
        _write_json(tmp / "config.json", config)
        _write_json(tmp / "generation_config.json", generation_config())
        _write_json(tmp / "preprocessor_config.json", QWEN25_VL_PREPROCESSOR_CONFIG)
        _write_json(tmp / STAMP_FILE, {"recipe": RECIPE_VERSION, "name": MODEL_NAME, "seed": SEED})
        if dest.exists():  # stale recipe or a broken leftover: move it aside, then replace
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
            os.replace(dest, old / "m")
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.replace(tmp, dest)
        except OSError:
            if _is_complete(dest):  # another process finished first: use its copy
                return dest
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
