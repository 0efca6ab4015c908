"""The child process of one smoke attempt: load the engine, run one video prompt, write a result.

Run as ``python -m qvdoctor.smoke.child SPEC.json``. The spec (written by the parent) names the
backend (``vllm`` offline or ``transformers``), the model, the engine flags, the prompt, the
sampled frames (``.npy``) with their vLLM metadata, how many copies of the video the prompt
carries, and where to write the result JSON. Everything the engine prints goes to stdout/stderr,
which the parent streams into the kept log; on any failure the traceback ends up there and the
exit status is non-zero. The ``__main__`` guard matters: vLLM's workers are spawned and
re-import the main module.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

#: The chat layout of Qwen2.5-VL (its published chat template, for a model that ships none).
_FALLBACK_PROMPT = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{videos}{text}<|im_end|>\n"
    "<|im_start|>assistant\n"
)
_VIDEO_SLOT = "<|vision_start|><|video_pad|><|vision_end|>"

#: VideoMetadata fields transformers accepts.
_HF_METADATA_KEYS = ("total_num_frames", "fps", "width", "height", "duration", "video_backend", "frames_indices")


def _messages(prompt: str, num_videos: int) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = [{"type": "video"} for _ in range(num_videos)]
    content.append({"type": "text", "text": prompt})
    return [{"role": "user", "content": content}]


def chat_prompt(templater: Any, prompt: str, num_videos: int) -> str:
    """The model's own chat template applied to one user turn, else Qwen2.5-VL's layout."""
    try:
        text = templater.apply_chat_template(_messages(prompt, num_videos), tokenize=False, add_generation_prompt=True)
        if isinstance(text, str) and text.count("<|video_pad|>") == num_videos:
            return text
    except Exception as exc:  # noqa: BLE001 - a template problem is not the engine's failure
        print(f"[qvdoctor] chat template not usable ({type(exc).__name__}: {exc}); using Qwen2.5-VL's layout", flush=True)
    return _FALLBACK_PROMPT.format(videos=_VIDEO_SLOT * num_videos, text=prompt)


def _video_token_id(model: str) -> int | None:
    try:
        return int(json.loads((Path(model) / "config.json").read_text())["video_token_id"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _load_video(spec: dict[str, Any]):
    import numpy as np

    frames = np.load(spec["video"]["frames"])
    return frames, dict(spec["video"]["metadata"])


def run_vllm(spec: dict[str, Any]) -> dict[str, Any]:
    from vllm import LLM, SamplingParams

    frames, metadata = _load_video(spec)
    n = int(spec.get("num_videos", 1))
    t0 = time.perf_counter()
    # disable_log_stats=False: vLLM then fills RequestOutput.metrics (first-token timestamps).
    llm = LLM(model=spec["model"], disable_log_stats=False, **spec["flags"])
    load_s = time.perf_counter() - t0
    prompt = chat_prompt(llm.get_tokenizer(), spec["prompt"], n)
    video = (frames, metadata)
    mm = {"video": [video] * n if n > 1 else video}
    params = SamplingParams(max_tokens=int(spec.get("max_tokens", 32)), temperature=0.0)
    print(f"[qvdoctor] engine ready in {load_s:.1f} s; generating with {n} video(s) of {frames.shape[0]} frames", flush=True)
    t1 = time.perf_counter()
    (out,) = llm.generate({"prompt": prompt, "multi_modal_data": mm}, params, use_tqdm=False)
    wall = time.perf_counter() - t1
    completion = out.outputs[0]
    generated = len(completion.token_ids)
    ttft = decode_tps = None
    stats = out.metrics
    if stats is not None and getattr(stats, "first_token_ts", 0):
        ttft = float(stats.first_token_latency) or None
        span = float(stats.last_token_ts) - float(stats.first_token_ts)
        if generated > 1 and span > 0:
            decode_tps = (generated - 1) / span
    vid = _video_token_id(spec["model"])
    return {
        "text": completion.text,
        "finish_reason": completion.finish_reason,
        "prompt_tokens": len(out.prompt_token_ids or []),
        "generated_tokens": generated,
        "visual_tokens": sum(1 for t in out.prompt_token_ids or [] if t == vid) if vid is not None else None,
        "ttft_s": ttft,
        "decode_tokens_per_s": decode_tps,
        "generate_s": wall,
        "load_s": load_s,
        "timing_source": "vllm request metrics" if ttft is not None else "wall clock",
    }


class _TokenClock:
    """A transformers streamer that only notes when tokens arrive (the first put is the prompt)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.tokens = 0
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        self.times.append(time.perf_counter())
        self.tokens += int(getattr(value, "numel", lambda: 1)())

    def end(self) -> None:
        pass


