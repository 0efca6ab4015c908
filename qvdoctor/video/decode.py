"""Decode only the frames asked for, with threaded decoding.

* frames are found by presentation timestamp, like decord: frame ``i`` is the packet with the
  ``i``-th smallest pts (:func:`qvdoctor.video.probe.probe_video`);
* each keyframe interval that holds wanted frames is a task: decoding starts at its keyframe and
  stops once its last wanted frame came out; tasks run in parallel on up to :data:`MAX_DECODERS`
  decoders sharing the CPUs (a GOP needs nothing from the one before it, so the pixels are those
  of a decode from the start);
* packets of frames nobody wants are decoded with ``skip_frame=NONREF`` (H.264/HEVC/MPEG-1/2 skip
  them when no other frame refers to them), so B-frames that are not sampled cost nothing;
* only sampled frames are converted to RGB (the same swscale conversion decord uses, bit for bit)
  and resized, on a thread pool that overlaps with decoding.

Resizing (``resize=``), after the RGB conversion, as qwen-vl-utils' ``torchvision resize(BICUBIC,
antialias=True)``: ``"swscale"`` (default) is swscale's bicubic with the same kernel (Keys,
a = -0.5), ~3 times faster than ``"pil"`` and closer to torchvision; ``"pil"`` is Pillow's
antialiased bicubic, which torchvision's was ported from. Both differ from it by rounding only
(docs/video.md). ``"none"`` keeps the decoded size.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from qvdoctor.errors import QvError
from qvdoctor.video._av import decode_error, open_video, require_av
from qvdoctor.video.probe import VideoInfo

RESIZE_MODES = ("swscale", "pil", "none")
# Parallel decoders at most: each holds its own reference frames (up to ~200 MB for 4K HEVC).
MAX_DECODERS = 8
# Decoders that honour skip_frame=NONREF per packet (frame threading copies it per packet).
_NONREF_CODECS = frozenset({"h264", "hevc", "mpeg2video", "mpeg1video"})


def decode_frames(
    info: VideoInfo,
    indices: Sequence[int],
    size: tuple[int, int] | None = None,
    *,
    resize: str = "swscale",
    threads: int = 0,
    skip_nonref: bool = True,
) -> tuple[Any, dict[str, Any]]:
    """Frames ``indices`` of ``info.path`` as a ``(T, H, W, 3)`` uint8 array, resized to
    ``size = (height, width)`` when given. Returns ``(frames, stats)``; ``stats`` counts the
    frames the decoder produced and the keyframe intervals (tasks) decoded in parallel.
    ``threads`` is the threads of each decoder (0: FFmpeg's choice when one task, else the CPUs
    shared among the decoders, at most :data:`MAX_DECODERS` of them)."""
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
    if stats["missing"]:  # a decoder that skipped more than asked, or a bad seek: decode everything in order
        stats = _decode_into(info, positions, out, size, resize, threads, False, parallel=False)
    if stats["missing"]:
        first = min(stats["missing"])
        raise QvError(
            f"cannot decode frame {first} of {info.path} ({len(stats['missing'])} of {len(positions)} "
            "sampled frames missing): the file is truncated or corrupt",
            hint="check it with ffprobe, or re-encode it: ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p OUT.mp4",
        )
    return out, stats


@dataclass
class _Task:
    """Decode from keyframe ``key`` (a frame index) until every frame of ``wanted`` came out."""

    key: int
    wanted: set[int]

    @property
    def cost(self) -> int:
        return max(self.wanted) - self.key + 1


def _plan_tasks(info: VideoInfo, wanted: Iterable[int], indexed: bool) -> list[_Task]:
    """One task per keyframe interval that holds wanted frames (independent, so they decode in
    parallel), longest first; one task from the start of the file without a frame index."""
    wanted = sorted(wanted)
    if not indexed or not info.keyframes:
        return [_Task(0, set(wanted))]
    keys = sorted(info.keyframes)
    groups: dict[int, set[int]] = {}
    for idx in wanted:
        at = bisect_right(keys, idx) - 1
        groups.setdefault(keys[at] if at >= 0 else 0, set()).add(idx)
    return sorted((_Task(k, g) for k, g in groups.items()), key=lambda t: t.cost, reverse=True)


def _decode_into(info: VideoInfo, positions: dict[int, list[int]], out, size: tuple[int, int],
                 resize: str, threads: int, use_skip: bool, parallel: bool = True) -> dict[str, Any]:
    av = require_av()
    pts_index = {pts: i for i, pts in enumerate(info.frame_pts)} if info.frame_pts else None
    tasks = _plan_tasks(info, positions, indexed=pts_index is not None and parallel)
    cpus = os.cpu_count() or 2
    workers = min(len(tasks), cpus, MAX_DECODERS)
    per_decoder = threads or (max(1, cpus // workers) if workers > 1 else 0)  # 0: FFmpeg's choice
    max_pending = max(2, 4 * cpus // workers)  # decoded frames waiting for conversion, per decoder
    queue = deque(tasks)
    counts = {"decoded": 0}
    errors: list[Exception] = []
    missing: set[int] = set()
    lock = threading.Lock()

    def decode_tasks(convert_pool: ThreadPoolExecutor) -> None:
        container, stream = open_video(info.path)
        try:
            stream.thread_type = "AUTO"
            stream.codec_context.thread_count = per_decoder
            fresh = True
            while True:
                try:
                    task = queue.popleft()
                except IndexError:
                    return
                # a fresh container starts at the beginning: no seek there (some files cannot seek)
                start = info.frame_pts[task.key] if pts_index is not None and (task.key or not fresh) else None
                fresh = False
                left, decoded, error = _decode_task(av, container, stream, task, start, pts_index, use_skip,
                                                    lambda frame, idx: convert_pool.submit(
                                                        _convert, frame, out, positions[idx], size, resize,
                                                        info.quarter_turns), max_pending)
                with lock:
                    counts["decoded"] += decoded
                    missing.update(left)
                    if error is not None:
                        errors.append(error)
        finally:
            container.close()

    with ThreadPoolExecutor(max_workers=max(2, cpus)) as convert_pool, \
            ThreadPoolExecutor(max_workers=workers) as decode_pool:
        for job in [decode_pool.submit(decode_tasks, convert_pool) for _ in range(workers)]:
            job.result()
    if errors and counts["decoded"] == 0:
        raise decode_error(info.path, errors[0]) from errors[0]
    return {"frames_decoded": counts["decoded"], "skip_nonref": use_skip, "tasks": len(tasks),
            "workers": workers, "missing": sorted(missing)}


def _decode_task(av, container, stream, task: _Task, start_pts: int | None, pts_index: dict[int, int] | None,
                 use_skip: bool, submit: Callable[[Any, int], Any], max_pending: int) -> tuple[set[int], int, Exception | None]:
    """Decode ``task``; each wanted frame goes to ``submit``. Returns the wanted frames that never
    came out, the number of frames decoded and the FFmpeg error that ended decoding early, if any
    (a damaged tail: frames already decoded are kept, the rest are reported missing)."""
    remaining = set(task.wanted)
    ctx = stream.codec_context
    decoded, counter, skipping = 0, -1, False
    ctx.skip_frame = "DEFAULT"
    jobs: deque = deque()
    try:
        if start_pts is not None:
            container.seek(start_pts, stream=stream, backward=True, any_frame=False)
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
                    jobs.append(submit(frame, idx))
                    while len(jobs) > max_pending:  # bound the decoded frames held in memory
                        jobs.popleft().result()
            if not remaining:
                break
        error = None
    except av.error.FFmpegError as exc:
        error = exc
    for job in jobs:
        job.result()
    return remaining, decoded, error


def _convert(frame, out, positions: list[int], size: tuple[int, int], resize: str, turns: int) -> None:
    import numpy as np

    height, width = size
    rgb = frame.reformat(format="rgb24")  # decord's conversion, bit for bit
    if turns:  # decord rotates with FFmpeg's transpose filter before scaling: same pixels
        rgb = require_av().VideoFrame.from_ndarray(np.ascontiguousarray(np.rot90(rgb.to_ndarray(), turns)),
                                                   format="rgb24")
    if (rgb.height, rgb.width) == (height, width):
        arr = rgb.to_ndarray()
    else:
        arr = _pil_resize(rgb.to_ndarray(), height, width) if resize == "pil" else _sws_resize(rgb, height, width)
    for pos in positions:
        out[pos] = arr


def _pil_resize(arr, height: int, width: int):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.fromarray(arr).resize((width, height), Image.Resampling.BICUBIC))


_graphs = threading.local()


def _sws_resize(rgb, height: int, width: int):
    """swscale's bicubic with the kernel torchvision and Pillow use (Keys, a = -0.5: B = 0,
    C = 0.5), widened when downscaling as theirs is; one filter graph per thread and size."""
    av = require_av()
    key = (rgb.height, rgb.width, height, width)
    graphs = _graphs.__dict__.setdefault("by_size", {})
    if key not in graphs:
        graph = av.filter.Graph()
        src = graph.add_buffer(width=key[1], height=key[0], format="rgb24", time_base=Fraction(1, 1))
        scale = graph.add("scale", f"{width}:{height}:flags=bicubic+accurate_rnd+full_chroma_int+full_chroma_inp+bitexact:param0=0:param1=0.5")
        sink = graph.add("buffersink")
        src.link_to(scale)
        scale.link_to(sink)
        graph.configure()
        graphs[key] = graph
    graph = graphs[key]
    graph.push(rgb)
    return graph.pull().to_ndarray()
