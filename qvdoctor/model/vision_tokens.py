"""Visual-token arithmetic for Qwen2.5-VL, in pure Python (no torch, no numpy).

Two paths decide how many frames and pixels of a video reach the model:

* the *client* path, qwen-vl-utils 0.0.14 ``fetch_video`` / ``process_vision_info`` (also what
  ``qvdoctor.video`` reproduces): :func:`qwen_vl_utils_video`;
* the *server* path, vLLM decoding a ``video_url`` itself and handing the frames to the HF
  ``Qwen2VLVideoProcessor``: :func:`vllm_server_video`.

Both return a :class:`VideoTokens` with the frame indices, the resized frame size and the token
count. Every rounding step copies the reference code (see ../shared/reference/memory_planning.md
§5), including ``torch.linspace(start, end, n).round()`` evaluated in float32
(:func:`linspace_round`).
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import asdict, dataclass, field
from typing import Any

from qvdoctor.errors import QvError

# -- qwen-vl-utils 0.0.14 constants (qwen_vl_utils/vision_process.py) -------------------------
IMAGE_PATCH_SIZE = 14
SPATIAL_MERGE_SIZE = 2
TEMPORAL_PATCH_SIZE = 2
IMAGE_FACTOR = IMAGE_PATCH_SIZE * SPATIAL_MERGE_SIZE  # 28 px per LLM token side
MAX_RATIO = 200
IMAGE_MIN_TOKEN_NUM = 4
IMAGE_MAX_TOKEN_NUM = 16384
VIDEO_MIN_TOKEN_NUM = 128
VIDEO_MAX_TOKEN_NUM = 768
MIN_PIXELS = IMAGE_MIN_TOKEN_NUM * IMAGE_FACTOR**2  # 3,136
MAX_PIXELS = IMAGE_MAX_TOKEN_NUM * IMAGE_FACTOR**2  # 12,845,056
VIDEO_MIN_PIXELS = VIDEO_MIN_TOKEN_NUM * IMAGE_FACTOR**2  # 100,352
VIDEO_MAX_PIXELS = VIDEO_MAX_TOKEN_NUM * IMAGE_FACTOR**2  # 602,112
FPS = 2.0
FRAME_FACTOR = 2
FPS_MIN_FRAMES = 4
FPS_MAX_FRAMES = 768
DEFAULT_MODEL_SEQ_LEN = 128000

# -- vLLM server-side defaults (memory_planning.md §5.5) ---------------------------------------
VLLM_DEFAULT_NUM_FRAMES = 32  # VideoMediaIO(num_frames=32)
# Qwen2.5-VL's preprocessor_config.json: the HF video processor falls back to the image limits.
HF_MIN_PIXELS = 3136
HF_MAX_PIXELS = 12845056


def model_seq_len() -> int:
    """qwen-vl-utils' MODEL_SEQ_LEN: ``int(float(env MODEL_SEQ_LEN or 128000))``."""
    return int(float(os.environ.get("MODEL_SEQ_LEN", DEFAULT_MODEL_SEQ_LEN)))


def default_total_pixels(factor: int = IMAGE_FACTOR, seq_len: int | None = None) -> float:
    """Per-video pixel budget: ``MODEL_SEQ_LEN × factor² × 0.9`` (90,316,800.0 by default)."""
    return (model_seq_len() if seq_len is None else seq_len) * factor * factor * 0.9


def round_by_factor(number: float, factor: int) -> int:
    """Closest multiple of ``factor`` (Python round: half to even)."""
    return round(number / factor) * factor


def ceil_by_factor(number: float, factor: int) -> int:
    return math.ceil(number / factor) * factor


def floor_by_factor(number: float, factor: int) -> int:
    return math.floor(number / factor) * factor


