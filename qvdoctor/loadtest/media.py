"""The media each request carries: unique per request unless asked otherwise (so the prefix
and multimodal caches cannot flatter the result), as ``data:`` URLs (any server, local or
remote), with qvdoctor's own visual-token count for what the server will see.

Uniqueness: every frame (or the image) gets a block pattern encoding a per-run nonce and the
request's number in one corner; the rest of the content is unchanged."""

from __future__ import annotations

import base64
import io
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qvdoctor.errors import QvError

DEFAULT_PROMPT = {"video": "Describe this video.", "image": "Describe this image.", "text": "Write a short story."}
SYNTHETIC_FPS = 4.0
MAX_DECODED_BYTES = 1 << 30  # a file video larger than this decoded is re-encoded frame by frame per request
_SYNTH = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*@\s*(\d+)\s*[xX]\s*(\d+)\s*(?:@\s*(\d+(?:\.\d+)?))?\s*$")


@dataclass
class MediaSpec:
    """What to send: ``kind`` video / image / text, and the source."""

    kind: str
    source: str  # file path, "SECONDS@WxH", or ""
    width: int = 0
    height: int = 0
    fps: float = 0.0
    total_frames: int = 0
    unique: bool = True

    def describe(self) -> str:
        if self.kind == "text":
            return "text only"
        what = f"{self.width}x{self.height}"
        if self.kind == "video":
            what += f", {self.total_frames} frames at {self.fps:g} fps ({self.total_frames / self.fps:.2f} s)"
        return f"{self.kind} {self.source} ({what}; {'unique per request' if self.unique else 'the same for every request'})"


def parse_synthetic(text: str) -> tuple[float, int, int, float]:
    m = _SYNTH.match(text)
    if not m:
        raise QvError(f"--synthetic-video {text!r} is not SECONDS@WxH", "e.g. --synthetic-video 4@320x240 (optionally @FPS: 4@320x240@8)")
    secs, w, h = float(m.group(1)), int(m.group(2)), int(m.group(3))
    fps = float(m.group(4)) if m.group(4) else SYNTHETIC_FPS
    if secs <= 0 or w < 16 or h < 16 or fps <= 0 or secs * fps < 2:
        raise QvError(f"--synthetic-video {text!r}: needs at least 2 frames of at least 16x16", "e.g. 4@320x240")
    return secs, w, h, fps


def spec_for(video: str | None, image: str | None, synthetic: str | None, unique: bool = True) -> MediaSpec:
    given = [x for x in (video, image, synthetic) if x]
    if len(given) > 1:
        raise QvError("give one of --video, --image, --synthetic-video", "one kind of media per run")
    if synthetic:
        secs, w, h, fps = parse_synthetic(synthetic)
        return MediaSpec("video", synthetic, w, h, fps, max(2, round(secs * fps)), unique)
    if video:
        from qvdoctor.video.probe import probe_video

        info = probe_video(video)
        return MediaSpec("video", video, info.width, info.height, info.fps, info.total_frames, unique)
    if image:
        from PIL import Image

        if not os.path.isfile(image):
            raise QvError(f"no such image: {image}", "check the path")
        try:
            with Image.open(image) as im:
                w, h = im.size
        except OSError as exc:
            raise QvError(f"cannot read image {image}: {exc}", "use a PNG or JPEG file") from None
        return MediaSpec("image", image, w, h, unique=unique)
    return MediaSpec("text", "", unique=unique)


