"""The media ``bench`` sends: unique per request (decoded frames differ, size and frame count do
not), for a file video (held decoded, or re-encoded frame by frame when large), an image and the
synthetic clip; and a file video end to end against the test server."""

from __future__ import annotations

import base64
import io

import pytest

from conftest import run_qvdoctor
from qvdoctor.loadtest import media
from tests.loadtest.benchfix import result_json, server


def _decode(url: str):
    import av
    import numpy as np

    data = base64.b64decode(url.split(",", 1)[1])
    with av.open(io.BytesIO(data)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from qvdoctor.video import make_test_clip

    return str(make_test_clip(tmp_path_factory.mktemp("clip") / "c.mp4", seconds=1.0, width=96, height=64, fps=8))


@pytest.mark.parametrize("streamed", [False, True])
def test_file_video_is_unique_per_request_with_the_same_shape(clip, streamed, monkeypatch):
    if streamed:
        monkeypatch.setattr(media, "MAX_DECODED_BYTES", 0)
    spec = media.spec_for(clip, None, None)
    f = media.MediaFactory(spec, seed=7)
    a, b = _decode(f.media_url(0)), _decode(f.media_url(1))
    assert a.shape == b.shape == (spec.total_frames, 64, 96, 3)
    assert (a != b).any() and (a[:, 20:, 40:] == b[:, 20:, 40:]).all()  # only the corner stamp differs
    assert media.MediaFactory(spec, seed=7).media_url(0) == f.media_url(0)


def test_same_media_sends_the_file_itself(clip):
    f = media.MediaFactory(media.spec_for(clip, None, None, unique=False))
    assert f.media_url(0) == f.media_url(5)
    assert base64.b64decode(f.media_url(0).split(",", 1)[1]) == open(clip, "rb").read()


def test_image_tokens_follow_the_hf_processor(tmp_path):
    from PIL import Image

    path = tmp_path / "i.png"
    Image.new("RGB", (640, 480), (10, 200, 30)).save(path)
    spec = media.spec_for(None, str(path), None)
    assert media.expected_visual_tokens(spec) == (476 // 28) * (644 // 28)  # 480x640 -> 476x644
    f = media.MediaFactory(spec)
    assert f.media_url(0) != f.media_url(1)
    assert f.content(0)[0]["type"] == "image_url"


def test_file_video_against_the_test_server(clip):
    tokens = media.expected_visual_tokens(media.spec_for(clip, None, None))
    with server("--visual-tokens", str(tokens)) as url:
        out = result_json(run_qvdoctor("bench", "--url", url, "--video", clip, "--concurrency", "2", "--requests", "4",
                                       "--max-tokens", "4", "--no-ceiling", "--json", timeout=120))
    p = out["points"][0]
    assert p["ok"] == 4 and p["visual_tokens"] == tokens and p["server_cache"]["mm_cache"]["hits"] == 0
