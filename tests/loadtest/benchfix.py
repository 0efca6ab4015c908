"""Shared pieces of the bench tests: a local test server with exactly known timing, and the CLI."""

from __future__ import annotations

import contextlib
import json
from typing import Iterator

from qvdoctor.loadtest.media import expected_visual_tokens, spec_for
from qvdoctor.loadtest.testserver import spawn

CLIP = "2@64x64"  # 8 frames at 4 fps: small, quick to encode
CLIP_TOKENS = expected_visual_tokens(spec_for(None, None, CLIP))


@contextlib.contextmanager
def server(*args: str) -> Iterator[str]:
    with spawn(*args) as url:
        yield url


def result_json(res) -> dict:
    assert res.stdout.strip(), res.stderr[-3000:]
    return json.loads(res.stdout)
