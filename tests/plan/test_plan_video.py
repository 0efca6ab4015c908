"""Visual tokens the planner counts for a video, against the real qwen-vl-utils package."""

from __future__ import annotations

import math
import shutil
import subprocess

import pytest

from planfix import FIXTURES, MACHINES, published, tiny_model  # noqa: F401 (fixtures)
from qvdoctor.plan import plan_for

vp = pytest.importorskip("qwen_vl_utils.vision_process")


def qwen_vl_utils_tokens(duration: float, fps: float, width: int, height: int) -> int:
    """fetch_video's arithmetic, computed with qwen-vl-utils' own functions and constants."""
    total_frames = int(round(duration * fps))
    nframes = vp.smart_nframes({}, total_frames=total_frames, video_fps=fps)
    factor = 14 * vp.SPATIAL_MERGE_SIZE
    min_pixels = vp.VIDEO_MIN_TOKEN_NUM * factor * factor
    total_pixels = vp.MODEL_SEQ_LEN * factor * factor * 0.9
    max_pixels = max(min(vp.VIDEO_MAX_TOKEN_NUM * factor * factor, total_pixels / nframes * vp.FRAME_FACTOR), int(min_pixels * 1.05))
    h, w = vp.smart_resize(height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    return math.ceil(nframes / 2) * (h // factor) * (w // factor)


GRID = [(d, f, w, h) for d in (2.0, 7.5, 60.0, 600.0) for f in (24.0, 30.0) for (w, h) in ((640, 360), (1920, 1080), (720, 1280))]


@pytest.mark.parametrize("duration,fps,width,height", GRID)
def test_planner_video_tokens_equal_qwen_vl_utils(duration, fps, width, height):
    plan = plan_for(FIXTURES / "qwen2.5-vl-7b-instruct", MACHINES / "h100.json",
                    video={"duration": duration, "width": width, "height": height, "fps": fps})
    assert plan.video_client.tokens == qwen_vl_utils_tokens(duration, fps, width, height)
    # the plan leaves room for the video in the context it recommends
    assert plan.max_model_len >= plan.video_client.tokens + 2 or not plan.fits


def test_sixty_second_1080p_example():
    """memory_planning.md §5.4: 120 frames at 560×1008 -> 43,200 tokens."""
    plan = plan_for(FIXTURES / "qwen2.5-vl-7b-instruct", MACHINES / "h100.json",
                    video={"duration": 60, "width": 1920, "height": 1080, "fps": 30})
    v = plan.video_client
    assert (v.nframes, v.resized_height, v.resized_width, v.tokens) == (120, 560, 1008, 43_200)
    # the profile dummy is shrunk to the video's own frame size
    assert plan.recommended_flags["mm_processor_kwargs"] == {"max_pixels": 560 * 1008}
    assert plan.recommended_flags["limit_mm_per_prompt"] == {"image": 0, "video": 1}
    assert plan.dummy.tokens_per_item < 16384 * 7


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg to make a clip")
def test_video_file_end_to_end_against_fetch_video(tmp_path, qvdoctor):
    clip = tmp_path / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=480x272:rate=10", "-t", "3",
                    "-pix_fmt", "yuv420p", str(clip)], check=True, timeout=120)
    try:
        frames = vp.fetch_video({"video": str(clip)})
    except Exception as exc:  # noqa: BLE001 - no usable decoder backend here
        pytest.skip(f"qwen-vl-utils cannot decode here: {exc}")
    t, _, h, w = frames.shape
    expected = math.ceil(t / 2) * (h // 28) * (w // 28)
    r = qvdoctor("plan", "--model", str(FIXTURES / "qwen2.5-vl-7b-instruct"), "--facts", str(MACHINES / "h100.json"),
                 "--video", str(clip), "--json")
    assert r.returncode in (0, 1), r.stderr
    got = r.json()["video_tokens"]["qwen_vl_utils"]
    assert (got["nframes"], got["resized_height"], got["resized_width"]) == (t, h, w)
    assert got["tokens"] == expected
