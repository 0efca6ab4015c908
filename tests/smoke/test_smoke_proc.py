"""Engine children run in their own process group, their log is kept, and no process of the
group survives any way out: normal end with workers left behind, an exception, Ctrl-C, timeout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qvdoctor.smoke.proc import Child, group_pids, group_rss

ROOT = Path(__file__).resolve().parents[2]

# A "server" that starts two workers in its group (like vLLM's EngineCore and Worker), prints,
# and would run for ten minutes.
SERVER = """
import subprocess, sys, time
kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]) for _ in range(2)]
print("workers", *[k.pid for k in kids], flush=True)
print("ready", flush=True)
time.sleep(600)
"""

# Exits at once but leaves a worker running, as a crashed engine can.
LEAVES_WORKER = """
import subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print("bye", flush=True)
"""


def wait_for(path: Path, text: str, seconds: float = 30) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path}")


def test_log_is_streamed_and_kept_and_the_group_is_gone_after_an_exception(tmp_path):
    log = tmp_path / "engine.log"
    seen: list[str] = []
    with pytest.raises(RuntimeError):
        with Child([sys.executable, "-c", SERVER], dict(os.environ), log, seen.append) as child:
            wait_for(log, "ready")
            pgid = child.proc.pid
            assert len(group_pids(pgid)) == 3
            assert group_rss(pgid) > 0
            child.note("[qvdoctor] a remark of ours")
            raise RuntimeError("something went wrong in the parent")
    assert group_pids(pgid) == []
    text = log.read_text()
    assert "workers" in text and "[qvdoctor] a remark of ours" in text
    assert any(line.startswith("workers") for line in seen)


def test_workers_left_behind_by_a_finished_child_are_reaped(tmp_path):
    with Child([sys.executable, "-c", LEAVES_WORKER], dict(os.environ), tmp_path / "log") as child:
        result = child.wait(60)
        pgid = child.proc.pid
        assert result.returncode == 0
    assert group_pids(pgid) == []


def test_a_timeout_kills_the_group(tmp_path):
    with Child([sys.executable, "-c", SERVER], dict(os.environ), tmp_path / "log") as child:
        wait_for(tmp_path / "log", "ready")
        result = child.wait(0.5)
        pgid = child.proc.pid
    assert result.timed_out and result.returncode is None
    assert group_pids(pgid) == []


def test_ctrl_c_in_the_parent_stops_the_engine_group(tmp_path):
    """A parent using Child gets SIGINT (as from Ctrl-C): it exits 130 and leaves nothing running."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from qvdoctor.smoke.proc import Child\n"
        f"SERVER = {SERVER!r}\n"
        "log = Path(sys.argv[1])\n"
        "try:\n"
        "    with Child([sys.executable, '-c', SERVER], dict(os.environ), log) as child:\n"
        "        print('group', child.proc.pid, flush=True)\n"
        "        child.wait(None)\n"
        "except KeyboardInterrupt:\n"
        "    sys.exit(130)\n"
    )
    log = tmp_path / "engine.log"
    parent = subprocess.Popen([sys.executable, str(script), str(log)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    pgid = int(parent.stdout.readline().split()[1])
    wait_for(log, "ready")
    assert len(group_pids(pgid)) == 3
    parent.send_signal(signal.SIGINT)
    assert parent.wait(60) == 130
    assert group_pids(pgid) == []
