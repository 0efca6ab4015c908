"""qvdoctor.model.vision_tokens against the real code it reproduces: qwen-vl-utils 0.0.14 (and torch's
float32 linspace / arange), transformers' Qwen2-VL processors, vLLM 0.32's video loaders."""

from __future__ import annotations

import math
import os
import random

import pytest

from qvdoctor.model import vision_tokens as vt
from qvdoctor.errors import QvError

torch = pytest.importorskip("torch")
os.environ.setdefault("FORCE_QWENVL_VIDEO_READER", "decord")
qvu = pytest.importorskip("qwen_vl_utils.vision_process")

# A grid of real-world clips: durations (s), frame rates, resolutions (w, h).
DURATIONS = [0.3, 1, 2.5, 4, 10, 61, 300, 1800, 7200]
FRAME_RATES = [10, 24000 / 1001, 25, 30000 / 1001, 30, 60]
RESOLUTIONS = [(320, 240), (640, 360), (854, 480), (1280, 720), (1920, 1080), (3840, 2160), (1080, 1920),
               (720, 1280), (3000, 40), (100, 100)]
# qwen-vl-utils video dicts a user passes.
OPTIONS = [{}, {"fps": 1.0}, {"fps": 4.0, "max_frames": 64}, {"nframes": 9}, {"max_pixels": 360 * 420},
           {"min_pixels": 256 * 28 * 28, "max_pixels": 1280 * 28 * 28}, {"total_pixels": 20480 * 28 * 28},
           {"min_frames": 16}, {"resized_height": 300, "resized_width": 500}, {"video_start": 0.5, "video_end": 3.2}]


def test_constants_match_qwen_vl_utils():
    assert (vt.MAX_RATIO, vt.SPATIAL_MERGE_SIZE, vt.FRAME_FACTOR, vt.FPS, vt.FPS_MIN_FRAMES, vt.FPS_MAX_FRAMES) == (
        qvu.MAX_RATIO, qvu.SPATIAL_MERGE_SIZE, qvu.FRAME_FACTOR, qvu.FPS, qvu.FPS_MIN_FRAMES, qvu.FPS_MAX_FRAMES)
    assert (vt.VIDEO_MIN_TOKEN_NUM, vt.VIDEO_MAX_TOKEN_NUM, vt.IMAGE_MIN_TOKEN_NUM, vt.IMAGE_MAX_TOKEN_NUM) == (
        qvu.VIDEO_MIN_TOKEN_NUM, qvu.VIDEO_MAX_TOKEN_NUM, qvu.IMAGE_MIN_TOKEN_NUM, qvu.IMAGE_MAX_TOKEN_NUM)
    assert vt.default_total_pixels() == qvu.MODEL_SEQ_LEN * 28 * 28 * 0.9 == 90_316_800


def _sizes():
    rng = random.Random(7)
    sizes = [(h, w) for w, h in RESOLUTIONS] + [(rng.randint(1, 5000), rng.randint(1, 5000)) for _ in range(400)]
    sizes += [(28 * k + d, 28 * j + e) for k in (1, 5, 30) for j in (2, 17) for d in (-1, 0, 13, 14, 15) for e in (0, 14)]
    return sizes


@pytest.mark.parametrize("min_pixels,max_pixels", [
    (None, None), (vt.VIDEO_MIN_PIXELS, vt.VIDEO_MAX_PIXELS), (3136, 151200), (100352, 1505280), (56 * 56, 28 * 28 * 1280)])
def test_smart_resize_identical(min_pixels, max_pixels):
    for h, w in _sizes():
        try:
            expected = qvu.smart_resize(h, w, 28, min_pixels=min_pixels, max_pixels=max_pixels)
        except ValueError:
            with pytest.raises(QvError, match="aspect ratio"):
                vt.smart_resize(h, w, 28, min_pixels, max_pixels)
            continue
        assert vt.smart_resize(h, w, 28, min_pixels, max_pixels) == expected, (h, w)


def test_hf_smart_resize_identical_to_transformers():
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize as hf_smart_resize

    for h, w in _sizes():
        for lo, hi in [(3136, 12845056), (100352, 602112), (3136, 151200)]:
            try:
                expected = hf_smart_resize(h, w, 28, lo, hi)
            except ValueError:
                with pytest.raises(QvError):
                    vt.hf_smart_resize(h, w, 28, lo, hi)
                continue
            assert vt.hf_smart_resize(h, w, 28, lo, hi) == expected, (h, w, lo, hi)


def test_smart_nframes_identical():
    checked = 0
    for duration in DURATIONS:
        for rate in FRAME_RATES:
            total = max(1, round(duration * rate))
            for ele in [{}, {"fps": 1.0}, {"fps": 0.1}, {"fps": 30.0}, {"nframes": 7}, {"nframes": 64},
                        {"min_frames": 3, "max_frames": 33}, {"max_frames": 1000}, {"fps": 2.0, "min_frames": 40}]:
                try:
                    expected = qvu.smart_nframes(ele, total_frames=total, video_fps=rate)
                except ValueError:
                    with pytest.raises(QvError, match="frames"):
                        vt.smart_nframes(total, rate, **ele)
                    continue
                assert vt.smart_nframes(total, rate, **ele) == expected, (duration, rate, ele)
                checked += 1
    assert checked > 400


