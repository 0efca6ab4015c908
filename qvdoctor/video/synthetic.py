"""A short synthetic test clip (FFmpeg's testsrc2 pattern), for runs without ``--video``."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

from qvdoctor.errors import QvError
from qvdoctor.video._av import require_av


_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mkv": "matroska", ".webm": "webm", ".avi": "avi", ".mov": "mov"}


def make_test_clip(
    path: str | os.PathLike,
    *,
    seconds: float = 4.0,
    width: int = 320,
    height: int = 240,
    fps: int | Fraction = 24,
    codec: str = "libx264",
    pattern: str = "testsrc2",
    rotation: int = 0,
) -> Path:
    """Write a ``seconds``-long ``width × height`` clip at ``fps`` to ``path`` (H.264 by default;
    MPEG-4 part 2 when the FFmpeg build has no libx264). The container follows the suffix (.mp4,
    .mkv, .webm, .avi, .mov). Written under a temporary name and renamed, so a half-written clip
    never appears at ``path``. ``rotation`` (clockwise degrees) writes a display matrix, as phones
    do for portrait video."""
    av = require_av()
    if seconds <= 0 or width < 2 or height < 2 or fps <= 0:
        raise QvError(f"cannot make a {seconds} s {width}x{height} clip at {fps} fps", hint="use positive sizes")
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.stem}.{os.getpid()}.partial{dest.suffix or '.mp4'}")
    if codec not in av.codecs_available:
        codec = "mpeg4"
    rate = Fraction(fps).limit_denominator(100000)
    container_format = _FORMATS.get(dest.suffix.lower(), "mp4")
    try:
        graph = av.filter.Graph()
        src = graph.add(pattern, f"size={width}x{height}:rate={rate.numerator}/{rate.denominator}:duration={seconds}")
        fmt = graph.add("format", "yuv420p")
        sink = graph.add("buffersink")
        src.link_to(fmt)
        fmt.link_to(sink)
        graph.configure()
        with av.open(str(tmp), mode="w", format=container_format) as out:
            stream = out.add_stream(codec, rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            if rotation % 360:
                stream.set_display_rotation(-rotation % 360)  # PyAV takes counter-clockwise degrees
            while True:
                try:
                    frame = graph.pull()
                except (av.error.EOFError, av.error.BlockingIOError):
                    break
                frame.pict_type = av.video.frame.PictureType.NONE
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        os.replace(tmp, dest)
    except av.error.FFmpegError as exc:
        raise QvError(f"cannot write a test clip to {dest}: {exc}", hint="check the directory is writable") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest
