"""Opening media with PyAV, every failure turned into one clear :class:`QvError`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from qvdoctor.errors import QvError

REENCODE_HINT = "re-encode it to H.264: ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p OUT.mp4"


def require_av() -> Any:
    """Import PyAV, or explain how to get it."""
    try:
        import av
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise QvError(
            "video decoding needs PyAV and numpy, which are not installed",
            hint="pip install 'qvdoctor[video]'",
        ) from exc
    return av


def check_file(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise QvError(f"video file not found: {p}", hint="check the path given to --video")
    if p.is_dir():
        raise QvError(f"{p} is a directory, not a video file", hint="give the path of a video file")
    if p.stat().st_size == 0:
        raise QvError(f"video file is empty: {p}", hint="the file was not written completely; copy it again")
    return p


def open_video(path: str | os.PathLike) -> tuple[Any, Any]:
    """Open ``path`` and return ``(container, video_stream)``; the caller closes the container."""
    av = require_av()
    p = check_file(path)
    try:
        container = av.open(str(p), mode="r")
    except av.error.FFmpegError as exc:
        raise QvError(
            f"cannot read {p}: not a video file, or the file is corrupt ({_why(exc)})",
            hint=f"check it with ffprobe, or {REENCODE_HINT}",
        ) from exc
    if not container.streams.video:
        container.close()
        raise QvError(f"{p} has no video stream (not a video file?)",
                      hint="give a file that contains video (mp4, mkv, webm, mov, avi)")
    stream = container.streams.video[0]
    if stream.codec_context is None or stream.codec_context.codec is None:
        name = stream.codec_context.name if stream.codec_context is not None else "unknown"
        container.close()
        raise QvError(f"cannot decode {p}: video codec {name!r} is not supported by PyAV's FFmpeg", hint=REENCODE_HINT)
    return container, stream


def decode_error(path: str | os.PathLike, exc: Exception) -> QvError:
    return QvError(f"cannot decode {Path(path)}: the video data is corrupt ({_why(exc)})",
                   hint=f"check it with ffprobe, or {REENCODE_HINT}")


def _why(exc: Exception) -> str:
    msg = getattr(exc, "strerror", None) or str(exc)
    return msg.split(":")[0].strip() if msg else type(exc).__name__
