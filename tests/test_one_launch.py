"""One launch, one truth: each way a prescription went wrong for a new user, as a test.

Every case here failed on the main branch before the launch pipeline (qvdoctor.prescription)
existed; the comment above each names what the user saw then."""

from __future__ import annotations

import json
import re
import shlex
import shutil

import pytest

from conftest import MACHINES, ROOT, run_qvdoctor

FIXTURES = ROOT / "tests" / "plan" / "fixtures"
M3 = str(FIXTURES / "qwen2.5-vl-3b-instruct")
M7 = str(FIXTURES / "qwen2.5-vl-7b-instruct")
Q2VL = str(FIXTURES / "qwen2-vl-2b-instruct")
AWQ = str(FIXTURES / "qwen2.5-vl-72b-instruct-awq")
EXAMPLES = ROOT / "tests" / "logs" / "examples"


def launch_line(stdout: str) -> str:
    """The one line of the output that holds ``vllm serve``."""
    (line,) = [ln for ln in stdout.splitlines() if " vllm serve " in f" {ln}"]
    return line


def flag_value(words: list[str], flag: str) -> str:
    return words[words.index(flag) + 1]


# Before: the JSON values were printed unquoted (split into words by bash), and in a pipe the
# line was hard-wrapped so a flag and its value landed on different lines.
def test_plan_launch_is_one_shell_line_in_a_pipe_with_json_values_quoted():
    r = run_qvdoctor("plan", "--model", M7, "--facts", "a10", "--video-seconds", "60", "--video-size", "1920x1080",
                     env={"COLUMNS": "80"})
    assert r.returncode == 0, r.stderr
    words = shlex.split(launch_line(r.stdout))
    assert json.loads(flag_value(words, "--limit-mm-per-prompt")) == {"image": 0, "video": 1}
    assert json.loads(flag_value(words, "--mm-processor-kwargs"))["max_pixels"] > 0
    assert not [ln for ln in r.stdout.splitlines() if ln.lstrip().startswith("--")]  # no flag wrapped onto its own line


def test_diagnose_fix_is_the_same_launch_line():
    r = run_qvdoctor("diagnose", "--facts", "titan-rtx", env={"COLUMNS": "80"})
    words = shlex.split(launch_line(r.stdout))
    assert words[:2] == ["VLLM_WORKER_MULTIPROC_METHOD=spawn", "vllm"]
    assert flag_value(words, "--dtype") == "float16" and flag_value(words, "--mm-encoder-attn-backend") == "TORCH_SDPA"
    data = run_qvdoctor("diagnose", "--facts", "titan-rtx", "--json").json()
    assert shlex.split(data["launch"]["command"]) == [f"{k}={v}" for k, v in data["launch"]["env"].items()] + data["launch"]["argv"]


# Before: "heads (28) must be divisible by tensor parallel size (8)" -> "Use --tensor-parallel-size 7"
# (the 7B splits only over 1, 2 and 4); Qwen2-VL-2B with 8 GPUs was offered 6.
@pytest.mark.parametrize("model, heads, valid", [(M7, 28, 4), (Q2VL, 12, 4)])
def test_triage_tp_fix_is_one_the_model_can_split(tmp_path, model, heads, valid):
    log = tmp_path / "tp8.log"
    text = (EXAMPLES / "tp-heads-not-divisible.log").read_text()
    log.write_text(text.replace("tensor_parallel_size=3", "tensor_parallel_size=8")
                   .replace("(28) must be divisible by tensor parallel size (3)", f"({heads}) must be divisible by tensor parallel size (8)"))
    r = run_qvdoctor("diagnose", "--log", str(log), "--model", model, "--json")
    root = r.json()["findings"][0]
    assert r.returncode == 2 and root["role"] == "root"
    assert root["patch"]["flags"]["tensor_parallel_size"] == valid
    assert "--tensor-parallel-size 7" not in root["fix"] and "--tensor-parallel-size 6" not in root["fix"]


