"""What a video file holds: size, frame rate and a frame index built like decord builds it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from qvdoctor.errors import QvError
from qvdoctor.video._av import decode_error, open_video, require_av


@dataclass(frozen=True)
class VideoInfo:
    """Facts about a video stream. ``total_frames`` and ``fps`` follow decord (what qwen-vl-utils
    reads): one frame per video packet, the stream's average frame rate."""

    path: Path
    width: int  # as displayed: after the container's rotation, which decord applies too
    height: int
    fps: float
    total_frames: int
    codec: str
    pix_fmt: str
    # frame index -> presentation timestamp (sorted); empty when the container gives no pts
    frame_pts: tuple[int, ...] = field(default=(), repr=False)
    keyframes: tuple[int, ...] = field(default=(), repr=False)  # frame indices of keyframes
    time_base: Fraction | None = None
    # frames / (last pts + duration - first pts): the frame rate torchcodec reports after its scan
    content_fps: float = 0.0
    rotation: int = 0  # clockwise degrees (0, 90, 180, 270) of the display matrix, applied to frames

    @property
    def quarter_turns(self) -> int:
        """``k`` of ``np.rot90(frame, k)`` (counter-clockwise) that applies :attr:`rotation`."""
        return (4 - self.rotation // 90) % 4

    def reader_fps(self, reader: str = "decord") -> float:
        """The frame rate qwen-vl-utils sees through its ``decord`` (stream average frame rate) or
        ``torchcodec`` (frames / scanned duration) reader; they differ for some WebM/MKV files."""
        if reader == "decord":
            return self.fps
        if reader == "torchcodec":
            return self.content_fps or self.fps
        raise QvError(f"unknown reader {reader!r}", hint="use 'decord' or 'torchcodec'")

    @property
    def duration(self) -> float:
        """Seconds, as ``total_frames / fps``."""
        return self.total_frames / self.fps if self.fps > 0 else 0.0


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Index frames from the container's packets (only the first frame is decoded, for the
    rotation). Raises :class:`QvError` for a missing, corrupt or unsupported file."""
    av = require_av()
    container, stream = open_video(path)
    try:
        ctx = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        entries: list[tuple[int | None, bool]] = []
        durations: list[int] = []
        try:
            for pkt in container.demux(stream):
                if pkt.size == 0 and pkt.pts is None and pkt.dts is None:
                    continue  # PyAV's end-of-stream flush packet
                entries.append((pkt.pts, bool(pkt.is_keyframe)))
                durations.append(pkt.duration or 0)
        except av.error.FFmpegError as exc:
            if not entries:
                raise decode_error(path, exc) from exc
            # a truncated file: keep what could be read, like decord does
        has_pts = bool(entries) and all(p is not None for p, _ in entries)
        order = sorted(range(len(entries)), key=lambda i: entries[i][0]) if has_pts else list(range(len(entries)))
        frame_pts = tuple(entries[i][0] for i in order) if has_pts else ()
        keyframes = tuple(k for k, i in enumerate(order) if entries[i][1])
        total = len(entries) or int(stream.frames or 0)
        width, height = ctx.width, ctx.height
        rotation = _first_frame_rotation(container, stream)
        if rotation in (90, 270):
            width, height = height, width
        if total <= 0 or width <= 0 or height <= 0:
            raise QvError(f"{Path(path)} has a video stream with no frames", hint="check the file with ffprobe")
        content_fps = 0.0
        if has_pts and stream.time_base:
            seconds = stream.time_base.numerator / stream.time_base.denominator  # like av_q2d
            begin = min(p for p, _ in entries) * seconds
            end = max(p + d for (p, _), d in zip(entries, durations)) * seconds
            content_fps = len(entries) / (end - begin) if end > begin else 0.0
        return VideoInfo(
            path=Path(path), width=width, height=height, fps=fps, total_frames=total,
            codec=ctx.name, pix_fmt=ctx.pix_fmt or "", frame_pts=frame_pts,
            keyframes=keyframes, time_base=stream.time_base, content_fps=content_fps, rotation=rotation,
        )
    finally:
        container.close()



def _first_frame_rotation(container, stream) -> int:
    """Clockwise rotation of the display matrix, as decord reads it (``-av_display_rotation_get``),
    rounded to a quarter turn. PyAV exposes the matrix on decoded frames only, so one frame is
    decoded. 0 when nothing can be decoded here (decoding reports the real error later)."""
    av = require_av()
    try:
        container.seek(0, stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            ccw = getattr(frame, "rotation", 0) or 0
            return (-int(round(ccw / 90.0)) % 4) * 90
    except av.error.FFmpegError:
        return 0
    return 0
