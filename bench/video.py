"""Benchmark: sampled frames of a 60 s 1080p30 H.264 clip at fps 2, qvdoctor.video vs qwen-vl-utils.

Two comparisons on the same cached clip (FFmpeg's testsrc2, libx264 defaults; made once under
/tmp/qvdoctor-bench), contenders interleaved so machine noise hits all alike:

* in process: each contender's imports done beforehand, only the frames timed;
* fresh process: ``python bench/video.py --child NAME`` per run, timed from start to exit, as a user
  running a script sees it (imports included: torch, torchvision and decord for qwen-vl-utils; PyAV,
  numpy and Pillow for us). measured.md's 14.5 s qwen-vl-utils baseline matches this one.

Reported: wall and CPU seconds per run (best and median of --repeat), the speed-up ratios, and a
check that every run produced the same frame indices and shapes. An ``ffmpeg -f null`` decode of
every frame is timed too, for scale.

    .venv/bin/python bench/video.py [--repeat 3] [--max-pixels 151200] [--no-fresh] [--json]

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
QWEN = "qwen-vl-utils"  # the contender name of qwen-vl-utils; ours are named by resize mode


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


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    r = resource.getrusage(who)
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


def run_fresh(name: str, clip: Path, ele: dict) -> tuple[tuple[list[int], tuple[int, ...]], float, float]:
    """One contender in a new interpreter: ``(indices, shape)``, wall and CPU seconds of the process."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--clip", str(clip), "--ele", json.dumps(ele)]
    wall, cpu = time.perf_counter(), cpu_seconds(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall, cpu = time.perf_counter() - wall, cpu_seconds(resource.RUSAGE_CHILDREN) - cpu
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return (out["indices"], tuple(out["shape"])), wall, cpu


def run(name: str, clip: Path, ele: dict):
    """``(indices, frames)`` from qwen-vl-utils (``name`` QWEN) or from us with resize mode ``name``."""
    return run_qwen(clip, ele) if name == QWEN else run_ours(clip, ele, name)


def child(name: str, clip: Path, ele: dict) -> int:
    """The body of a fresh-process run: import, sample, print indices and shape as JSON."""
    indices, frames = run(name, clip, ele)
    print(json.dumps({"indices": [int(i) for i in indices], "shape": list(frames.shape)}))
    return 0


def run_ffmpeg(clip: Path):
    start = time.perf_counter()
    proc = subprocess.run(["ffmpeg", "-v", "error", "-threads", str(os.cpu_count() or 2), "-i", str(clip), "-f", "null", "-"],
                          capture_output=True, text=True)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return proc.returncode, time.perf_counter() - start, usage


def label(name: str) -> str:
    return "qwen-vl-utils (decord)" if name == QWEN else f"qvdoctor.video ({name})"


def summarize(samples: list[tuple[float, float]]) -> dict[str, float]:
    walls = [w for w, _ in samples]
    cpus = [c for _, c in samples]
    return {"wall_best": min(walls), "wall_median": statistics.median(walls),
            "cpu_best": min(cpus), "cpu_median": statistics.median(cpus)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--max-pixels", type=int, default=360 * 420, help="0: qwen-vl-utils default")
    ap.add_argument("--modes", default="swscale,pil", help="our resize modes to time (swscale, pil)")
    ap.add_argument("--no-fresh", action="store_true", help="skip the fresh-process comparison")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--clip", help=argparse.SUPPRESS)
    ap.add_argument("--ele", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args.child, Path(args.clip), json.loads(args.ele))

    clip = ensure_clip()
    ele = {"fps": 2.0}
    if args.max_pixels:
        ele["max_pixels"] = args.max_pixels
    names = [QWEN] + [m for m in args.modes.split(",") if m]
    run_qwen(clip, ele)  # warm imports (torch, decord) and the page cache outside the timings
    run_ours(clip, ele, names[1])

    warm: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    fresh: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    results: dict[str, tuple] = {}
    checks: list[bool] = []
    pixels: dict[str, dict[str, float]] = {}
    for _ in range(args.repeat):  # interleaved, so machine noise hits every contender alike
        frames = {}
        for n in names:
            (idx, frames[n]), wall, cpu = timed(lambda n=n: run(n, clip, ele))
            warm[n].append((wall, cpu))
            results[n] = (list(idx), tuple(frames[n].shape))
        for n in names[1:]:
            if frames[n].shape == frames[QWEN].shape:
                diff = abs(frames[n].astype("int16") - frames[QWEN].astype("int16"))
                pixels[n] = {"values_differing": float((diff > 0).mean()), "mean_abs": float(diff.mean()),
                             "max_abs": int(diff.max())}
        del frames
        checks.append(all(r == results[QWEN] for r in results.values()))
        if not args.no_fresh:
            for n in names:
                result, wall, cpu = run_fresh(n, clip, ele)
                fresh[n].append((wall, cpu))
                checks.append(result == results[QWEN])
    ffmpeg = None
    if shutil.which("ffmpeg"):
        rc, wall, _ = run_ffmpeg(clip)
        ffmpeg = {"wall": wall, "rc": rc}

    def table(times: dict[str, list[tuple[float, float]]]) -> dict:
        stats = {label(n): summarize(s) for n, s in times.items() if s}
        if not stats:
            return {}
        base = stats[label(QWEN)]
        speedup = {name: {"wall_best": base["wall_best"] / s["wall_best"],
                          "wall_median": base["wall_median"] / s["wall_median"],
                          "cpu_median": base["cpu_median"] / s["cpu_median"]}
                   for name, s in stats.items() if name != label(QWEN)}
        return {"results": stats, "speedup": speedup}

    indices, shape = results[QWEN]
    report = {
        "clip": str(clip), "options": ele, "frames": len(indices), "shape": list(shape), "repeat": args.repeat,
        "same_indices_and_shapes": all(checks), "cpus": os.cpu_count(), "load_average": os.getloadavg(),
        "in_process": table(warm), "fresh_process": table(fresh), "pixels_vs_qwen_vl_utils": pixels,
        "ffmpeg_decode_all_wall": ffmpeg and ffmpeg["wall"],
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"clip: {clip} (60 s, 1920x1080, 30 fps, H.264)   options: {ele}")
    print(f"frames: {report['frames']} of shape {shape}; same indices and shapes in every run: {report['same_indices_and_shapes']}")
    print(f"machine: {os.cpu_count()} CPUs, load average {report['load_average'][0]:.1f}; best / median of {args.repeat}")
    for title, part in (("in process (imports done)", report["in_process"]),
                        ("fresh process (imports included)", report["fresh_process"])):
        if not part:
            continue
        print(f"{title:36s} {'wall best':>10s} {'wall med':>10s} {'cpu med':>10s}")
        for name, s in part["results"].items():
            print(f"  {name:34s} {s['wall_best']:9.2f}s {s['wall_median']:9.2f}s {s['cpu_median']:9.2f}s")
        for name, r in part["speedup"].items():
            print(f"  speed-up of {name}: {r['wall_best']:.1f}x (best wall), {r['wall_median']:.1f}x (median wall), "
                  f"{r['cpu_median']:.1f}x (median CPU)")
    if ffmpeg:
        print(f"ffmpeg -f null (all frames): {ffmpeg['wall']:.2f}s")
    for m, d in pixels.items():
        print(f"pixels ({m}) vs qwen-vl-utils' torchvision resize: {d['values_differing']:.2%} of values differ, "
              f"mean |diff| {d['mean_abs']:.3f}, max {d['max_abs']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