def test_smoke_retry_applies_the_model_checked_tp(monkeypatch, tmp_path):
    """smoke's loop takes the same model-checked TP, not the log's arithmetic."""
    from qvdoctor.consistency import repair
    from qvdoctor.launch import Launch
    from qvdoctor.model.info import load_model_info
    from qvdoctor.smoke import attempts as loop_mod
    from qvdoctor.smoke.backends import Outcome, SmokeInput
    from qvdoctor.smoke.session import make_triage

    info = load_model_info(M7)
    log = tmp_path / "tp8.log"
    log.write_text((EXAMPLES / "tp-heads-not-divisible.log").read_text().replace("tensor parallel size (3)", "tensor parallel size (8)"))
    tried: list[Launch] = []

    def attempt(backend, inp, launch, attempt_dir, on_line=None):
        tried.append(launch)
        attempt_dir.mkdir(parents=True)
        kept = attempt_dir / "engine.log"
        if len(tried) == 1:
            shutil.copy(log, kept)
            return Outcome(False, str(kept), 1.0, 1, error="exit 1")
        kept.write_text("done\n")
        return Outcome(True, str(kept), 1.0, 0, result={"text": "ok"})

    monkeypatch.setattr(loop_mod, "run_attempt", attempt)
    inp = SmokeInput(model="m", prompt="p", frames_path="x.npy", metadata={}, num_videos=1)
    result = loop_mod.run_loop("vllm", inp, Launch({"tensor_parallel_size": 8}), tmp_path, make_triage(None, info, 1),
                               consistent=lambda lx: repair(lx, info, None))
    assert result.ok and tried[1].flags["tensor_parallel_size"] == 4
    assert "valid sizes: 1, 2, 4" in result.attempts[0].patch_applied["fix"]


# Before: diagnose printed raw expression source as the fix ({join([('--' + k.replace(...
@pytest.mark.parametrize("name", sorted(p.stem for p in MACHINES.glob("*.json")))
def test_no_fix_shows_expression_source(name):
    for args in ((), ("--json",)):
        out = run_qvdoctor("diagnose", "--facts", name, *args).stdout
        assert not re.search(r"\{[^{}\n]*\(|for k in|pre_ampere\(|\{join", out.replace('{"', "")), out[:2000]


# Before: "xformers has no sm_70 kernels", then "vLLM will pick XFORMERS", then the combined fix
# VLLM_USE_V1=0 (the xformers path): following it failed.
def test_v100_is_not_sent_down_the_xformers_path():
    data = run_qvdoctor("diagnose", "--facts", "v100", "--json").json()
    assert "VLLM_USE_V1" not in data["patch"]["env"]
    assert data["launch"] is None and any("xformers" in w for w in data["nothing_fits"])
    assert not [f for f in data["findings"] if f["id"] == "vit-attention-pre-ampere" and "XFORMERS" in f["title"]]


# Before: plan accepted launches vLLM refuses, exit 0.
def test_plan_never_emits_a_length_above_the_models_limit():
    d = run_qvdoctor("plan", "--model", M7, "--facts", "h100", "--max-model-len", "200000", "--json").json()
    assert d["recommended_flags"]["max_model_len"] <= 128000
    assert any("max_model_len 200000 -> 128000" in c for c in d["changes"])


def test_plan_never_assumes_gpus_the_machine_does_not_have():
    r = run_qvdoctor("plan", "--model", M7, "--facts", str(FIXTURES / "a100-40gb.json"), "--tp", "8", "--json")
    d = r.json()
    assert d["recommended_flags"]["tensor_parallel_size"] == 1 and d["gpus"] == 1
    assert not [n for n in d["notes"] if "assumed identical" in n]


def test_qwen2_vl_is_planned_with_its_own_vision_tower():
    d = run_qvdoctor("plan", "--model", Q2VL, "--facts", "a10", "--json").json()
    assert d["model"]["vision"]["intermediate_size"] == 5120 and d["model"]["vision"]["hidden_size"] == 1280
    assert d["valid_tensor_parallel_sizes"] == [1, 2, 4]


def test_a_llama_config_is_refused_not_planned_as_qwen():
    r = run_qvdoctor("plan", "--model", str(FIXTURES / "llama-3.1-8b-instruct"), "--facts", "h100")
    assert r.returncode == 3 and "LlamaForCausalLM" in r.stderr and "Traceback" not in r.stderr


# Before: --tp 3 came back as "recommended --tensor-parallel-size 3", then a combined fix of TP 2.
def test_the_recommendation_never_repeats_the_failing_request():
    d = run_qvdoctor("plan", "--model", M7, "--facts", "h100", "--gpus", "4", "--tp", "3", "--json").json()
    assert d["recommended_flags"]["tensor_parallel_size"] == 2
    assert not [f for f in d["findings"] if f["status"] == "fail"]
    assert any("tensor parallel 3 -> 2" in c for c in d["changes"])


# Before: 72B-AWQ on one T4 was recommended --max-model-len 8192 though the weights alone are 28 GiB over.
def test_a_model_that_cannot_fit_gets_nothing_fits_not_a_launch():
    r = run_qvdoctor("plan", "--model", AWQ, "--facts", "titan-rtx")
    assert r.returncode == 2 and "Nothing fits" in r.stdout and "no-memory-for-kv-cache" in r.stdout
    assert "Launch (" not in r.stdout
    assert run_qvdoctor("plan", "--model", AWQ, "--facts", "titan-rtx", "--json").json()["launch"] is None


