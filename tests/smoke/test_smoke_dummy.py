"""``qvdoctor smoke --load-format dummy``: a configuration is checked before its weights exist.

The GPU run this path was built for (published Qwen2.5-VL-7B config, vLLM 0.26.0 on an H100) is
recorded in tests/logs/real/gpu/smoke-toolong/ and described in docs/smoke.md."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import ROOT, run_qvdoctor
from qvdoctor.errors import QvError
from qvdoctor.model.locate import resolve
from qvdoctor.smoke.backends import _check_answer

FIXTURE = ROOT / "tests" / "plan" / "fixtures" / "qwen2.5-vl-7b-instruct"
RECORDED = ROOT / "tests" / "logs" / "real" / "gpu" / "smoke-toolong"


def test_a_config_only_directory_needs_dummy_weights(tmp_path):
    d = tmp_path / "m"
    shutil.copytree(FIXTURE, d)
    with pytest.raises(QvError, match="no weights"):
        resolve(str(d))
    assert resolve(str(d), need_weights=False).directory == d


def test_unknown_load_format_is_a_one_line_error(tmp_path):
    res = run_qvdoctor("smoke", "--model", "tiny-random", "--load-format", "pt", "--workdir", str(tmp_path))
    assert res.returncode == 3
    assert res.stderr.splitlines()[0] == "error: unknown --load-format 'pt'"


def test_random_weights_count_by_their_tokens_not_their_text():
    """On the GPU, attempt 2 generated 16 tokens (random ids outside the tiny tokenizer: empty
    text) and was wrongly failed with 'the answer is empty'."""
    result = json.loads((RECORDED / "attempt-2" / "result.json").read_text())
    assert result["generated_tokens"] == 16 and result["text"] == ""
    assert _check_answer(result) == "the answer is empty"  # real weights: an empty answer is a failure
    assert _check_answer(result, dummy=True) is None
    assert _check_answer({**result, "generated_tokens": 0}, dummy=True) == "the model produced no tokens"
