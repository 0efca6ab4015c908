"""Unreachable and offline hubs: within 2 s, one line naming each source tried and why it
failed (DNS, refused, no answer, TLS, a mirror's 403 rule, offline mode), before any hub client
is involved; the same settings keep plan from asking a hub."""

from __future__ import annotations

import io
import socket
import time

import pytest

from fetch.conftest import DEAD, REPO_ID, cli
from fetch.emu.hf import HubServer

RULE = "hf-mirror: this repository is not served here; download it from the original site"


@pytest.fixture
def silent_port():
    """A port that accepts connections (the kernel's backlog) but never answers: a dead proxy or
    a black-holed route looks like this."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    yield f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()


@pytest.fixture
def forbidding_mirror(tiny_repo):
    server = HubServer([tiny_repo]).start()
    server.faults.update(forbid=RULE)
    yield server.url
    server.stop()


def _fetch_fails_fast(capsys, tmp_path, *extra: str) -> tuple[str, str, float]:
    t0 = time.monotonic()
    code, out, err = cli(capsys, "fetch", REPO_ID, "--local-dir", str(tmp_path), *extra)
    took = time.monotonic() - t0
    assert code == 3, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0], out, took


@pytest.mark.parametrize("kind", ["dns", "refused", "tls", "403 rule", "offline"])
def test_each_failure_kind_is_named_within_two_seconds(kind, capsys, tmp_path, monkeypatch, forbidding_mirror):
    endpoint = {
        "dns": "http://qvdoctor-test-host.invalid",
        "refused": DEAD,
        "tls": forbidding_mirror.replace("http://", "https://"),  # TLS spoken to a plain HTTP server
        "403 rule": forbidding_mirror,
        "offline": forbidding_mirror,
    }[kind]
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    if kind == "offline":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    error, _, took = _fetch_fails_fast(capsys, tmp_path, "--source", "hf")
    assert took < 2.0, (took, error)
    host = endpoint.split("://")[1]
    assert error.startswith(f"error: cannot reach hf ({endpoint}): ")
    expected = {
        "dns": "DNS",
        "refused": f"connection refused by {host}",
        "tls": "TLS handshake with",
        "403 rule": f"HTTP 403 from 127.0.0.1: {RULE}",
        "offline": "offline mode (HF_HUB_OFFLINE=1)",
    }[kind]
    assert expected in error, error


class TimedStream(io.StringIO):
    """Remembers when the first line was written."""

    def __init__(self) -> None:
        super().__init__()
        self.first: float | None = None

    def write(self, text: str) -> int:
        if self.first is None and text.strip():
            self.first = time.monotonic()
        return super().write(text)


def test_a_silent_hub_is_named_within_two_seconds_then_given_its_time(tmp_path, monkeypatch, silent_port):
    """No answer is not a refusal (a slow link may still answer): the first line says so within
    2 s, and the fetch gives up only after QVDOCTOR_PROBE_TIMEOUT."""
    from qvdoctor.errors import QvError
    from qvdoctor.fetch.progress import PlainReporter
    from qvdoctor.fetch.run import fetch

    monkeypatch.setenv("HF_ENDPOINT", silent_port)
    monkeypatch.setenv("QVDOCTOR_PROBE_TIMEOUT", "2")
    stream = TimedStream()
    t0 = time.monotonic()
    with pytest.raises(QvError) as err:
        fetch(REPO_ID, source="hf", local_dir=tmp_path, reporter=PlainReporter(stream))
    assert stream.first is not None and stream.first - t0 < 2.0
    host = silent_port.split("://")[1]
    assert stream.getvalue().splitlines()[0] == (
        f"source hf ({silent_port}): no answer from {host} within 1 s yet; waiting up to 2 s")
    assert str(err.value) == f"cannot reach hf ({silent_port}): no listing within 2 s"


def test_auto_says_which_sources_were_tried_and_why_within_two_seconds(capsys, tmp_path, monkeypatch, forbidding_mirror):
    monkeypatch.setenv("HF_ENDPOINT", "http://qvdoctor-test-host.invalid")
    monkeypatch.setenv("QVDOCTOR_HF_MIRROR_ENDPOINT", forbidding_mirror)
    monkeypatch.setenv("MODELSCOPE_OFFLINE", "1")
    error, out, took = _fetch_fails_fast(capsys, tmp_path)
    assert took < 2.0, (took, error)
    assert error.startswith(f"error: no source could be asked for {REPO_ID}: ")
    assert "hf (http://qvdoctor-test-host.invalid): DNS: cannot resolve qvdoctor-test-host.invalid" in error
    assert f"hf-mirror ({forbidding_mirror}): HTTP 403" in error and RULE in error
    assert "modelscope (http://127.0.0.1:9): offline mode (MODELSCOPE_OFFLINE=1)" in error
    assert out == ""  # the error is the first line: nothing said twice


def test_auto_skips_an_offline_source_and_uses_the_others(hub, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", "http://127.0.0.2:9")  # not the dead mirror's, so it is listed
    monkeypatch.setenv("MODELSCOPE_OFFLINE", "1")
    code, out, err = cli(capsys, "fetch", REPO_ID, "--local-dir", str(tmp_path))
    assert code == 0, err
    lines = out.splitlines()
    assert any(line.startswith("source modelscope") and "offline mode (MODELSCOPE_OFFLINE=1)" in line for line in lines)
    assert any(line.startswith("probe  hf: listed in") and "<- chosen" in line for line in lines)


def test_plan_with_hf_hub_offline_answers_at_once_without_options_it_lacks(capsys, tmp_path, monkeypatch):
    """HF_HUB_OFFLINE=1 plan --model <a repo id nobody fetched>: no hub asked, the error names the
    setting, and the hint does not offer fetch's --source (plan has none)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MODELSCOPE_OFFLINE", "1")
    monkeypatch.setenv("QVDOCTOR_CACHE", str(tmp_path / "qv"))
    t0 = time.monotonic()
    code, out, err = cli(capsys, "plan", "--model", "Qwen/Qwen2.5-VL-7B-Instruct", "--facts", "qvdoctor/data/machines/t4.json")
    assert time.monotonic() - t0 < 2.0
    assert code == 3, out + err
    assert "no hub is asked (HF_HUB_OFFLINE=1, MODELSCOPE_OFFLINE=1)" in err
    assert "--source" not in err and "qvdoctor fetch Qwen/Qwen2.5-VL-7B-Instruct" in err


def test_plan_with_every_hub_unreachable_explains_without_fetch_options(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("QVDOCTOR_CACHE", str(tmp_path / "qv"))
    t0 = time.monotonic()
    code, out, err = cli(capsys, "plan", "--model", "Qwen/Qwen2.5-VL-7B-Instruct", "--facts", "qvdoctor/data/machines/t4.json")
    assert time.monotonic() - t0 < 2.0
    assert code == 3
    assert "connection refused" in err and "--source" not in err
