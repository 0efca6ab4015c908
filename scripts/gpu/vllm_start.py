"""One vLLM engine start on the GPU host (``grid.py`` runs each in its own process under a deadline).

    python vllm_start.py '{"model": DIR, "llm": {...}, "requests": [...]}'

``llm``: ``vllm.LLM(...)`` keyword arguments (``load_format="dummy"`` and ``seed=0`` by default).
``requests``: run in order after the engine is up; each is
``{"kind": "text", "max_tokens": 8}`` or
``{"kind": "video", "frames": 128, "width": 1008, "height": 560, "max_tokens": 8}``
(a synthetic clip passed as ``(frames, metadata)`` with ``do_sample_frames=False``, so the frame
count is exactly ``frames``). The first failing request ends the run (exit 1), as an engine that
died would.

A thread polls NVML (no CUDA context in this process, so vLLM's free-memory check is untouched)
and each phase reports the peak of the device's used memory. Lines ``QVDOCTOR_RESULT {json}``
(one per phase) and ``QVDOCTOR_DONE {json}`` carry the numbers.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback

MARK = "QVDOCTOR_RESULT"


class GpuPeak:
    """Peak of NVML's used memory on GPU 0 since the last :meth:`take`."""

    def __init__(self, interval: float = 0.02) -> None:
        self.peak = 0
        self.ok = False
        self._stop = False
        try:
            import pynvml

            pynvml.nvmlInit()
            self._h = pynvml.nvmlDeviceGetHandleByIndex(0)
            self._nvml = pynvml
            self.ok = True
            self.baseline = self.used()
            threading.Thread(target=self._run, args=(interval,), daemon=True).start()
        except Exception as exc:  # noqa: BLE001
            print(f"[vllm_start] NVML unavailable: {exc}", flush=True)
            self.baseline = 0

    def used(self) -> int:
        return int(self._nvml.nvmlDeviceGetMemoryInfo(self._h).used)

    def _run(self, interval: float) -> None:
        while not self._stop:
            try:
                self.peak = max(self.peak, self.used())
            except Exception:  # noqa: BLE001
                pass
            time.sleep(interval)

    def take(self) -> dict:
        if not self.ok:
            return {}
        now = self.used()
        out = {"nvml_peak_used_bytes": max(self.peak, now), "nvml_used_bytes": now, "nvml_baseline_bytes": self.baseline}
        self.peak = now
        return out


def synthetic_video(frames: int, width: int, height: int, fps: float = 2.0):
    import numpy as np

    video = np.full((frames, height, width, 3), 16, dtype=np.uint8)
    bar = max(1, width // 8)
    for i in range(frames):
        x = (i * bar) % width
        video[i, :, x : x + bar] = 255
    metadata = {"fps": fps, "duration": frames / fps, "total_num_frames": frames, "frames_indices": list(range(frames)),
                "video_backend": "opencv", "do_sample_frames": False}
    return video, metadata


def prompt_for(kind: str) -> str:
    vision = "<|vision_start|><|video_pad|><|vision_end|>" if kind == "video" else ""
    return ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            f"<|im_start|>user\n{vision}Describe this.<|im_end|>\n<|im_start|>assistant\n")


def report(phase: str, **data) -> None:
    print(MARK, json.dumps({"phase": phase, **data}), flush=True)


def main(cfg: dict) -> int:
    peak = GpuPeak()
    t0 = time.monotonic()
    from vllm import LLM, SamplingParams

    kwargs = {"load_format": "dummy", "seed": 0, **cfg.get("llm", {})}
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    try:
        llm = LLM(model=cfg["model"], disable_log_stats=False, **kwargs)
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc()
        report("start", ok=False, error=f"{type(exc).__name__}: {str(exc)[:400]}", seconds=round(time.monotonic() - t0, 2), **peak.take())
        return 1
    report("start", ok=True, seconds=round(time.monotonic() - t0, 2), **peak.take())
    video_token_id = json.load(open(f"{cfg['model']}/config.json")).get("video_token_id")
    for i, req in enumerate(cfg.get("requests", [])):
        kind = req.get("kind", "text")
        prompt: dict = {"prompt": prompt_for(kind)}
        if kind == "video":
            prompt["multi_modal_data"] = {"video": synthetic_video(int(req["frames"]), int(req["width"]), int(req["height"]))}
            if req.get("mm_processor_kwargs"):
                prompt["mm_processor_kwargs"] = req["mm_processor_kwargs"]
        params = SamplingParams(max_tokens=int(req.get("max_tokens", 8)), temperature=0.0, ignore_eos=True)
        t1 = time.monotonic()
        try:
            (out,) = llm.generate(prompt, params, use_tqdm=False)
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            report(f"request{i}", kind=kind, spec=req, ok=False, error=f"{type(exc).__name__}: {str(exc)[:400]}",
                   seconds=round(time.monotonic() - t1, 2), **peak.take())
            return 1
        m = out.metrics
        ttft = float(getattr(m, "first_token_latency", 0) or 0) or None
        span = (float(m.last_token_ts) - float(m.first_token_ts)) if m is not None and getattr(m, "first_token_ts", 0) else 0
        n = len(out.outputs[0].token_ids)
        report(f"request{i}", kind=kind, spec=req, ok=True, seconds=round(time.monotonic() - t1, 3),
               prompt_tokens=len(out.prompt_token_ids or []),
               video_tokens=sum(1 for t in out.prompt_token_ids or [] if t == video_token_id),
               generated_tokens=n, ttft_s=ttft, decode_tokens_per_s=((n - 1) / span) if n > 1 and span > 0 else None,
               **peak.take())
    print("QVDOCTOR_DONE", json.dumps({"seconds": round(time.monotonic() - t0, 2)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