_TORCH_DTYPES = {"float16": "float16", "half": "float16", "bfloat16": "bfloat16", "float32": "float32", "float": "float32"}


def run_transformers(spec: dict[str, Any]) -> dict[str, Any]:
    import torch
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    frames, metadata = _load_video(spec)
    n = int(spec.get("num_videos", 1))
    flags = spec["flags"]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype_name = _TORCH_DTYPES.get(str(flags.get("dtype", "auto")).lower())
    dtype: Any = getattr(torch, dtype_name) if dtype_name else "auto"
    if device == "cpu" and dtype_name is None:
        dtype = torch.float32
    t0 = time.perf_counter()
    kwargs: dict[str, Any] = {"dtype": dtype}
    if flags.get("attn_implementation"):
        kwargs["attn_implementation"] = flags["attn_implementation"]
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(spec["model"], **kwargs).to(device).eval()
    processor = AutoProcessor.from_pretrained(spec["model"])
    load_s = time.perf_counter() - t0
    text = chat_prompt(processor, spec["prompt"], n)
    hf_meta = {k: metadata[k] for k in _HF_METADATA_KEYS if k in metadata}
    hf_meta.setdefault("height", int(frames.shape[1]))
    hf_meta.setdefault("width", int(frames.shape[2]))
    inputs = processor(
        text=[text],
        videos=[frames] * n,
        video_metadata=[hf_meta] * n,
        do_sample_frames=False,  # the frames are already sampled as qwen-vl-utils does
        return_tensors="pt",
    ).to(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    print(f"[qvdoctor] model ready on {device} in {load_s:.1f} s; generating with {n} video(s) of {frames.shape[0]} frames", flush=True)
    clock = _TokenClock()
    max_new = int(spec.get("max_tokens", 32))
    t1 = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=max_new, do_sample=False, streamer=clock)
    wall = time.perf_counter() - t1
    prompt_len = int(inputs["input_ids"].shape[1])
    new_ids = out[0, prompt_len:]
    generated = int(new_ids.numel())
    ttft = clock.times[0] - t1 if clock.times else None
    decode_tps = None
    if len(clock.times) > 1 and clock.times[-1] > clock.times[0]:
        decode_tps = (len(clock.times) - 1) / (clock.times[-1] - clock.times[0])
    vid = getattr(model.config, "video_token_id", None)
    result = {
        "text": processor.batch_decode([new_ids], skip_special_tokens=True)[0],
        "finish_reason": "length" if generated >= max_new else "stop",
        "prompt_tokens": prompt_len,
        "generated_tokens": generated,
        "visual_tokens": int((inputs["input_ids"][0] == vid).sum()) if vid is not None else None,
        "ttft_s": ttft,
        "decode_tokens_per_s": decode_tps,
        "generate_s": wall,
        "load_s": load_s,
        "timing_source": "streamer timestamps",
        "device": device,
        "dtype": str(dtype).replace("torch.", ""),
    }
    if device == "cuda":
        result["torch_peak_allocated_bytes"] = int(torch.cuda.max_memory_allocated())
        result["gpu_name"] = torch.cuda.get_device_name(0)
    return result


ENGINES = {"vllm": run_vllm, "transformers": run_transformers}  # what the child process runs


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[1]).read_text())
    result = ENGINES[spec["backend"]](spec)
    out = Path(spec["result"])
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, out)
    print(f"[qvdoctor] done: {result['generated_tokens']} tokens generated", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
