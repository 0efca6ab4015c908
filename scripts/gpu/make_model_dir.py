"""Build a weight-less model directory for ``load_format="dummy"`` runs of a published Qwen2.5-VL
configuration: the published ``config.json`` + ``preprocessor_config.json`` (from
``tests/plan/fixtures/``) with qvdoctor's tiny-model tokenizer, the special-token ids remapped to
that tokenizer's ids. ``vocab_size`` stays as published, so every tensor vLLM allocates (and so
every memory number) is the published model's.

    python scripts/gpu/make_model_dir.py DEST [FIXTURE]   # FIXTURE default qwen2.5-vl-7b-instruct
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "chat_template.json",
                   "generation_config.json")
#: config.json key -> the Qwen added token it names
TOKEN_KEYS = {
    "bos_token_id": "<|endoftext|>",
    "eos_token_id": "<|im_end|>",
    "vision_start_token_id": "<|vision_start|>",
    "vision_end_token_id": "<|vision_end|>",
    "vision_token_id": "<|vision_pad|>",
    "image_token_id": "<|image_pad|>",
    "video_token_id": "<|video_pad|>",
}


def build(dest: Path, fixture: str = "qwen2.5-vl-7b-instruct") -> Path:
    sys.path.insert(0, str(ROOT))
    from qvdoctor.tinymodel import build_tiny_model, token_id

    src = ROOT / "tests" / "plan" / "fixtures" / fixture
    tiny = build_tiny_model()
    dest.mkdir(parents=True, exist_ok=True)
    config = json.loads((src / "config.json").read_text())
    remapped = {k: token_id(name) for k, name in TOKEN_KEYS.items() if k in config}
    config.update(remapped)
    config["qvdoctor_note"] = (f"published {fixture} config.json; special-token ids remapped to qvdoctor's tiny "
                               "tokenizer (vocab_size unchanged) for load_format=dummy runs")
    (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    shutil.copy(src / "preprocessor_config.json", dest / "preprocessor_config.json")
    for name in TOKENIZER_FILES:
        if (tiny / name).exists():
            shutil.copy(tiny / name, dest / name)
    gen = dest / "generation_config.json"
    if gen.exists():
        g = json.loads(gen.read_text())
        for k in ("bos_token_id", "eos_token_id", "pad_token_id"):
            if k in g:
                g[k] = remapped.get(k, g[k]) if k != "pad_token_id" else token_id("<|endoftext|>")
        gen.write_text(json.dumps(g, indent=2) + "\n")
    return dest


if __name__ == "__main__":
    out = build(Path(sys.argv[1]), *(sys.argv[2:3]))
    print(out)
