"""Benchmark: sampled frames of a 60 s 1080p30 H.264 clip at fps 2, qvdoctor.video vs qwen-vl-utils.

Both run in the same process, interleaved, on the same cached clip (FFmpeg's testsrc2, libx264
defaults; made once under /tmp/qvdoctor-bench). Reported: wall and CPU seconds per run (best and
median of --repeat), the speed-up ratio, and a check that both produced the same frame indices and
shapes. An ``ffmpeg -f null`` decode of every frame is timed too, for scale.

    .venv/bin/python bench/video.py [--repeat 3] [--max-pixels 151200] [--json]

``--max-pixels 151200`` (360×420, the Qwen README's video example) gives 120 frames of 280×504, the
configuration of the baseline in ../shared/reference/measured.md; ``--max-pixels 0`` uses
qwen-vl-utils' defaults (120 frames of 560×1008).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("FORCE_QWENVL_VIDEO_READER", "decord")

CACHE = Path(os.environ.get("QVDOCTOR_BENCH_CACHE", "/tmp/qvdoctor-bench"))
CLIP = CACHE / "testsrc2_1080p30_60s.mp4"


def ensure_clip() -> Path:
    """The 60 s 1920×1080 30 fps H.264 testsrc2 clip, made once (ffmpeg CLI, else PyAV)."""
    if CLIP.exists():
        return CLIP
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = CLIP.with_name(".partial-" + CLIP.name)
    if shutil.which("ffmpeg"):
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30:duration=60",
                        "-c:v", "libx264", "-pix_fmt", "yuv420p", str(tmp)], check=True)
        os.replace(tmp, CLIP)
    else:
        from qvdoctor.video import make_test_clip

        make_test_clip(CLIP, seconds=60, width=1920, height=1080, fps=30)
    return CLIP


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fn):
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = fn()
    return result, time.perf_counter() - wall, cpu_seconds() - cpu


def run_ours(clip: Path, ele: dict, resize: str):
    from qvdoctor.video import load_video

    sampled = load_video(clip, resize=resize, **ele)
    return sampled.tokens.indices, sampled.frames


def run_qwen(clip: Path, ele: dict):
    from qwen_vl_utils import vision_process as qvu

    qvu.get_video_reader_backend.cache_clear()
    (video, meta), _ = qvu.fetch_video({"video": str(clip), **ele}, return_video_metadata=True,
                                       return_video_sample_fps=True)
    return list(meta["frames_indices"]), video.permute(0, 2, 3, 1).numpy()


def run_ffmpeg(clip: Path):
    start = time.perf_counter()
    proc = subprocess.run(["ffmpeg", "-v", "error", "-threads", str(os.cpu_count() or 2), "-i", str(clip), "-f", "null", "-"],
                          capture_output=True, text=True)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return proc.returncode, time.perf_counter() - start, usage


def summarize(samples: list[tuple[float, float]]) -> dict[str, float]:
    walls = [w for w, _ in samples]
    cpus = [c for _, c in samples]
    return {"wall_best": min(walls), "wall_median": statistics.median(walls),
            "cpu_best": min(cpus), "cpu_median": statistics.median(cpus)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--max-pixels", type=int, default=360 * 420, help="0: qwen-vl-utils default")
    ap.add_argument("--modes", default="pil,swscale", help="our resize modes to time (pil, swscale)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    clip = ensure_clip()
    ele = {"fps": 2.0}
    if args.max_pixels:
        ele["max_pixels"] = args.max_pixels
    modes = [m for m in args.modes.split(",") if m]
    run_qwen(clip, ele)  # warm imports (torch, decord) outside the timings
    run_ours(clip, ele, modes[0])

    times: dict[str, list[tuple[float, float]]] = {"qwen-vl-utils (decord)": []}
    times.update({f"qvdoctor.video ({m})": [] for m in modes})
    checks = []
    pixels: dict[str, dict[str, float]] = {}
    for _ in range(args.repeat):  # interleaved, so machine noise hits every contender alike
        (q_idx, q_frames), wall, cpu = timed(lambda: run_qwen(clip, ele))
        times["qwen-vl-utils (decord)"].append((wall, cpu))
        for m in modes:
            (o_idx, o_frames), wall, cpu = timed(lambda m=m: run_ours(clip, ele, m))
            times[f"qvdoctor.video ({m})"].append((wall, cpu))
            checks.append(o_idx == q_idx and o_frames.shape == q_frames.shape)
            if o_frames.shape == q_frames.shape:
                diff = abs(o_frames.astype("int16") - q_frames.astype("int16"))
                pixels[m] = {"values_differing": float((diff > 0).mean()), "mean_abs": float(diff.mean()),
                             "max_abs": int(diff.max())}
            del o_frames
        q_shape = q_frames.shape
        del q_frames
    ffmpeg = None
    if shutil.which("ffmpeg"):
        rc, wall, _ = run_ffmpeg(clip)
        ffmpeg = {"wall": wall, "rc": rc}

    stats = {name: summarize(s) for name, s in times.items()}
    base = stats["qwen-vl-utils (decord)"]
    report = {
        "clip": str(clip), "options": ele, "frames": len(q_idx), "shape": list(q_shape), "repeat": args.repeat,
        "same_indices_and_shapes": all(checks), "cpus": os.cpu_count(), "load_average": os.getloadavg(),
        "results": stats, "pixels_vs_qwen_vl_utils": pixels, "ffmpeg_decode_all_wall": ffmpeg and ffmpeg["wall"],
        "speedup": {name: {"wall_best": base["wall_best"] / s["wall_best"],
                           "wall_median": base["wall_median"] / s["wall_median"],
                           "cpu_median": base["cpu_median"] / s["cpu_median"]}
                    for name, s in stats.items() if name != "qwen-vl-utils (decord)"},
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"clip: {clip} (60 s, 1920x1080, 30 fps, H.264)   options: {ele}")
    print(f"frames: {report['frames']} of shape {tuple(q_shape)}; same indices and shapes: {report['same_indices_and_shapes']}")
    print(f"machine: {os.cpu_count()} CPUs, load average {report['load_average'][0]:.1f}; best / median of {args.repeat}")
    print(f"{'':28s} {'wall best':>10s} {'wall med':>10s} {'cpu med':>10s}")
    for name, s in stats.items():
        print(f"{name:28s} {s['wall_best']:9.2f}s {s['wall_median']:9.2f}s {s['cpu_median']:9.2f}s")
    if ffmpeg:
        print(f"{'ffmpeg -f null (all frames)':28s} {ffmpeg['wall']:9.2f}s")
    for m, d in pixels.items():
        print(f"pixels ({m}) vs qwen-vl-utils' torchvision resize: {d['values_differing']:.2%} of values differ, "
              f"mean |diff| {d['mean_abs']:.3f}, max {d['max_abs']}")
    for name, r in report["speedup"].items():
        print(f"speed-up of {name} over qwen-vl-utils: {r['wall_best']:.1f}x (best wall), "
              f"{r['wall_median']:.1f}x (median wall), {r['cpu_median']:.1f}x (median CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
