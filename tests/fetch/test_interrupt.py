"""Ctrl-C (SIGINT) during fetch: one clean line saying what is kept, no second progress bar, exit
130; running the same command again resumes from the part files."""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys
import time

import pytest

from fetch.conftest import ROOT, events, read_pty, run_cli, sha256
from fetch.emu.hf import HubServer
from fetch.emu.repo import build_repo

REPO = "Qwen/Interrupted"
SIZE = 4_000_000
LINE = re.compile(r"^interrupted: (\d+\.\d) MB kept, re-run the same command to resume$")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


@pytest.fixture
def slow_hub(monkeypatch):
    repo = build_repo(REPO, {"model.safetensors": SIZE, "config.json": b"{}"})
    server = HubServer([repo]).start()
    server.faults.update(rate=40_000)  # per connection: ~20 x 40 kB/s, the file takes ~5 s
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    yield server, repo
    server.stop()


def _interrupt_when(server, proc: subprocess.Popen, sent: int) -> None:
    deadline = time.monotonic() + 60
    while server.body_bytes_total < sent and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)


def test_ctrl_c_says_what_is_kept_and_the_rerun_resumes(slow_hub, tmp_path):
    server, repo = slow_hub
    d = tmp_path / "m"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "qvdoctor", "fetch", REPO, "--source", "hf", "--local-dir", str(d)]
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _interrupt_when(server, proc, 1_000_000)
    t0 = time.monotonic()
    out, err = proc.communicate(timeout=30)
    # Seen at once: no worker finishes its 1 MiB block first (25 s at this rate) before stopping.
    assert time.monotonic() - t0 < 2.5
    assert proc.returncode == 130, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and LINE.match(lines[0]), err  # no traceback, no second "error: interrupted"
    kept = float(LINE.match(lines[0]).group(1)) * 1e6
    assert kept >= 0.9e6
    assert not (d / "model.safetensors").exists()

    server.faults.update(rate=0)
    sent_before = -1
    while sent_before != server.body_bytes_total:  # the server notices the closed sockets
        sent_before = server.body_bytes_total
        time.sleep(0.3)
    r = run_cli("fetch", REPO, "--source", "hf", "--local-dir", str(d), "--json")
    assert r.returncode == 0, r.stderr
    start = [e for e in events(r.stdout) if e["event"] == "file_start" and e["path"] == "model.safetensors"][0]
    assert start["resumed"] >= kept - 2 * 2**20  # what the line said is kept was used (up to a block per chunk in flight)
    assert server.body_bytes_total - sent_before <= SIZE - start["resumed"] + 1_000
    assert sha256(d / "model.safetensors") == repo.files["model.safetensors"].sha256


def test_ctrl_c_on_a_terminal_leaves_no_second_bar(slow_hub, tmp_path):
    server, _ = slow_hub
    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100", "TERM": "xterm-256color"}
    proc = subprocess.Popen([sys.executable, "-m", "qvdoctor", "fetch", REPO, "--source", "hf", "--local-dir",
                             str(tmp_path / "m")], cwd=ROOT, env=env, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    _interrupt_when(server, proc, 1_000_000)
    text = read_pty(master, proc)
    assert proc.returncode == 130, text[-2000:]
    assert "━" in text  # bars were drawn while it ran
    tail = text[text.rindex("interrupted:"):]
    assert LINE.match(ANSI.sub("", tail).strip()), tail
    # The live display was erased before the line (rich's transient stop): the last frame is not
    # printed again after the interrupt, so the scrollback holds no frozen duplicate bar.
    before = text[: text.rindex("interrupted:")]
    last_bar = before.rindex("━")
    assert "\x1b[2K" in before[last_bar:], before[last_bar:][:400]
    assert text.count("interrupted:") == 1
