"""Profile of qvdoctor.video on the bench clip: where the time goes, and what the rejected shortcuts
would give. Companion of bench/video.py (same cached clip); numbers go to docs/video.md.

* decode of the sampled frames (no resize) with 1, 4, 8 and 16 parallel decoders, decoder threads
  left to qvdoctor (0) or 1 each;
* the resize of one 1080p frame: ``swscale`` (default) against ``pil``, ms per frame;
* shortcuts that give up exact pixels, each against the exact decode in the same run: skipping the
  loop filter on every non-key frame, and ``flags2=fast``.

    .venv/bin/python bench/video_profile.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_spec = importlib.util.spec_from_file_location("bench_video", Path(__file__).with_name("video.py"))
bench_video = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_video)


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def best_of(repeat: int, fn):
    """``(result, best wall, CPU of that run)``."""
    best = None
    for _ in range(repeat):
        wall, c = time.perf_counter(), cpu()
        result = fn()
        wall, c = time.perf_counter() - wall, cpu() - c
        if best is None or wall < best[1]:
            best = (result, wall, c)
    return best


def plain_decode(clip: Path, wanted: set[int], info, options: dict[str, str] | None = None, fast: bool = False):
    """Sampled frames (grey) from one in-order decode with FFmpeg's threads, NONREF skipping as
    qvdoctor does, plus decoder ``options`` / ``flags2=fast``: the peer of the shortcuts."""
    import av

    pts_index = {p: i for i, p in enumerate(info.frame_pts)}
    out = {}
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        ctx = stream.codec_context
        if options:
            ctx.options = options
        if fast:
            ctx.flags2 |= av.codec.context.Flags2.fast
        for pkt in container.demux(stream):
            idx = pts_index.get(pkt.pts)
            ctx.skip_frame = "NONREF" if idx is not None and idx not in wanted else "DEFAULT"
            for frame in pkt.decode():
                j = pts_index.get(frame.pts)
                if j in wanted:
                    out[j] = frame.to_ndarray(format="gray")
            if len(out) == len(wanted):
                break
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    import numpy as np

    from qvdoctor.model import vision_tokens as vt
    from qvdoctor.video import decode as dec
    from qvdoctor.video import probe_video

    clip = bench_video.ensure_clip()
    info, wall, _ = best_of(args.repeat, lambda: probe_video(clip))
    tokens = vt.qwen_vl_utils_video(width=info.width, height=info.height, video_fps=info.fps,
                                    total_frames=info.total_frames, fps=2.0, max_pixels=360 * 420)
    idx = list(tokens.indices)
    print(f"clip {clip}: {info.total_frames} frames, {len(info.keyframes)} keyframes; {len(idx)} sampled; "
          f"probe {wall:.3f} s; best of {args.repeat}")

    default_max = dec.MAX_DECODERS
    for decoders in (1, 4, 8, 16):
        dec.MAX_DECODERS = decoders
        for threads in (0, 1):
            (_, stats), wall, c = best_of(args.repeat, lambda: dec.decode_frames(info, idx, resize="none", threads=threads))
            print(f"decode, resize none, max {decoders:2d} decoders, threads {threads}: wall {wall:.3f} s, "
                  f"cpu {c:.2f} s, {stats['workers']} decoders, {stats['frames_decoded']} frames decoded")
    dec.MAX_DECODERS = default_max

    import av

    with av.open(str(clip)) as container:
        frames = [f.reformat(format="rgb24") for _, f in zip(range(20), container.decode(video=0))]
    arrays = [f.to_ndarray() for f in frames]
    h, w = tokens.resized_height, tokens.resized_width
    for name, fn, inputs in (("swscale", dec._sws_resize, frames), ("pil", dec._pil_resize, arrays)):
        fn(inputs[0], h, w)  # the filter graph is built once per size
        _, wall, _ = best_of(args.repeat, lambda: [fn(x, h, w) for x in inputs])
        print(f"resize 1920x1080 -> {w}x{h}, {name}: {1000 * wall / len(inputs):.2f} ms per frame")

    wanted = set(idx)
    exact, wall0, _ = best_of(args.repeat, lambda: plain_decode(clip, wanted, info))
    print(f"exact in-order decode of the sampled frames: {wall0:.3f} s")
    for label, kwargs in (("skip_loop_filter=nokey", {"options": {"skip_loop_filter": "nokey"}}),
                          ("flags2=fast", {"fast": True})):
        got, wall, _ = best_of(args.repeat, lambda kwargs=kwargs: plain_decode(clip, wanted, info, **kwargs))
        diff = np.stack([np.abs(got[i].astype(np.int16) - exact[i].astype(np.int16)) for i in idx])
        print(f"{label}: {wall:.3f} s ({wall0 / wall:.2f}x the exact decode); luma values differing "
              f"{(diff > 0).mean():.1%}, mean |diff| {diff.mean():.3f}, max {diff.max()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
