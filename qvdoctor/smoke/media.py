"""The video of a smoke run, decoded and sampled once by :mod:`qvdoctor.video` (qwen-vl-utils'
sampling), saved as ``frames.npy`` for every attempt's engine, plus what the report shows.
A missing, corrupt or unsupported file is a one-line error before any engine starts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class PreparedVideo:
    video_path: str  # the file (given, or the generated synthetic clip)
    frames_path: str
    metadata: dict[str, Any]  # as vLLM expects it next to the frames
    info: dict[str, Any]  # source, frames, width, height, visual_tokens_expected


def prepare(video: Path | None, workdir: Path) -> PreparedVideo:
    """Decode + sample ``video`` (or a generated synthetic clip) into ``workdir/frames.npy``."""
    import numpy as np

    from qvdoctor import video as qvideo

    workdir.mkdir(parents=True, exist_ok=True)
    if video is None:
        video = qvideo.make_test_clip(workdir / "synthetic.mp4")
        source = f"synthetic clip {video}"
    else:
        source = str(video)
    sampled = qvideo.load_video(str(video))
    frames = sampled.frames
    frames_path = workdir / "frames.npy"
    tmp = workdir / "frames.part.npy"
    np.save(tmp, np.ascontiguousarray(frames))
    tmp.replace(frames_path)
    tokens = sampled.tokens
    info = {
        "source": source,
        "source_size": [sampled.info.width, sampled.info.height],
        "source_fps": sampled.info.fps,
        "total_frames": tokens.total_frames,
        "frames": int(frames.shape[0]),
        "height": int(frames.shape[1]),
        "width": int(frames.shape[2]),
        "frames_indices": list(tokens.indices),
        "visual_tokens_expected": tokens.tokens,
        "decode_s": round(sampled.seconds, 3),
    }
    return PreparedVideo(str(video), str(frames_path), _plain(sampled.metadata), info)


def _plain(metadata: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe copy (numpy scalars and arrays become Python numbers and lists)."""
    out: dict[str, Any] = {}
    for k, v in metadata.items():
        if hasattr(v, "tolist"):
            v = v.tolist()
        elif isinstance(v, (list, tuple)):
            v = [x.item() if hasattr(x, "item") else x for x in v]
        out[k] = v
    return out
