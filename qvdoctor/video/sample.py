"""Sample a video exactly as qwen-vl-utils 0.0.14 ``fetch_video`` does, and package the result
for vLLM as ``(frames, metadata)``."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from qvdoctor.video.decode import decode_frames
from qvdoctor.video.probe import VideoInfo, probe_video
from qvdoctor.model.vision_tokens import VideoTokens, qwen_vl_utils_video

VIDEO_BACKEND = "pyav"


@dataclass
class SampledVideo:
    """Frames sampled and resized like qwen-vl-utils, with what vLLM needs alongside them."""

    frames: Any  # numpy uint8 array (T, H, W, 3), RGB
    metadata: dict[str, Any]  # the metadata dict vLLM's Qwen2.5-VL processor reads
    tokens: VideoTokens  # frame indices, resized size, visual-token count
    info: VideoInfo
    seconds: float  # wall time of probe + decode + resize
    frames_decoded: int  # frames the decoder produced (the rest were skipped)

    def as_vllm_input(self) -> tuple[Any, dict[str, Any]]:
        """``multi_modal_data={"video": sampled.as_vllm_input()}``."""
        return self.frames, self.metadata

    def summary(self) -> dict[str, Any]:
        return {
            "path": str(self.info.path), "source_size": [self.info.width, self.info.height],
            "source_fps": self.info.fps, "total_frames": self.tokens.total_frames,
            "frames": self.tokens.nframes, "resized": [self.tokens.resized_width, self.tokens.resized_height],
            "visual_tokens": self.tokens.tokens, "sample_fps": self.tokens.sample_fps,
            "frames_decoded": self.frames_decoded, "seconds": round(self.seconds, 3),
        }


def vllm_metadata(info: VideoInfo, tokens: VideoTokens, fps: float | None = None) -> dict[str, Any]:
    """Metadata in the shape vLLM's own loaders produce (``vllm/multimodal/video.py``): Qwen2.5-VL
    drops ``do_sample_frames`` and builds transformers' ``VideoMetadata`` from the other keys.
    ``total_num_frames`` and ``frames_indices`` follow qwen-vl-utils (count of the trimmed clip,
    absolute indices), so ``len(frames_indices) / total_num_frames × fps`` is its ``sample_fps``."""
    fps = info.fps if fps is None else fps
    return {
        "total_num_frames": tokens.total_frames,
        "fps": fps,
        "duration": tokens.total_frames / fps if fps > 0 else 0.0,
        "video_backend": VIDEO_BACKEND,
        "frames_indices": list(tokens.indices),
        "do_sample_frames": False,
    }


def load_video(
    path: str | os.PathLike,
    *,
    fps: float | None = None,
    nframes: int | None = None,
    min_frames: int | None = None,
    max_frames: int | None = None,
    min_pixels: float | None = None,
    max_pixels: float | None = None,
    total_pixels: float | None = None,
    resized_height: int | None = None,
    resized_width: int | None = None,
    video_start: float | None = None,
    video_end: float | None = None,
    resize: str = "swscale",
    threads: int = 0,
    reader: str = "decord",
) -> SampledVideo:
    """Decode and sample ``path`` like ``qwen_vl_utils.fetch_video({"video": path, ...})`` with
    its decord backend: same frame count and indices, same resized shape, pixel values within
    rounding of its torchvision resize (``resize="swscale"`` or ``"pil"``). The keyword arguments are the keys of
    qwen-vl-utils' video dict. ``reader="torchcodec"`` takes the frame rate the way qwen-vl-utils'
    torchcodec backend (its default when torchcodec is installed) reads it. Raises
    :class:`~qvdoctor.errors.QvError` for a missing, corrupt or unsupported file."""
    start = time.perf_counter()
    info = probe_video(path)
    video_fps = info.reader_fps(reader)
    tokens = qwen_vl_utils_video(
        width=info.width, height=info.height, video_fps=video_fps, total_frames=info.total_frames,
        fps=fps, nframes=nframes, min_frames=min_frames, max_frames=max_frames,
        min_pixels=min_pixels, max_pixels=max_pixels, total_pixels=total_pixels,
        resized_height=resized_height, resized_width=resized_width,
        video_start=video_start, video_end=video_end,
    )
    frames, stats = decode_frames(
        info, tokens.indices, (tokens.resized_height, tokens.resized_width), resize=resize, threads=threads
    )
    return SampledVideo(
        frames=frames, metadata=vllm_metadata(info, tokens, video_fps), tokens=tokens, info=info,
        seconds=time.perf_counter() - start, frames_decoded=stats["frames_decoded"],
    )
