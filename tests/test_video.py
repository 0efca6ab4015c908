"""qvdoctor.video against the real qwen-vl-utils 0.0.14 (decord backend) on clips made here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from qvdoctor.errors import QvError

np = pytest.importorskip("numpy")
av = pytest.importorskip("av")
decord = pytest.importorskip("decord")
torch = pytest.importorskip("torch")
os.environ.setdefault("FORCE_QWENVL_VIDEO_READER", "decord")
qvu = pytest.importorskip("qwen_vl_utils.vision_process")

from qvdoctor.video import decode_frames, load_video, make_test_clip, probe_video  # noqa: E402
from qvdoctor.video.decode import MAX_DECODERS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# (file name, seconds, width, height, fps, codec[, rotation]): durations, rates, sizes, containers,
# codecs, and phone-style display rotations (decord rotates frames; so do we).
CLIPS = [
    ("smoke_default.mp4", 4.0, 320, 240, 24, "libx264"),
    ("ntsc.mp4", 2.5, 640, 360, Fraction(30000, 1001), "libx264"),
    ("portrait.mkv", 7.0, 480, 854, 30, "libx264"),
    ("hd60.mp4", 1.0, 1280, 720, 60, "libx264"),
    ("long_low.avi", 12.0, 256, 144, 10, "mpeg4"),
    ("hevc.mp4", 3.0, 334, 198, 25, "libx265"),
    ("film.mov", 5.0, 854, 480, Fraction(24000, 1001), "mpeg2video"),
    ("phone_rot90.mp4", 3.0, 640, 360, 30, "libx264", 90),
    ("phone_rot270.mov", 2.0, 320, 240, 25, "libx264", 270),
]
# qwen-vl-utils video dicts (the keys a user writes next to "video").
OPTIONS = [
    {}, {"fps": 1.0}, {"nframes": 6}, {"max_pixels": 360 * 420},
    {"min_pixels": 64 * 28 * 28, "max_pixels": 128 * 28 * 28}, {"total_pixels": 4 * 128 * 28 * 28},
    {"video_start": 0.4, "video_end": 2.1}, {"resized_height": 200, "resized_width": 300},
]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clips")
    made = {}
    for name, seconds, width, height, fps, codec, *rotation in CLIPS:
        made[name] = make_test_clip(root / name, seconds=seconds, width=width, height=height, fps=fps, codec=codec,
                                    rotation=rotation[0] if rotation else 0)
    if shutil.which("ffmpeg"):  # a VP9/WebM clip written by the ffmpeg CLI, as users' files are
        webm = root / "vp9.webm"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=426x240:rate=15:duration=3",
                        "-c:v", "libvpx-vp9", "-b:v", "300k", str(webm)], check=True)
        made["vp9.webm"] = webm
        gop = root / "gop12.mp4"  # short GOPs with B-frames: sampling seeks between keyframes
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=400x224:rate=30:duration=4",
                        "-c:v", "libx264", "-g", "12", "-bf", "3", "-pix_fmt", "yuv420p", str(gop)], check=True)
        made["gop12.mp4"] = gop
        for name, codec in (("opengop.mp4", ["libx264", "-g", "15", "-bf", "3", "-x264-params", "open-gop=1"]),
                            ("opengop_hevc.mp4", ["libx265", "-x265-params", "keyint=15:min-keyint=15:open-gop=1:log-level=error"])):
            made[name] = root / name  # keyframes whose leading B-frames refer to the GOP before
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=352x208:rate=25:duration=3",
                            "-c:v", *codec, "-pix_fmt", "yuv420p", str(made[name])], check=True)
    return made


@pytest.fixture
def qwen_fetch(monkeypatch):
    """The real ``fetch_video`` with its decord backend (no silent fallback to torchvision)."""
    return _qwen_fetch(monkeypatch, "decord")


def _qwen_fetch(monkeypatch, backend: str):
    monkeypatch.setattr(qvu, "get_video_reader_backend", lambda: backend)

    def no_fallback(ele):
        raise ValueError("decord backend failed")

    monkeypatch.setitem(qvu.VIDEO_READER_BACKENDS, "torchvision", no_fallback)

    def fetch(path: Path, ele: dict):
        (video, meta), sample_fps = qvu.fetch_video({"video": str(path), **ele}, return_video_metadata=True,
                                                    return_video_sample_fps=True)
        return video, meta, sample_fps

    return fetch


def test_sampling_identical_to_qwen_vl_utils(clips, qwen_fetch):
    """Frame count, indices, resized shape and sample fps equal qwen-vl-utils' for every clip and
    option; pixel values within its torchvision resize's rounding (the default swscale resize)."""
    compared = 0
    worst = {"differ": 0.0, "mean": 0.0, "max": 0}
    for name, path in clips.items():
        for ele in OPTIONS:
            try:
                video, meta, sample_fps = qwen_fetch(path, ele)
            except (ValueError, AssertionError):
                with pytest.raises(QvError):
                    load_video(path, **ele)
                continue
            ours = load_video(path, **ele)
            theirs = video.permute(0, 2, 3, 1).numpy()
            label = f"{name} {ele}"
            assert ours.frames.shape == theirs.shape, label
            assert ours.frames.dtype == np.uint8
            assert ours.tokens.indices == meta["frames_indices"], label
            assert ours.metadata["frames_indices"] == meta["frames_indices"]
            assert ours.metadata["total_num_frames"] == meta["total_num_frames"]
            assert ours.metadata["fps"] == meta["fps"]
            assert ours.tokens.sample_fps == sample_fps
            vr = decord.VideoReader(str(path))
            if "video_start" not in ele:
                assert ours.tokens.nframes == qvu.smart_nframes(ele, total_frames=len(vr), video_fps=vr.get_avg_fps())
            if name.startswith("opengop"):  # decord's frames next to open-GOP keyframes are broken
                compared += 1
                continue
            diff = np.abs(ours.frames.astype(np.int16) - theirs.astype(np.int16))
            worst = {"differ": max(worst["differ"], float((diff > 0).mean())),
                     "mean": max(worst["mean"], float(diff.mean())), "max": max(worst["max"], int(diff.max()))}
            assert (diff > 0).mean() < 0.05 and diff.mean() < 0.05 and diff.max() <= 16, (label, (diff > 0).mean(), diff.mean())
            compared += 1
    assert compared >= 45
    print(f"compared {compared} clip/option pairs; worst pixel agreement vs torchvision: {worst}")