def test_linspace_round_identical_to_torch():
    rng = random.Random(3)
    cases = [(0, t - 1, n) for t in range(2, 300) for n in range(2, min(t, 40) + 1, 2)]
    cases += [(rng.randint(0, 5000), rng.randint(6000, 3_000_000), rng.randrange(2, 770, 2)) for _ in range(1500)]
    for start, end, n in cases:
        assert vt.linspace_round(start, end, n) == torch.linspace(start, end, n).round().long().tolist(), (start, end, n)


def test_linspace_float32_values_bit_identical():
    for start, end, n in [(0, 299, 40), (0, 1799, 120), (3, 99999, 768), (0, 215999, 768), (15, 7199, 96)]:
        assert vt.linspace_f32(start, end, n) == torch.linspace(start, end, n).tolist()


def test_arange_identical_to_torch():
    rng = random.Random(5)
    cases = [(t, n) for t in range(2, 300) for n in range(2, min(t, 40) + 1, 2)]
    cases += [(rng.randint(300, 500_000), rng.randrange(2, 770, 2)) for _ in range(1500)]
    for total, n in cases:
        assert vt.arange_f32(0, total, total / n) == torch.arange(0, total, total / n).tolist(), (total, n)


class _FakeFrames:
    """Stands in for decoded frames: only their shape travels through fetch_video."""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def asnumpy(self):
        return self

    def permute(self, *dims):
        return _FakeFrames(self.shape[d] for d in dims)

    def float(self):
        return self


def _no_fallback(ele):
    raise ValueError("qwen-vl-utils rejected the video")


@pytest.fixture
def qwen_fetch_shapes(monkeypatch):
    """Run the real ``qwen_vl_utils.fetch_video`` (decord backend) on a video described only by
    its frame count, frame rate and size: decord's reader and the pixel work are replaced, the
    sampling, frame-range, pixel-cap and resize-size logic is qwen-vl-utils' own."""
    real_tensor = torch.tensor

    def make(total_frames, video_fps, width, height):
        class Reader:
            def __init__(self, path):
                pass

            def __len__(self):
                return total_frames

            def get_avg_fps(self):
                return video_fps

            def get_batch(self, idx):
                return _FakeFrames((len(idx), height, width, 3))

        return Reader

    def fetch(ele, total_frames, video_fps, width, height):
        import sys
        import types

        fake = types.ModuleType("decord")
        fake.VideoReader = make(total_frames, video_fps, width, height)
        monkeypatch.setitem(sys.modules, "decord", fake)
        monkeypatch.setattr(qvu, "get_video_reader_backend", lambda: "decord")
        # when decord fails, qwen-vl-utils retries with torchvision.io.read_video (gone in 0.28)
        monkeypatch.setitem(qvu.VIDEO_READER_BACKENDS, "torchvision", _no_fallback)
        monkeypatch.setattr(torch, "tensor", lambda x, *a, **k: x if isinstance(x, _FakeFrames) else real_tensor(x, *a, **k))
        monkeypatch.setattr(qvu.transforms.functional, "resize",
                            lambda video, size, **kw: _FakeFrames((video.shape[0], video.shape[1], *size)))
        (video, meta), sample_fps = qvu.fetch_video({"video": "clip.mp4", **ele}, return_video_metadata=True,
                                                    return_video_sample_fps=True)
        return video.shape, meta, sample_fps

    return fetch


