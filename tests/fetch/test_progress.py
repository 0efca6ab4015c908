"""Progress: rich bars on a terminal, plain lines in a pipe, JSON-lines events with --json."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time

from fetch.conftest import REPO_ID, ROOT, events, read_pty, run_cli


def test_plain_lines_when_piped(hub, tmp_path):
    hub.faults.update(rate=2_000_000)
    r = run_cli("fetch", REPO_ID, "--source", "hf", "--local-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    # The reachability probe comes first, on the terminal, not only in --json.
    assert lines[0].startswith("source hf (http://127.0.0.1:") and "reachable" in lines[0]
    assert lines[1].startswith(f"fetch: {REPO_ID} @ ") and "6 files, 1.6 MB" in lines[1]
    assert sum(1 for line in lines if line.strip().startswith("verified")) == 6
    assert lines[-1].startswith("fetch: 6 files verified")
    assert "\x1b[" not in r.stdout  # no terminal escapes in logs


def test_json_events(hub, tmp_path):
    r = run_cli("fetch", REPO_ID, "--source", "hf", "--local-dir", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    ev = events(r.stdout)
    assert len(ev) == len(r.stdout.splitlines())  # every line is one JSON object
    kinds = [e["event"] for e in ev]
    assert kinds[:2] == ["reach", "start"] and kinds[-1] == "done"
    assert ev[0]["sources"]["hf"]["ok"] is True
    assert kinds.count("file_start") == 6 and kinds.count("file_done") == 6
    assert ev[1]["bytes"] == 1_640_056 and ev[-1]["verified"] == 6
    for e in ev:
        if e["event"] == "file_done":
            assert len(e["sha256"]) == 64


def test_rich_bars_on_a_terminal(hub, tmp_path):
    hub.faults.update(rate=1_000_000)
    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120", "TERM": "xterm-256color"}
    proc = subprocess.Popen([sys.executable, "-m", "qvdoctor", "fetch", REPO_ID, "--source", "hf", "--local-dir",
                             str(tmp_path)], cwd=ROOT, env=env, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    text = read_pty(master, proc)
    assert proc.returncode == 0, text[-2000:]
    assert "total (6 files)" in text and "━" in text  # a rich progress bar
    assert "/s" in text  # transfer speed column


def test_no_eta_until_a_second_of_transfer_gives_a_rate():
    """The first bytes after a slow listing gave an ETA of 129,159 s: the rate clock starts with
    the transfer, and no ETA is printed until it has run a second over at least 1 MiB."""
    import io

    from qvdoctor.fetch.progress import PlainReporter

    out = io.StringIO()
    r = PlainReporter(out, every=0.0)
    time.sleep(1.0)  # listing and probing: not part of the rate
    r.start(1, 100_000_000, repo_id=REPO_ID, commit="0" * 40, source="hf")
    r.file_start("model.safetensors", 100_000_000, 0)
    r.advance("model.safetensors", 64 << 10)
    assert out.getvalue().splitlines()[-1].endswith("measuring rate")
    time.sleep(1.05)
    r.advance("model.safetensors", 20 << 20)
    last = out.getvalue().splitlines()[-1]
    assert "MB/s  eta " in last
    eta = float(last.rsplit("eta ", 1)[1].rstrip("s"))
    assert 3 < eta < 6  # ~20 MB/s over 1.05 s, 79 MB to go: 4 s (counting the listing second too would say 8 s)