def test_sampling_identical_to_qwen_vl_utils_torchcodec_backend(clips, monkeypatch):
    """qwen-vl-utils prefers torchcodec when it is installed (vLLM installs it). Its frame rate is
    frames / scanned duration, which differs from decord's for the WebM clip (15.005 vs 15 fps →
    4 frames instead of 6); ``reader="torchcodec"`` follows it."""
    pytest.importorskip("torchcodec")
    fetch = _qwen_fetch(monkeypatch, "torchcodec")
    compared = 0
    for name, path in clips.items():
        for ele in OPTIONS:
            try:
                video, meta, sample_fps = fetch(path, ele)
            except (ValueError, AssertionError, RuntimeError):
                with pytest.raises(QvError):
                    load_video(path, reader="torchcodec", **ele)
                continue
            ours = load_video(path, reader="torchcodec", **ele)
            theirs = video.permute(0, 2, 3, 1).numpy()
            label = f"{name} {ele}"
            assert ours.frames.shape == theirs.shape, label
            assert ours.tokens.indices == meta["frames_indices"], label
            assert ours.metadata["fps"] == meta["fps"] and ours.tokens.sample_fps == sample_fps, label
            assert np.abs(ours.frames.astype(np.int16) - theirs.astype(np.int16)).mean() < 0.5, label
            compared += 1
    assert compared >= 50


@pytest.mark.parametrize("name", ["smoke_default.mp4", "phone_rot90.mp4", "long_low.avi"])
def test_pil_resize_same_shapes_close_values(clips, qwen_fetch, name):
    """``resize="pil"``: Pillow's bicubic, which torchvision's antialiased resize was ported from."""
    path = clips[name]
    video, meta, _ = qwen_fetch(path, {"max_pixels": 360 * 420})
    pil = load_video(path, max_pixels=360 * 420, resize="pil")
    theirs = video.permute(0, 2, 3, 1).numpy()
    assert pil.frames.shape == theirs.shape and pil.tokens.indices == meta["frames_indices"]
    diff = np.abs(pil.frames.astype(np.int16) - theirs.astype(np.int16))
    assert (diff > 0).mean() < 0.1 and diff.mean() < 0.1 and diff.max() <= 32