def expected_visual_tokens(spec: MediaSpec) -> int | None:
    """``<|video_pad|>`` / ``<|image_pad|>`` tokens vLLM makes of this media with Qwen2.5-VL's
    default processor settings (:mod:`qvdoctor.model.vision_tokens`, the server path)."""
    from qvdoctor.model import vision_tokens as vt

    if spec.kind == "video":
        return vt.vllm_server_video(width=spec.width, height=spec.height, video_fps=spec.fps, total_frames=spec.total_frames).tokens
    if spec.kind == "image":
        h, w = vt.hf_smart_resize(spec.height, spec.width)
        return (h // vt.IMAGE_FACTOR) * (w // vt.IMAGE_FACTOR)
    return None


def _stamp(arr: Any, number: int, nonce: int) -> None:
    """Write ``nonce`` and ``number`` as a 8x8 grid of black/white 4-pixel squares, top left."""
    bits = (nonce << 32) | (number & 0xFFFFFFFF)
    cell = 4
    for i in range(64):
        y, x = (i // 8) * cell, (i % 8) * cell
        if y + cell <= arr.shape[0] and x + cell <= arr.shape[1]:
            arr[y:y + cell, x:x + cell] = 255 if (bits >> i) & 1 else 0


class MediaFactory:
    """Makes the ``content`` list of request ``n``: the media (fresh bytes for each ``n`` when
    unique) plus the prompt text."""

    def __init__(self, spec: MediaSpec, prompt: str | None = None, seed: int | None = None):
        self.spec = spec
        self.prompt = prompt or DEFAULT_PROMPT[spec.kind]
        self.nonce = (seed if seed is not None else random.SystemRandom().getrandbits(31)) & 0x7FFFFFFF
        self._frames: list[Any] | None = None
        self._fixed: str | None = None

    def _base_frames(self) -> list[Any]:
        import numpy as np

        if self._frames is None:
            s = self.spec
            if s.kind == "video" and os.path.isfile(s.source):
                from qvdoctor.video._av import open_video

                container, stream = open_video(s.source)
                with container:
                    self._frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
            elif s.kind == "video":
                yy, xx = np.mgrid[0:s.height, 0:s.width]
                frames = []
                for t in range(s.total_frames):
                    img = np.zeros((s.height, s.width, 3), np.uint8)
                    img[..., 0] = (xx * 255 // max(1, s.width - 1) + 8 * t) % 256
                    img[..., 1] = (yy * 255 // max(1, s.height - 1)) % 256
                    img[..., 2] = (128 + 16 * t) % 256
                    frames.append(img)
                self._frames = frames
            else:
                from PIL import Image

                with Image.open(s.source) as im:
                    self._frames = [np.asarray(im.convert("RGB")).copy()]
        return self._frames

    def _encode_video(self, frames: Any) -> bytes:
        from fractions import Fraction

        import av

        buf = io.BytesIO()
        it = iter(frames)
        first = next(it)
        h, w = first.shape[:2]  # as decoded (a rotated file's display matrix is not re-applied)
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        with av.open(buf, mode="w", format="mp4") as out:
            st = out.add_stream(codec, rate=Fraction(self.spec.fps).limit_denominator(1000))
            st.width, st.height, st.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
            if codec == "libx264":
                st.options = {"preset": "ultrafast"}
            for f in _chain(first, it):
                vf = av.VideoFrame.from_ndarray(f[: h - h % 2, : w - w % 2], format="rgb24")
                out.mux(st.encode(vf))
            out.mux(st.encode(None))
        return buf.getvalue()

    def media_url(self, n: int) -> str:
        s = self.spec
        if not s.unique:
            if self._fixed is None:
                mime = "video/mp4" if s.kind == "video" else "image/png"
                if os.path.isfile(s.source):
                    data = Path(s.source).read_bytes()
                    mime = _mime(s.source, s.kind)
                    self._fixed = f"data:{mime};base64," + base64.b64encode(data).decode()
                else:
                    self._fixed = self._make(0, mime)
            return self._fixed
        return self._make(n, "video/mp4" if s.kind == "video" else "image/png")

    def _too_big(self) -> bool:
        s = self.spec
        return s.kind == "video" and os.path.isfile(s.source) and s.width * s.height * 3 * s.total_frames > MAX_DECODED_BYTES

    def _stream_reencode(self, n: int) -> bytes:
        """Decode, stamp and encode frame by frame (a long video never sits decoded in memory)."""
        from qvdoctor.video._av import open_video

        container, stream = open_video(self.spec.source)
        with container:
            def frames():
                for fr in container.decode(stream):
                    arr = fr.to_ndarray(format="rgb24")
                    _stamp(arr, n, self.nonce)
                    yield arr
            return self._encode_video(frames())

    def _make(self, n: int, mime: str) -> str:
        if self._too_big():
            return f"data:{mime};base64," + base64.b64encode(self._stream_reencode(n)).decode()
        frames = [f.copy() for f in self._base_frames()]
        for f in frames:
            _stamp(f, n, self.nonce)
        if self.spec.kind == "video":
            data = self._encode_video(frames)
        else:
            from PIL import Image

            buf = io.BytesIO()
            Image.fromarray(frames[0]).save(buf, format="PNG", compress_level=1)
            data = buf.getvalue()
        return f"data:{mime};base64," + base64.b64encode(data).decode()

    def content(self, n: int) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        if self.spec.kind == "video":
            parts.append({"type": "video_url", "video_url": {"url": self.media_url(n)}})
        elif self.spec.kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": self.media_url(n)}})
        parts.append({"type": "text", "text": self.prompt})
        return parts

    def text_only(self) -> list[dict[str, Any]]:
        return [{"type": "text", "text": self.prompt}]


def _chain(first: Any, rest: Any) -> Any:
    yield first
    yield from rest


def _mime(path: str, kind: str) -> str:
    ext = Path(path).suffix.lower()
    return {".mp4": "video/mp4", ".webm": "video/webm", ".mkv": "video/x-matroska", ".mov": "video/quicktime",
            ".avi": "video/x-msvideo", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
            ".webp": "image/webp"}.get(ext, "video/mp4" if kind == "video" else "image/png")