def test_video_tokens_identical_to_qwen_vl_utils(qwen_fetch_shapes):
    """Frame count, indices, resized size and tokens over durations × frame rates × resolutions × options."""
    checked = 0
    for duration in DURATIONS:
        for rate in FRAME_RATES:
            total = max(1, round(duration * rate))
            for width, height in RESOLUTIONS:
                for ele in OPTIONS:
                    try:
                        shape, meta, sample_fps = qwen_fetch_shapes(ele, total, rate, width, height)
                    except (ValueError, AssertionError):
                        with pytest.raises(QvError):
                            vt.qwen_vl_utils_video(width=width, height=height, video_fps=rate, total_frames=total, **ele)
                        continue
                    ours = vt.qwen_vl_utils_video(width=width, height=height, video_fps=rate, total_frames=total, **ele)
                    t, _, h, w = shape
                    assert (ours.nframes, ours.resized_height, ours.resized_width) == (t, h, w), (duration, rate, width, height, ele)
                    assert ours.indices == meta["frames_indices"]
                    assert ours.total_frames == meta["total_num_frames"]
                    assert ours.sample_fps == sample_fps
                    assert ours.tokens == math.ceil(t / 2) * (h // 28) * (w // 28)
                    checked += 1
    assert checked > 4000


def test_token_formula_matches_transformers_processor():
    """grid_t × grid_h × grid_w / 4 is what Qwen2VLVideoProcessor / Qwen2VLImageProcessor emit."""
    import numpy as np
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    vp = Qwen2VLVideoProcessor(min_pixels=3136, max_pixels=12845056, cap_pixels_per_frame=False)
    for frames, h, w in [(4, 280, 504), (7, 56, 84), (2, 364, 644)]:
        video = np.zeros((frames, h, w, 3), dtype=np.uint8)
        out = vp(videos=[video], return_tensors="np", do_sample_frames=False)
        grid = out["video_grid_thw"][0].tolist()
        assert vt.visual_tokens(frames, h, w)[:3] == tuple(grid)
        assert vt.visual_tokens(frames, h, w)[3] == int(np.prod(grid)) // 4
    ip = Qwen2VLImageProcessor(min_pixels=vt.MIN_PIXELS, max_pixels=vt.MAX_PIXELS)
    for w, h in [(640, 480), (1920, 1080), (100, 3000)]:
        out = ip(images=[np.zeros((h, w, 3), dtype=np.uint8)], return_tensors="np")
        assert vt.image_tokens(w, h) == int(np.prod(out["image_grid_thw"][0])) // 4


def test_worked_example_60s_1080p():
    """memory_planning.md §5.4: a 60 s 1080p30 clip → 120 frames of 560×1008 → 43,200 tokens."""
    v = vt.qwen_vl_utils_video(width=1920, height=1080, video_fps=30, duration=60)
    assert (v.nframes, v.resized_height, v.resized_width, v.tokens) == (120, 560, 1008, 43200)
    assert v.prompt_tokens == 43202
    budget = vt.qwen_vl_utils_video(width=1920, height=1080, video_fps=30, duration=3600)
    assert budget.nframes == 768 and budget.tokens <= 0.9 * 128000


def test_errors_are_qverrors():
    with pytest.raises(QvError, match="aspect ratio"):
        vt.smart_resize(10, 2500)
    with pytest.raises(QvError, match="either fps or nframes"):
        vt.smart_nframes(100, 30, fps=1, nframes=4)
    with pytest.raises(QvError, match="cannot sample"):
        vt.qwen_vl_utils_video(width=64, height=64, video_fps=30, total_frames=1)
    with pytest.raises(QvError, match="total_frames or its duration"):
        vt.qwen_vl_utils_video(width=64, height=64, video_fps=30)


# -- vLLM's own sampling (server-side decoding) ----------------------------------------------------
def _vllm_video():
    return pytest.importorskip("vllm.multimodal.video")


def test_vllm_qwen2_vl_loader_identical():
    vv = _vllm_video()
    from vllm.multimodal.video_decoders import VideoSourceMetadata, VideoTargetMetadata

    for duration in DURATIONS:
        for rate in FRAME_RATES:
            total = max(1, round(duration * rate))
            for fps in (2, 1, 0.5, 60):
                source = VideoSourceMetadata(total, rate, total / rate)
                target = VideoTargetMetadata(num_frames=32, fps=fps, max_duration=300)
                try:
                    expected = vv.Qwen2VLVideoBackend.compute_frames_index_to_sample(source, target)
                except (ValueError, ZeroDivisionError):
                    with pytest.raises(QvError):
                        vt.vllm_server_video(width=640, height=360, video_fps=rate, total_frames=total, fps=fps)
                    continue
                ours = vt.vllm_server_video(width=640, height=360, video_fps=rate, total_frames=total, fps=fps)
                assert ours.indices == expected, (duration, rate, fps)


def test_vllm_opencv_loader_identical():
    vv = _vllm_video()
    from vllm.multimodal.video_decoders import VideoSourceMetadata, VideoTargetMetadata

    for duration in DURATIONS:
        for rate in FRAME_RATES:
            total = max(1, round(duration * rate))
            for num_frames, fps in [(32, -1), (-1, -1), (8, 2), (64, 0.5), (100, -1)]:
                source = VideoSourceMetadata(total, rate, total / rate)
                target = VideoTargetMetadata(num_frames=num_frames, fps=fps, max_duration=300)
                expected = vv.VideoBackend.compute_frames_index_to_sample(source, target)
                ours = vt.vllm_server_video(width=640, height=360, video_fps=rate, total_frames=total, loader="opencv",
                                            num_frames=num_frames, fps=fps)
                assert ours.indices == expected, (duration, rate, num_frames, fps)


def test_vllm_server_tokens_table():
    """memory_planning.md §5.5 table (32 frames, image pixel limits) and vLLM 0.32's fps loader."""
    rows = {(3840, 2160): 168784, (1920, 1080): 43056, (1280, 720): 19136, (854, 480): 8160, (640, 360): 4784}
    for (w, h), tokens in rows.items():
        assert vt.vllm_server_video(width=w, height=h, video_fps=30, duration=60, loader="opencv").tokens == tokens
    v = vt.vllm_server_video(width=1920, height=1080, video_fps=30, duration=60)
    assert (v.nframes, v.resized_height, v.resized_width, v.tokens) == (120, 1092, 1932, 161460)
    capped = vt.vllm_server_video(width=1920, height=1080, video_fps=30, duration=60, max_pixels=vt.VIDEO_MAX_PIXELS)
    assert capped.tokens == 43200