def test_rotated_clip_is_sampled_upright(clips):
    """A 640×360 clip flagged as rotated 90° is a 360×640 portrait video for decord and for us."""
    info = probe_video(clips["phone_rot90.mp4"])
    assert (info.rotation, info.width, info.height) == (90, 360, 640)
    sampled = load_video(clips["phone_rot90.mp4"])
    assert sampled.frames.shape[1:3] == (644, 364)  # smart_resize(640, 360) for the portrait frame


@pytest.mark.parametrize("name", ["smoke_default.mp4", "ntsc.mp4", "portrait.mkv", "long_low.avi", "hevc.mp4", "film.mov",
                                  "phone_rot90.mp4", "phone_rot270.mov"])
def test_decoded_frames_bit_identical_to_decord(clips, name):
    """Before resizing, our RGB frames are decord's, bit for bit, with and without skipping.
    MPEG-4 part 2 is the exception: its IDCT is not bit-exact between FFmpeg releases (decord
    bundles FFmpeg 4, PyAV FFmpeg 8), so a few values differ by a level or two there."""
    path = clips[name]
    info = probe_video(path)
    vr = decord.VideoReader(str(path))
    assert (info.total_frames, info.fps) == (len(vr), vr.get_avg_fps())
    indices = sorted({0, 1, 5, info.total_frames // 3, info.total_frames // 2 + 1, info.total_frames - 1})
    expected = vr.get_batch(indices).asnumpy()
    for skip in (True, False):
        frames, stats = decode_frames(info, indices, resize="none", skip_nonref=skip)
        if info.codec == "mpeg4":
            diff = np.abs(frames.astype(np.int16) - expected.astype(np.int16))
            assert diff.max() <= 4 and diff.mean() < 0.01, (name, skip, diff.max(), diff.mean())
        else:
            assert np.array_equal(frames, expected), (name, skip)


def test_skips_frames_nobody_needs(clips):
    """H.264 with B-frames: sampled frames decode identically while unreferenced ones are skipped."""
    info = probe_video(clips["portrait.mkv"])
    indices = list(range(0, info.total_frames, 15))
    skipped, stats = decode_frames(info, indices, resize="none")
    full, full_stats = decode_frames(info, indices, resize="none", skip_nonref=False)
    assert stats["skip_nonref"] and not full_stats["skip_nonref"]
    assert stats["frames_decoded"] < 0.8 * full_stats["frames_decoded"]
    assert full_stats["frames_decoded"] == indices[-1] + 1  # stops after the last sampled frame
    assert np.array_equal(skipped, full)


@pytest.mark.parametrize("name", ["gop12.mp4", "opengop.mp4", "opengop_hevc.mp4", "long_low.avi"])
def test_keyframe_intervals_decode_in_parallel_with_the_same_pixels(clips, name):
    """Each keyframe interval holding sampled frames is decoded on its own, in parallel; the frames
    are those of one decode from the start, open GOPs included (a frame shown just before a
    keyframe is decoded by the interval before it). decord agrees on closed GOPs; on open ones its
    seek-to-keyframe returns broken frames just before and after each keyframe, so it is not the
    reference there."""
    if name not in clips:
        pytest.skip("needs the ffmpeg CLI")
    info = probe_video(clips[name])
    assert len(info.keyframes) >= 5
    indices = sorted({*range(0, info.total_frames, 4), *(k - 1 for k in info.keyframes if k), info.total_frames - 1})
    frames, stats = decode_frames(info, indices, resize="none")
    assert stats["tasks"] == len(info.keyframes) and stats["workers"] == min(stats["tasks"], os.cpu_count() or 2, MAX_DECODERS)
    with av.open(str(clips[name])) as container:  # every frame, in order, from the start
        by_pts = {f.pts: f.to_ndarray(format="rgb24") for f in container.decode(video=0)}
    in_order = np.stack([by_pts[info.frame_pts[i]] for i in indices])
    assert np.array_equal(frames, in_order)
    if not name.startswith("opengop"):
        expected = decord.VideoReader(str(clips[name])).get_batch(indices).asnumpy()
        assert np.abs(frames.astype(np.int16) - expected.astype(np.int16)).max() <= (4 if info.codec == "mpeg4" else 0)


@pytest.mark.parametrize("name", ["long_low.avi", "gop12.mp4"])
def test_starts_at_keyframe_before_first_frame(clips, name):
    if name not in clips:
        pytest.skip("needs the ffmpeg CLI")
    info = probe_video(clips[name])
    late = [info.total_frames // 2 + 1, info.total_frames - 3, info.total_frames - 1]
    frames, stats = decode_frames(info, late, resize="none")
    vr = decord.VideoReader(str(clips[name]))
    expected = vr.get_batch(late).asnumpy()
    assert np.abs(frames.astype(np.int16) - expected.astype(np.int16)).max() <= (4 if info.codec == "mpeg4" else 0)
    assert stats["frames_decoded"] < info.total_frames // 2 + 3


def test_metadata_is_what_vllm_builds_for_qwen2_5_vl(clips):
    """vLLM's Qwen2.5-VL processor turns the dict (minus do_sample_frames) into transformers'
    VideoMetadata; its sampled fps is qwen-vl-utils' sample fps."""
    from transformers.video_utils import VideoMetadata

    sampled = load_video(clips["smoke_default.mp4"])
    frames, meta = sampled.as_vllm_input()
    assert frames.shape == (8, 280, 392, 3) and meta["do_sample_frames"] is False
    vm = VideoMetadata(**{k: v for k, v in meta.items() if k != "do_sample_frames"})
    assert vm.sampled_fps == pytest.approx(2.0)
    assert vm.total_num_frames == 96 and vm.fps == 24.0 and vm.duration == 4.0
    assert sampled.tokens.tokens == 4 * 10 * 14 == 560


def test_synthetic_clip_is_what_it_says(tmp_path):
    path = make_test_clip(tmp_path / "sub" / "clip.mp4")
    assert [p.name for p in path.parent.iterdir()] == ["clip.mp4"]  # no partial file left behind
    vr = decord.VideoReader(str(path))
    assert (len(vr), vr.get_avg_fps(), vr[0].shape) == (96, 24.0, (240, 320, 3))
    info = probe_video(path)
    assert (info.width, info.height, info.codec, info.duration) == (320, 240, "h264", 4.0)


# -- one clear line for bad files ------------------------------------------------------------------
def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 8000), dtype=np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def _truncated(src: Path, dest: Path, keep: float, faststart: bool) -> Path:
    full = dest.with_suffix(".full.mp4")
    if faststart:
        with av.open(str(src)) as inp, av.open(str(full), "w", options={"movflags": "faststart"}) as out:
            s_in = inp.streams.video[0]
            s_out = out.add_stream_from_template(s_in)
            for pkt in inp.demux(s_in):
                if pkt.dts is None:
                    continue
                pkt.stream = s_out
                out.mux(pkt)
    else:
        shutil.copy(src, full)
    data = full.read_bytes()
    dest.write_bytes(data[: int(len(data) * keep)])
    return dest


@pytest.mark.parametrize("case,expected", [
    ("missing", "video file not found"),
    ("directory", "is a directory"),
    ("empty", "video file is empty"),
    ("garbage", "not a video file"),
    ("text", "not a video file, or the file is corrupt"),
    ("audio_only", "has no video stream"),
    ("truncated_moov_at_end", "not a video file, or the file is corrupt"),
    ("truncated_faststart", "truncated or corrupt"),
])
def test_bad_files_give_one_clear_line(tmp_path, clips, case, expected):
    path = tmp_path / "bad.mp4"
    if case == "directory":
        path.mkdir()
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "garbage":
        path.write_bytes(os.urandom(50_000))
    elif case == "text":
        path.write_text("this is not a video\n" * 100)
    elif case == "audio_only":
        path = _audio_only(tmp_path / "sound.wav")
    elif case == "truncated_moov_at_end":
        _truncated(clips["portrait.mkv"].with_name("smoke_default.mp4"), path, 0.6, faststart=False)
    elif case == "truncated_faststart":
        _truncated(clips["smoke_default.mp4"], path, 0.5, faststart=True)
    with pytest.raises(QvError) as err:
        load_video(path)
    assert expected in err.value.message
    assert "\n" not in err.value.message and err.value.hint


def test_importing_video_package_stays_light():
    code = ("import sys, qvdoctor, qvdoctor.video, qvdoctor.model.vision_tokens; "
            "heavy = [m for m in ('av', 'numpy', 'torch', 'PIL') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "[]"
