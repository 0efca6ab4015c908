"""build-image --facts FILE|NAME: cc and driver come from a snapshot of the target machine (saved
there with 'diagnose --save-facts'), so a T4 user types no cc or driver."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEAD = {"DOCKER_HOST": "unix:///nonexistent/qvdoctor-dead.sock"}
T4 = ROOT / "qvdoctor" / "data" / "machines" / "t4.json"


def test_facts_short_name_builds_what_the_typed_cc_and_driver_build(qvdoctor, tmp_path):
    by_name = qvdoctor("build-image", "--facts", "t4", "--dry-run", env=DEAD, cwd=tmp_path)  # any directory
    typed = qvdoctor("build-image", "--cc", "7.5", "--driver", "550.127.05", "--dry-run", env=DEAD)
    assert by_name.returncode == 0, by_name.stderr
    assert by_name.stdout == typed.stdout
    assert "# Rendered by qvdoctor: qvdoctor build-image --cc 7.5 --driver 550.127.05" in by_name.stdout
    assert "target from t4.json" in by_name.stderr and "cc 7.5, driver 550.127.05 (runs CUDA up to 12.4)" in by_name.stderr
    # Without the driver the default image would need a newer one; the snapshot's keeps CUDA at 12.4.
    assert "CUDA 12.4" in by_name.stdout


def test_facts_file_saved_on_another_machine(qvdoctor, tmp_path):
    snap = json.loads(T4.read_text())
    snap["nvidia"]["driver_version"] = "535.104.05"
    snap["nvidia"]["cuda_driver_version"] = "12.2"
    f = tmp_path / "target.json"
    f.write_text(json.dumps(snap))
    r = qvdoctor("build-image", "--facts", str(f), "--dry-run", env=DEAD)
    assert r.returncode == 0, r.stderr
    assert "qvdoctor build-image --cc 7.5 --driver 535.104.05" in r.stdout
    typed = qvdoctor("build-image", "--cc", "7.5", "--driver", "535.104.05", "--dry-run", env=DEAD)
    assert r.stdout == typed.stdout


def test_explicit_cc_wins_over_the_snapshot(qvdoctor):
    r = qvdoctor("build-image", "--facts", "t4", "--cc", "8.6", "--dry-run", env=DEAD)
    assert r.returncode == 0, r.stderr
    assert "qvdoctor build-image --cc 8.6 --driver 550.127.05" in r.stdout


def test_mixed_gpus_and_unknown_names_are_refused_in_one_line(qvdoctor, tmp_path):
    snap = json.loads(T4.read_text())
    other = dict(snap["nvidia"]["gpus"][0], index=1, name="NVIDIA A10", cc="8.6")
    snap["nvidia"]["gpus"].append(other)
    f = tmp_path / "mixed.json"
    f.write_text(json.dumps(snap))
    r = qvdoctor("build-image", "--facts", str(f), "--dry-run", env=DEAD)
    assert r.returncode == 3
    assert r.stderr.splitlines() == [f"error: {f} lists GPUs of compute capability 7.5 and 8.6: one image serves one",
                                     "hint: pass --cc with the one to build for (7.5, 8.6)"]
    r = qvdoctor("build-image", "--facts", "t5", "--dry-run", env=DEAD)
    assert r.returncode == 3 and r.stderr.startswith("error: facts file not found: t5\nhint: pass a snapshot file, or one of the shipped machines: a10,")
    r = qvdoctor("build-image", "--dry-run", env=DEAD)
    assert r.returncode == 3 and "pass --facts FILE|NAME" in r.stderr