def smart_resize(
    height: int,
    width: int,
    factor: int = IMAGE_FACTOR,
    min_pixels: float | None = None,
    max_pixels: float | None = None,
) -> tuple[int, int]:
    """qwen-vl-utils' ``smart_resize``: both sides multiples of ``factor``, area within
    ``[min_pixels, max_pixels]``, aspect ratio kept as closely as possible. Returns ``(h, w)``."""
    max_pixels = max_pixels if max_pixels is not None else IMAGE_MAX_TOKEN_NUM * factor**2
    min_pixels = min_pixels if min_pixels is not None else IMAGE_MIN_TOKEN_NUM * factor**2
    if max_pixels < min_pixels:
        raise QvError(
            f"max_pixels ({max_pixels}) is smaller than min_pixels ({min_pixels})",
            hint="raise max_pixels or lower min_pixels",
        )
    _check_ratio(height, width)
    h_bar = max(factor, round_by_factor(height, factor))
    w_bar = max(factor, round_by_factor(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = floor_by_factor(height / beta, factor)
        w_bar = floor_by_factor(width / beta, factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = ceil_by_factor(height * beta, factor)
        w_bar = ceil_by_factor(width * beta, factor)
    return h_bar, w_bar


def hf_smart_resize(
    height: int,
    width: int,
    factor: int = IMAGE_FACTOR,
    min_pixels: int = HF_MIN_PIXELS,
    max_pixels: int = HF_MAX_PIXELS,
) -> tuple[int, int]:
    """transformers' Qwen2-VL ``smart_resize`` (used by the HF image/video processors inside
    vLLM): no lower clamp on rounding, ``max(factor, ·)`` on the shrink branch."""
    _check_ratio(height, width)
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def _check_ratio(height: int, width: int) -> None:
    if height <= 0 or width <= 0:
        raise QvError(f"frame size {width}x{height} is empty", hint="check the video or image file")
    ratio = max(height, width) / min(height, width)
    if ratio > MAX_RATIO:
        raise QvError(
            f"aspect ratio {ratio:.1f} of {width}x{height} exceeds Qwen2.5-VL's limit of {MAX_RATIO}",
            hint="crop or pad the image/video to a less extreme aspect ratio",
        )


def smart_nframes(
    total_frames: int,
    video_fps: float,
    *,
    fps: float | None = None,
    nframes: int | None = None,
    min_frames: int | None = None,
    max_frames: int | None = None,
) -> int:
    """qwen-vl-utils' ``smart_nframes``: how many frames are sampled from ``total_frames``.

    Either ``nframes`` (rounded to an even count) or ``fps`` (default 2.0, clamped to
    ``[min_frames, max_frames]`` and to the clip, floored to an even count)."""
    if fps is not None and nframes is not None:
        raise QvError("give either fps or nframes for a video, not both")
    if nframes is not None:
        n = round_by_factor(nframes, FRAME_FACTOR)
    else:
        fps = FPS if fps is None else fps
        lo = ceil_by_factor(FPS_MIN_FRAMES if min_frames is None else min_frames, FRAME_FACTOR)
        hi = floor_by_factor(
            min(FPS_MAX_FRAMES, total_frames) if max_frames is None else max_frames, FRAME_FACTOR
        )
        n = total_frames / video_fps * fps
        n = min(min(max(n, lo), hi), total_frames)
        n = floor_by_factor(n, FRAME_FACTOR)
    if not (FRAME_FACTOR <= n <= total_frames):
        raise QvError(
            f"cannot sample {n} frames from a clip of {total_frames} frames "
            f"(qwen-vl-utils needs {FRAME_FACTOR} <= frames <= total frames)",
            hint="use a longer clip, or lower nframes/min_frames",
        )
    return n


def frame_range(
    total_frames: int,
    video_fps: float,
    video_start: float | None = None,
    video_end: float | None = None,
) -> tuple[int, int, int]:
    """qwen-vl-utils' ``calculate_video_frame_range``: ``(start_frame, end_frame, count)``."""
    if video_fps <= 0:
        raise QvError(f"video frame rate {video_fps} is not positive", hint="the file's metadata is broken; re-mux it")
    if total_frames <= 0:
        raise QvError("the video has no frames", hint="check the file")
    if video_start is None and video_end is None:
        return 0, total_frames - 1, total_frames
    max_duration = total_frames / video_fps
    start_frame = 0
    if video_start is not None:
        start_frame = math.ceil(max(0.0, min(video_start, max_duration)) * video_fps)
    end_frame = total_frames - 1
    if video_end is not None:
        end_frame = min(math.floor(max(0.0, min(video_end, max_duration)) * video_fps), total_frames - 1)
    if start_frame >= end_frame:
        raise QvError(
            f"empty time range: start frame {start_frame} is not before end frame {end_frame} "
            f"(video is {max_duration:.2f} s, {total_frames} frames at {video_fps:g} fps)",
            hint="check video_start / video_end",
        )
    return start_frame, end_frame, end_frame - start_frame + 1


# -- torch.linspace(start, end, n).round() in float32, bit for bit -----------------------------
_F32 = struct.Struct("f")


def _f32(x: float) -> float:
    """Round a Python float to the nearest float32 (every +,-,*,/ of two float32 values done in
    double and rounded once to float32 is the correctly rounded float32 result)."""
    return _F32.unpack(_F32.pack(x))[0]


def _round_f32(num: int, shift: int) -> float:
    """Round the exact value ``num / 2**shift`` to the nearest float32 (half to even), once."""
    if num == 0:
        return 0.0
    sign = -1 if num < 0 else 1
    num = abs(num)
    extra = num.bit_length() - 24
    if extra > 0:
        q, r = divmod(num, 1 << extra)
        half = 1 << (extra - 1)
        if r > half or (r == half and q & 1):
            q += 1
        num, shift = q, shift - extra
    return sign * math.ldexp(num, -shift)


def _fma_f32(a: float, b: int, c: float) -> float:
    """float32(a * b + c) with one rounding (a fused multiply-add); a, c are float32 values."""
    an, ad = a.as_integer_ratio()
    cn, cd = c.as_integer_ratio()
    den = max(ad, cd)  # powers of two
    return _round_f32(an * b * (den // ad) + cn * (den // cd), den.bit_length() - 1)


def linspace_f32(start: float, end: float, steps: int, fused: bool = True) -> list[float]:
    """``torch.linspace(start, end, steps)`` with the default float32 dtype on CPU.

    ATen computes ``step = (end - start) / (steps - 1)`` in float32, then the first half as
    ``start + step * i`` and the second half as ``end - step * (steps - 1 - i)``, each a fused
    multiply-add (one rounding) in torch's AVX2 / AVX-512 kernels, checked bit for bit against
    torch 2.13. ``fused=False`` gives the two-rounding result of its plain-C kernel
    (``ATEN_CPU_CAPABILITY=default``, CPUs without AVX2)."""
    if steps <= 0:
        return []
    if steps == 1:
        return [_f32(start)]
    s32, e32 = _f32(start), _f32(end)
    step = _f32(_f32(e32 - s32) / _f32(steps - 1))
    halfway = steps // 2
    if not fused:
        return [
            _f32(s32 + _f32(step * i)) if i < halfway else _f32(e32 - _f32(step * (steps - i - 1)))
            for i in range(steps)
        ]
    return [
        _fma_f32(step, i, s32) if i < halfway else _fma_f32(-step, steps - i - 1, e32)
        for i in range(steps)
    ]


def linspace_round(start: float, end: float, steps: int, fused: bool = True) -> list[int]:
    """``torch.linspace(start, end, steps).round().long().tolist()``: float32 values rounded half
    to even. With an even ``steps`` and integer ends no value is ever exactly x.5, so the result
    equals the exact rational rounding whenever float32 is precise enough (clips < ~8000 frames)."""
    return [int(round(v)) for v in linspace_f32(start, end, steps, fused)]


def arange_f32(start: float, end: float, step: float) -> list[float]:
    """``torch.arange(start, end, step)`` with the default float32 dtype on CPU.

    Length ``ceil((end - start) / step)``; ATen accumulates in double: scalar values are
    ``float32(start + step * i)``, and its vectorised loop (blocks of two 8-float vectors) fills a
    vector's lanes as ``float32(base + j * step)`` from the vector's first value ``base`` (already
    float32). Checked bit for bit against torch 2.13."""
    size = math.ceil((end - start) / step)
    out: list[float] = []
    i = 0
    width = 8
    while i + 2 * width <= size:
        for _ in range(2):
            base = _f32(start + step * i)
            out.append(base)
            out.extend(_f32(base + j * step) for j in range(1, width))
            i += width
    out.extend(_f32(start + step * k) for k in range(i, size))
    return out


# -- results ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VideoTokens:
    """How one video becomes visual tokens."""

    source: str  # "qwen-vl-utils" or "vllm-server"
    width: int  # decoded frame size
    height: int
    total_frames: int  # frames in the (trimmed) clip
    video_fps: float
    nframes: int  # frames sampled (before padding to the temporal patch)
    indices: list[int]
    resized_height: int
    resized_width: int
    max_pixels: float  # per-frame pixel cap actually applied
    min_pixels: float
    sample_fps: float
    grid_t: int
    grid_h: int
    grid_w: int
    tokens: int  # LLM placeholder tokens (<|video_pad|>) for this video
    notes: list[str] = field(default_factory=list)

    @property
    def prompt_tokens(self) -> int:
        """Tokens the video adds to the prompt: vision_start + pads + vision_end."""
        return self.tokens + 2

    @property
    def tokens_per_frame_pair(self) -> int:
        return self.grid_h * self.grid_w // (SPATIAL_MERGE_SIZE**2)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["prompt_tokens"] = self.prompt_tokens
        return d


def visual_tokens(nframes: int, resized_height: int, resized_width: int,
                  patch_size: int = IMAGE_PATCH_SIZE) -> tuple[int, int, int, int]:
    """``(grid_t, grid_h, grid_w, tokens)`` for ``nframes`` frames of ``resized_height × resized_width``
    (frames padded to the temporal patch by repeating the last one; 2×2 patches merge to a token).
    An image is ``nframes=1``."""
    grid_t = math.ceil(nframes / TEMPORAL_PATCH_SIZE)
    grid_h, grid_w = resized_height // patch_size, resized_width // patch_size
    return grid_t, grid_h, grid_w, grid_t * grid_h * grid_w // (SPATIAL_MERGE_SIZE**2)


def image_tokens(width: int, height: int, *, min_pixels: float | None = None,
                 max_pixels: float | None = None, image_patch_size: int = IMAGE_PATCH_SIZE) -> int:
    """``<|image_pad|>`` tokens for one image under qwen-vl-utils ``fetch_image`` (its defaults
    equal the Qwen2.5-VL processor's 3,136 / 12,845,056 pixel limits)."""
    factor = image_patch_size * SPATIAL_MERGE_SIZE
    h, w = smart_resize(height, width, factor,
                        MIN_PIXELS if min_pixels is None else min_pixels,
                        MAX_PIXELS if max_pixels is None else max_pixels)
    return (h // factor) * (w // factor)


def video_frame_max_pixels(
    nframes: int,
    *,
    min_pixels: float = VIDEO_MIN_PIXELS,
    max_pixels: float | None = None,
    total_pixels: float | None = None,
    factor: int = IMAGE_FACTOR,
) -> float:
    """Per-frame pixel cap of qwen-vl-utils' ``fetch_video``:
    ``max(min(768·f², total_pixels / nframes × 2), int(min_pixels × 1.05))``, then lowered (never
    raised) to a caller's ``max_pixels``."""
    total = default_total_pixels(factor) if total_pixels is None else total_pixels
    cap = max(min(VIDEO_MAX_TOKEN_NUM * factor * factor, total / nframes * FRAME_FACTOR), int(min_pixels * 1.05))
    return min(cap if max_pixels is None else max_pixels, cap)


def total_frames_for(duration: float, video_fps: float) -> int:
    """Frame count of a constant-frame-rate clip of ``duration`` seconds."""
    return int(round(duration * video_fps))


def qwen_vl_utils_video(
    *,
    width: int,
    height: int,
    video_fps: float,
    total_frames: int | None = None,
    duration: float | None = None,
    fps: float | None = None,
    nframes: int | None = None,
    min_frames: int | None = None,
    max_frames: int | None = None,
    min_pixels: float | None = None,
    max_pixels: float | None = None,
    total_pixels: float | None = None,
    resized_height: int | None = None,
    resized_width: int | None = None,
    video_start: float | None = None,
    video_end: float | None = None,
    image_patch_size: int = IMAGE_PATCH_SIZE,
) -> VideoTokens:
    """What qwen-vl-utils 0.0.14 ``fetch_video`` (decord/torchcodec backends) makes of a video of
    ``width × height`` at ``video_fps`` with ``total_frames`` frames (or ``duration`` seconds).
    The keyword arguments are the keys of its video dict (``fps``, ``nframes``, ``min_pixels``, ...)."""
    if total_frames is None:
        if duration is None:
            raise QvError("give the video's total_frames or its duration")
        total_frames = total_frames_for(duration, video_fps)
    factor = image_patch_size * SPATIAL_MERGE_SIZE
    start, end, count = frame_range(total_frames, video_fps, video_start, video_end)
    n = smart_nframes(count, video_fps, fps=fps, nframes=nframes, min_frames=min_frames, max_frames=max_frames)
    indices = linspace_round(start, end, n)
    lo = VIDEO_MIN_TOKEN_NUM * factor * factor if min_pixels is None else min_pixels
    cap = video_frame_max_pixels(n, min_pixels=lo, max_pixels=max_pixels, total_pixels=total_pixels, factor=factor)
    notes = []
    if max_pixels is not None and max_pixels > cap:
        notes.append(f"max_pixels {max_pixels} exceeds the per-frame limit {cap:g}; the limit applies")
    if resized_height is not None and resized_width is not None:
        rh, rw = smart_resize(resized_height, resized_width, factor)
    else:
        rh, rw = smart_resize(height, width, factor, min_pixels=lo, max_pixels=cap)
    grid_t, grid_h, grid_w, tokens = visual_tokens(n, rh, rw, image_patch_size)
    return VideoTokens(
        source="qwen-vl-utils", width=width, height=height, total_frames=count, video_fps=video_fps,
        nframes=n, indices=indices, resized_height=rh, resized_width=rw, max_pixels=cap, min_pixels=lo,
        sample_fps=n / max(count, 1e-6) * video_fps, grid_t=grid_t, grid_h=grid_h, grid_w=grid_w,
        tokens=tokens, notes=notes,
    )


def numpy_linspace_int(start: float, stop: float, num: int) -> list[int]:
    """``np.linspace(start, stop, num, dtype=int)``: float64 ``i * step + start`` (last value
    exactly ``stop``), truncated toward zero."""
    if num <= 0:
        return []
    if num == 1:
        return [int(start)]
    step = (stop - start) / (num - 1)
    values = [i * step + start for i in range(num)]
    values[-1] = stop
    return [int(v) for v in values]


def vllm_server_video(
    *,
    width: int,
    height: int,
    video_fps: float,
    total_frames: int | None = None,
    duration: float | None = None,
    loader: str = "qwen2_vl",
    fps: float | None = None,
    num_frames: int = VLLM_DEFAULT_NUM_FRAMES,
    min_frames: int = FPS_MIN_FRAMES,
    max_frames: int = FPS_MAX_FRAMES,
    min_pixels: int = HF_MIN_PIXELS,
    max_pixels: int = HF_MAX_PIXELS,
    cap_pixels_per_frame: bool = False,
    max_video_tokens: int = DEFAULT_MODEL_SEQ_LEN,
) -> VideoTokens:
    """What vLLM 0.32 makes of a video it decodes itself (``video_url`` over the OpenAI API).

    ``loader="qwen2_vl"`` is the loader vLLM picks for ``Qwen2VLVideoProcessor`` models
    (Qwen2-VL, Qwen2.5-VL): ``total / video_fps × min(fps, 30)`` frames (fps default 2), clamped
    to ``[min_frames, min(max_frames, 768, total)]``, floored to even, indices
    ``torch.arange(0, total, total / n).int()`` clamped to the last frame.
    ``loader="opencv"`` is the generic uniform loader (``VLLM_VIDEO_LOADER_BACKEND`` /
    ``--media-io-kwargs '{"video": {"video_backend": "opencv"}}'``): ``min(num_frames, total,
    floor(duration × fps))`` frames with ``np.linspace(0, total - 1, n, dtype=int)``.

    The frames are then resized by transformers' ``Qwen2VLVideoProcessor``, which for Qwen2.5-VL
    reads the *image* limits of ``preprocessor_config.json`` (3,136 / 12,845,056 pixels) unless
    ``--mm-processor-kwargs`` override ``min_pixels`` / ``max_pixels``; no total budget unless
    ``cap_pixels_per_frame``."""
    if total_frames is None:
        if duration is None:
            raise QvError("give the video's total_frames or its duration")
        total_frames = total_frames_for(duration, video_fps)
    if duration is None:
        duration = total_frames / video_fps if video_fps > 0 else 0.0
    if total_frames <= 0:
        raise QvError("the video has no frames", hint="check the file")
    notes: list[str] = []
    if loader == "qwen2_vl":
        if video_fps <= 0:
            raise QvError(
                "vLLM's Qwen2-VL video loader needs a known frame rate, but the video reports 0",
                hint="re-mux the video with a constant frame rate (ffmpeg -r 30 ...)",
            )
        target_fps = FPS if fps is None else fps
        hi = math.floor(min(min(max_frames, FPS_MAX_FRAMES), total_frames) / TEMPORAL_PATCH_SIZE) * TEMPORAL_PATCH_SIZE
        n = total_frames / video_fps * min(target_fps, 30)
        n = min(max(n, min_frames), hi, total_frames)
        n = math.floor(n / TEMPORAL_PATCH_SIZE) * TEMPORAL_PATCH_SIZE
        if n <= 0:
            raise QvError(f"a clip of {total_frames} frame(s) is too short for vLLM's Qwen2-VL video loader",
                          hint="use a clip of at least 2 frames")
        indices = [min(int(v), total_frames - 1) for v in arange_f32(0, total_frames, total_frames / n)]
    elif loader == "opencv":
        n = total_frames
        if num_frames > 0:
            n = min(num_frames, total_frames)
        if fps is not None and fps > 0:
            n = min(n, math.floor(duration * fps))
        n = max(1, n)
        indices = list(range(n)) if n == total_frames else numpy_linspace_int(0, total_frames - 1, n)
    else:
        raise QvError(f"unknown vLLM video loader {loader!r}", hint="use 'qwen2_vl' or 'opencv'")
    sampled = len(indices)
    cap = max_pixels
    if cap_pixels_per_frame:
        total_pixels = int(max_video_tokens * IMAGE_FACTOR * IMAGE_FACTOR * 0.9)
        cap = max(min(max_pixels, total_pixels * TEMPORAL_PATCH_SIZE // sampled), int(min_pixels * 1.05))
    rh, rw = hf_smart_resize(height, width, IMAGE_FACTOR, min_pixels, cap)
    grid_t, grid_h, grid_w, tokens = visual_tokens(sampled, rh, rw)
    if sampled % TEMPORAL_PATCH_SIZE:
        notes.append(f"{sampled} frames padded to {grid_t * TEMPORAL_PATCH_SIZE} by repeating the last one")
    return VideoTokens(
        source=f"vllm-server:{loader}", width=width, height=height, total_frames=total_frames,
        video_fps=video_fps, nframes=sampled, indices=indices, resized_height=rh, resized_width=rw,
        max_pixels=cap, min_pixels=min_pixels, sample_fps=sampled / total_frames * video_fps,
        grid_t=grid_t, grid_h=grid_h, grid_w=grid_w, tokens=tokens, notes=notes,
    )
