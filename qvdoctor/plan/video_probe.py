"""Duration, frame rate and displayed frame size of a video file, without decoding it: through
:func:`qvdoctor.video.probe.probe_video` (PyAV; the display-matrix rotation applied, as decord
and qwen-vl-utils do), else ffprobe in a subprocess with a timeout (same rotation rule)."""

from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

from qvdoctor.errors import QvError
from qvdoctor.plan.core import VideoSpec


def probe_video(path: str | Path) -> VideoSpec:
    path = Path(path)
    if not path.is_file():
        raise QvError(f"video not found: {path}", "pass an existing file, or --video-seconds S --video-size WxH")
    try:
        import av  # type: ignore[import-not-found]
    except ImportError:
        av = None
    if av is not None:
        from qvdoctor.video.probe import probe_video as probe

        info = probe(path)
        return _checked(VideoSpec(info.total_frames / info.fps if info.fps else 0.0, info.width, info.height, info.fps, str(path)))
    exe = shutil.which("ffprobe")
    if exe is None:
        raise QvError("reading a video needs PyAV or ffprobe", "pip install 'qvdoctor[video]', or give --video-seconds S --video-size WxH")
    try:
        out = subprocess.run([exe, "-v", "error", "-select_streams", "v:0", "-show_entries",
                              "stream=width,height,avg_frame_rate,nb_frames,duration:stream_tags=rotate:stream_side_data=rotation:format=duration", "-of", "json", str(path)],
                             capture_output=True, text=True, timeout=30)
        data = json.loads(out.stdout or "{}")
        st = data["streams"][0]
    except (subprocess.TimeoutExpired, ValueError, KeyError, IndexError):
        raise QvError(f"ffprobe cannot read {path}", "is it a video file?")
    fps = float(Fraction(st.get("avg_frame_rate") or "0/1")) if st.get("avg_frame_rate") not in (None, "0/0") else 0.0
    duration = float(st.get("duration") or data.get("format", {}).get("duration") or 0)
    if st.get("nb_frames") and fps:
        duration = int(st["nb_frames"]) / fps
    width, height = int(st["width"]), int(st["height"])
    rotation = next((int(float(d["rotation"])) for d in st.get("side_data_list") or [] if "rotation" in d),
                    int((st.get("tags") or {}).get("rotate") or 0))
    if abs(rotation) % 180 == 90:  # shown sideways: displayed width and height swap
        width, height = height, width
    return _checked(VideoSpec(duration, width, height, fps, str(path)))


def _checked(v: VideoSpec) -> VideoSpec:
    if v.duration <= 0 or v.fps <= 0 or v.width <= 0 or v.height <= 0:
        raise QvError(f"{v.path}: cannot tell the duration, frame rate and size from the metadata", "give --video-seconds S --video-size WxH")
    return v


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = text.lower().split("x")
        size = int(w), int(h)
    except ValueError:
        raise QvError(f"invalid --video-size {text!r}", "write it as WIDTHxHEIGHT, e.g. 1920x1080")
    if min(size) <= 0:
        raise QvError(f"invalid --video-size {text!r}", "both sides must be positive")
    return size
