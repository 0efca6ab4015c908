"""Decode only the frames asked for, with threaded decoding.

* frames are found by presentation timestamp, like decord: frame ``i`` is the packet with the
  ``i``-th smallest pts (:func:`qvdoctor.video.probe.probe_video`);
* decoding starts at the keyframe before the first wanted frame and stops after the last one;
* packets of frames nobody wants are decoded with ``skip_frame=NONREF`` (H.264/HEVC/MPEG-1/2 skip
  them when no other frame refers to them), so B-frames that are not sampled cost nothing;
* only sampled frames are converted to RGB (the same swscale conversion decord uses, bit for bit)
  and resized, on a thread pool that overlaps with decoding.

Resizing (``resize=``): ``"pil"`` is Pillow's antialiased bicubic, the algorithm torchvision's
``resize(BICUBIC, antialias=True)`` (used by qwen-vl-utils) was ported from; it differs from
torchvision by a rounding step on ~1 % of values. ``"swscale"`` converts and scales in one
swscale pass (faster, values further away). ``"none"`` keeps the decoded size.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from qvdoctor.errors import QvError
from qvdoctor.video._av import decode_error, open_video, require_av
from qvdoctor.video.probe import VideoInfo

RESIZE_MODES = ("pil", "swscale", "none")
# Decoders that honour skip_frame=NONREF per packet (frame threading copies it per packet).
_NONREF_CODECS = frozenset({"h264", "hevc", "mpeg2video", "mpeg1video"})


def decode_frames(
    info: VideoInfo,
    indices: Sequence[int],
    size: tuple[int, int] | None = None,
    *,
    resize: str = "pil",
    threads: int = 0,
    skip_nonref: bool = True,
) -> tuple[Any, dict[str, Any]]:
    """Frames ``indices`` of ``info.path`` as a ``(T, H, W, 3)`` uint8 array, resized to
    ``size = (height, width)`` when given. Returns ``(frames, stats)``; ``stats`` counts the
    frames the decoder produced."""
    import numpy as np

    if resize not in RESIZE_MODES:
        raise QvError(f"unknown resize mode {resize!r}", hint=f"use one of {', '.join(RESIZE_MODES)}")
    if not indices:
        raise QvError("no frames to decode")
    bad = [i for i in indices if not 0 <= i < info.total_frames]
    if bad:
        raise QvError(f"frame index {bad[0]} is outside the video ({info.total_frames} frames)")
    if size is None or resize == "none":
        size = (info.height, info.width)
    positions: dict[int, list[int]] = {}
    for pos, idx in enumerate(indices):
        positions.setdefault(int(idx), []).append(pos)
    out = np.empty((len(indices), size[0], size[1], 3), dtype=np.uint8)
    use_skip = skip_nonref and bool(info.frame_pts) and info.codec in _NONREF_CODECS
    stats = _decode_into(info, positions, out, size, resize, threads, use_skip)
    if stats["missing"] and use_skip:  # a decoder that skipped more than asked: decode everything
        stats = _decode_into(info, positions, out, size, resize, threads, False)
    if stats["missing"]:
        first = min(stats["missing"])
        raise QvError(
            f"cannot decode frame {first} of {info.path} ({len(stats['missing'])} of {len(positions)} "
            "sampled frames missing): the file is truncated or corrupt",
            hint="check it with ffprobe, or re-encode it: ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p OUT.mp4",
        )
    return out, stats


def _decode_into(info: VideoInfo, positions: dict[int, list[int]], out, size: tuple[int, int],
                 resize: str, threads: int, use_skip: bool) -> dict[str, Any]:
    av = require_av()
    remaining = set(positions)
    pts_index = {pts: i for i, pts in enumerate(info.frame_pts)} if info.frame_pts else None
    first = min(remaining)
    decoded = 0
    container, stream = open_video(info.path)
    workers = max(2, os.cpu_count() or 2)
    try:
        stream.thread_type = "AUTO"
        ctx = stream.codec_context
        ctx.thread_count = threads
        if pts_index is not None and info.keyframes:
            key = max((k for k in info.keyframes if k <= first), default=0)
            if key > 0:
                container.seek(info.frame_pts[key], stream=stream, backward=True, any_frame=False)
        skipping = False
        counter = -1
        with ThreadPoolExecutor(max_workers=workers) as pool:
            jobs: deque = deque()
            try:
                for pkt in container.demux(stream):
                    if use_skip:
                        idx = pts_index.get(pkt.pts) if pkt.pts is not None else None
                        want_skip = idx is not None and idx not in remaining
                        if want_skip != skipping:
                            ctx.skip_frame = "NONREF" if want_skip else "DEFAULT"
                            skipping = want_skip
                    for frame in pkt.decode():
                        decoded += 1
                        if pts_index is not None:
                            idx = pts_index.get(frame.pts if frame.pts is not None else frame.dts)
                        else:
                            counter += 1
                            idx = counter
                        if idx in remaining:
                            remaining.discard(idx)
                            jobs.append(pool.submit(_convert, frame, out, positions[idx], size, resize,
                                                    info.quarter_turns))
                            while len(jobs) > 4 * workers:  # bound the decoded frames held in memory
                                jobs.popleft().result()
                    if not remaining:
                        break
            except av.error.FFmpegError as exc:
                if decoded == 0:
                    raise decode_error(info.path, exc) from exc
                # a damaged tail: frames already decoded are kept; missing ones are reported
            for job in jobs:
                job.result()
    finally:
        container.close()
    return {"frames_decoded": decoded, "skip_nonref": use_skip, "missing": sorted(remaining)}


def _convert(frame, out, positions: list[int], size: tuple[int, int], resize: str, turns: int) -> None:
    import numpy as np

    height, width = size
    coded = (height, width) if turns % 2 == 0 else (width, height)  # target size before rotating
    if resize == "swscale" and (frame.height, frame.width) != coded:
        arr = frame.reformat(width=coded[1], height=coded[0], format="rgb24", interpolation="BICUBIC").to_ndarray()
        arr = np.rot90(arr, turns) if turns else arr
    else:
        arr = frame.to_ndarray(format="rgb24")
        if turns:  # decord rotates with FFmpeg's transpose filter before scaling: same pixels
            arr = np.ascontiguousarray(np.rot90(arr, turns))
        if arr.shape[:2] != (height, width):
            arr = _pil_resize(arr, height, width)
    for pos in positions:
        out[pos] = arr


def _pil_resize(arr, height: int, width: int):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.fromarray(arr).resize((width, height), Image.Resampling.BICUBIC))