# Before: a 600 s 1080p video got a combined fix raising max_pixels above the recommendation and
# three different length limits.
def test_a_long_video_gets_one_length_and_a_max_pixels_that_fits():
    d = run_qvdoctor("plan", "--model", M7, "--facts", "a10", "--video-seconds", "600", "--video-size", "1920x1080", "--json").json()
    flags = d["recommended_flags"]
    assert d["launch"] is not None and d["fits"]
    assert flags["mm_processor_kwargs"]["max_pixels"] <= 644 * 336  # never above the first recommendation
    assert d["video_tokens"]["qwen_vl_utils"]["tokens"] + 2 <= flags["max_model_len"] <= d["max_model_len_fit"]
    assert [f["status"] for f in d["findings"] if f["id"] == "video-exceeds-context"] == ["fixed"]
    assert d["launch"]["argv"].count("--max-model-len") == 1


# Before: plan picked float16 and "fit", yet exited 2 because "bfloat16 on the GPU" failed, and
# on vLLM 0.8-0.10.1 it left out the VLLM_USE_V1=0 that diagnose required.
def test_plan_on_a_pre_ampere_gpu_exits_0_with_the_launch_that_runs():
    r = run_qvdoctor("plan", "--model", M3, "--facts", "rtx2080ti", "--json")
    d = r.json()
    assert r.returncode == 0, d["nothing_fits"]
    assert d["launch"]["env"]["VLLM_USE_V1"] == "0" and d["recommended_flags"]["dtype"] == "float16"
    assert {f["id"] for f in d["findings"] if f["status"] == "fixed"} >= {"v1-engine-pre-ampere"}


def test_emitted_files_are_the_printed_launch(tmp_path):
    sh, yml = tmp_path / "serve.sh", tmp_path / "serve.yaml"
    d = run_qvdoctor("plan", "--model", M3, "--facts", "a10", "--emit-serve-cmd", str(sh), "--emit-config", str(yml), "--json").json()
    assert sh.read_text().splitlines()[-1] == d["launch"]["command"] and sh.stat().st_mode & 0o111
    import yaml

    assert yaml.safe_load(yml.read_text())["max-model-len"] == d["recommended_flags"]["max_model_len"]


# Before: smoke's emitted serve command kept the test clip's image:0 and its exact max_pixels.
def test_smoke_production_launch_drops_the_clips_limits():
    from qvdoctor.launch import Launch
    from qvdoctor.model.info import load_model_info
    from qvdoctor.smoke.session import production_launch

    info = load_model_info(M3)
    verified = Launch({"tensor_parallel_size": 1, "dtype": "bfloat16", "max_model_len": 8192, "kv_cache_memory_bytes": 2 << 30,
                       "limit_mm_per_prompt": {"image": 0, "video": 1}, "mm_processor_kwargs": {"max_pixels": 109760},
                       "enforce_eager": True}, {"VLLM_WORKER_MULTIPROC_METHOD": "spawn"}, model="Qwen/Qwen2.5-VL-3B-Instruct")
    production, changes = production_launch(verified, info, None, "cpu")
    assert "limit_mm_per_prompt" not in production.flags and "mm_processor_kwargs" not in production.flags
    assert production.flags["max_model_len"] == 8192 and production.model == "Qwen/Qwen2.5-VL-3B-Instruct"
    assert any("dropped --limit-mm-per-prompt" in c for c in changes)


def test_every_package_imports_without_torch_vllm_or_ray():
    import subprocess
    import sys

    packages = sorted({p.parent.relative_to(ROOT).as_posix().replace("/", ".") for p in (ROOT / "qvdoctor").rglob("__init__.py")})
    code = ("import sys, importlib\n"
            f"for name in {packages!r}: importlib.import_module(name)\n"
            "import qvdoctor.launch, qvdoctor.prescription, qvdoctor.consistency\n"
            "heavy = [m for m in ('torch', 'vllm', 'ray', 'transformers', 'numpy', 'av') if m in sys.modules]\n"
            "print(len(" + repr(packages) + "), heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("[]"), out.stdout


def test_triage_reads_the_model_the_logs_engine_config_names(tmp_path):
    """Without --model, the model path in the log's engine config line is read when it is local."""
    log = tmp_path / "tp8.log"
    log.write_text((EXAMPLES / "tp-heads-not-divisible.log").read_text()
                   .replace("Qwen/Qwen2.5-VL-7B-Instruct", M7).replace("tensor_parallel_size=3", "tensor_parallel_size=8")
                   .replace("tensor parallel size (3)", "tensor parallel size (8)"))
    root = run_qvdoctor("diagnose", "--log", str(log), "--json").json()["findings"][0]
    assert root["patch"]["flags"]["tensor_parallel_size"] == 4 and "valid sizes: 1, 2, 4" in root["fix"]
