"""``qvdoctor diagnose`` on every shipped snapshot, on this machine, and on bad input."""

from __future__ import annotations

import json

import pytest

from conftest import MACHINES, run_qvdoctor

# snapshot -> (failing/warning finding ids, combined flags, combined env, exit code)
EXPECTED = {
    "t4": ({"no-kernel-image", "bf16-needs-cc80", "v1-engine-pre-ampere"}, {"dtype": "float16"}, {"VLLM_USE_V1": "0"}, 2),
    "rtx2080ti": ({"bf16-needs-cc80", "v1-engine-pre-ampere"}, {"dtype": "float16"}, {"VLLM_USE_V1": "0"}, 2),
    "titan-rtx": ({"bf16-needs-cc80", "vit-attention-pre-ampere"}, {"dtype": "float16", "mm_encoder_attn_backend": "TORCH_SDPA"}, {}, 2),
    # V0 (VLLM_USE_V1=0) would need xformers, which has no sm_70 here: no env fix is offered
    "v100": ({"bf16-needs-cc80", "v1-engine-pre-ampere", "xformers-no-kernels-for-gpu", "flash-attn-needs-ampere"}, {"dtype": "float16"}, {}, 2),
    "a10": (set(), {}, {}, 0),
    "l4": (set(), {}, {}, 0),
    "rtx4090": (set(), {}, {}, 0),
    "a100-x4-docker": ({"shm-too-small"}, {}, {"NCCL_SHM_DISABLE": "1"}, 2),
    "h100": (set(), {}, {}, 0),
    "h200": (set(), {}, {}, 0),  # recorded on the real H200
    "h100-vllm026": (set(), {}, {}, 0),  # recorded on the GPU host with vLLM 0.26.0 (tests/logs/real/gpu)
}


def test_every_shipped_snapshot_has_an_expectation():
    assert {p.stem for p in MACHINES.glob("*.json")} >= set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_snapshot_findings(name):
    ids, flags, env, code = EXPECTED[name]
    result = run_qvdoctor("diagnose", "--facts", str(MACHINES / f"{name}.json"), "--json")
    assert result.returncode == code, result.stderr
    data = result.json()
    bad = {f["id"] for f in data["findings"] if f["status"] in ("fail", "warn")}
    assert bad == ids
    assert data["patch"]["flags"] == flags
    assert data["patch"]["env"] == env
    assert not [f for f in data["findings"] if f["id"] == "qvdoctor-check-error"]
    for f in data["findings"]:
        assert set(f) >= {"id", "family", "status", "cause", "fix", "evidence"}
        if f["status"] in ("fail", "warn"):
            assert f["cause"] and f["fix"] and f["evidence"], f["id"]


def test_t4_without_sm75_names_the_library_arch_and_fix():
    data = run_qvdoctor("diagnose", "--facts", str(MACHINES / "t4.json"), "--json").json()
    (finding,) = [f for f in data["findings"] if f["id"] == "no-kernel-image" and f["status"] == "fail"]
    assert "libtorch_cuda.so" in finding["subject"]
    assert "7.5" in finding["title"] and "sm_80, sm_86, sm_90" in finding["cause"]
    assert "qvdoctor build-image --cc 7.5" in finding["fix"]
    # vLLM's own kernels carry sm_75: no finding for them
    assert "_C.abi3.so" not in finding["subject"]


def test_v100_report_says_float16_and_no_flashattention():
    result = run_qvdoctor("diagnose", "--facts", str(MACHINES / "v100.json"))
    assert result.returncode == 2
    assert "--dtype float16" in result.stdout
    assert "FlashAttention cannot run on Tesla V100" in result.stdout
    # the V0 engine (VLLM_USE_V1=0) needs xformers, which has no sm_70 here: it is not prescribed
    assert "Nothing fits" in result.stdout and "VLLM_USE_V1=0 " not in result.stdout


def test_h100_is_clean_in_text():
    result = run_qvdoctor("diagnose", "--facts", str(MACHINES / "h100.json"))
    assert result.returncode == 0
    assert "0 failing, 0 warnings" in result.stdout
    assert "✖" not in result.stdout


def test_this_machine_without_gpu_is_a_clean_report(tmp_path):
    result = run_qvdoctor("diagnose", "--json", "--save-facts", str(tmp_path / "me.json"))
    assert result.returncode in (0, 1), result.stderr
    data = result.json()
    if not data["facts"]["nvidia"]["gpus"]:
        assert result.returncode == 0
        (gpu,) = [f for f in data["findings"] if f["id"] == "no-nvidia-gpu"]
        assert gpu["status"] == "info"
    saved = json.loads((tmp_path / "me.json").read_text())
    assert saved["provenance"] == "live"
    again = run_qvdoctor("diagnose", "--facts", str(tmp_path / "me.json"), "--json")
    assert [f["id"] for f in again.json()["findings"]] == [f["id"] for f in data["findings"]]


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "facts file not found"),
        ("{not json", "is not valid JSON"),
        ('{"hello": 1}', "is not a qvdoctor facts snapshot"),
        ('{"label": "x", "provenance": "live", "nvidia": {"gpus": [{"index": 0}]}}', "is malformed"),
    ],
)
def test_bad_facts_file_is_one_line_error(tmp_path, content, message):
    path = tmp_path / "facts.json"
    if content is not None:
        path.write_text(content)
    result = run_qvdoctor("diagnose", "--facts", str(path))
    assert result.returncode == 3
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")


def test_unknown_option_is_one_line_error():
    result = run_qvdoctor("diagnose", "--no-such-option")
    assert result.returncode == 3
    assert result.stderr.splitlines()[0].startswith("error: No such option")
    assert "Traceback" not in result.stderr


def test_this_machines_torch_libraries_on_a_t4_and_a_v100(tmp_path):
    """The real torch wheel installed here, read by the kernel reader, judged for cc 7.5 and 7.0."""
    from qvdoctor.facts import gather, load_facts

    live = gather()
    if not any(lib.path.endswith("libtorch_cuda.so") for lib in live.libraries):
        pytest.skip("no CUDA build of torch installed here")
    for name, cc, critical in (("t4", "7.5", False), ("v100", "7.0", True)):
        spec = load_facts(MACHINES / f"{name}.json")
        live.nvidia = spec.nvidia
        live.save(tmp_path / f"{name}.json")
        data = run_qvdoctor("diagnose", "--facts", str(tmp_path / f"{name}.json"), "--json").json()
        failing = [f for f in data["findings"] if f["id"] == "no-kernel-image" and f["status"] == "fail"]
        assert bool(failing) == critical, (name, failing)
        optional = {f["subject"].rsplit("/", 1)[-1] for f in data["findings"] if f["id"] == "optional-library-no-kernel"}
        if name == "t4":  # torch 2.13's linalg library has no sm_75; serving does not load it
            assert "libtorch_cuda_linalg.so" in optional


def test_recorded_h200_report_sm90_everywhere_and_bf16_fine():
    data = run_qvdoctor("diagnose", "--facts", str(MACHINES / "h200.json"), "--json").json()
    assert data["facts"]["provenance"] == "recorded"
    assert data["facts"]["nvidia"]["gpus"][0]["cc"] == "9.0"
    assert all("sm_90" in lib["sass"] for lib in data["facts"]["libraries"])
    status = {f["id"]: f["status"] for f in data["findings"]}
    assert status["bf16-needs-cc80"] == "ok" and status["no-kernel-image"] == "ok"
    assert status["torch-import-fails"] == "ok"


def test_attention_backend_fix_takes_the_installed_release_form(tmp_path):
    """The Titan RTX snapshot (vLLM 0.20) with VLLM_ATTENTION_BACKEND=FLASH_ATTN exported: vLLM >= 0.13 selects the
    backend with --attention-config, so the fix text, the patch and the launch all say the flag, not the variable."""
    facts = json.loads((MACHINES / "titan-rtx.json").read_text())
    facts["system"]["env"] = {"VLLM_ATTENTION_BACKEND": "FLASH_ATTN"}
    path = tmp_path / "titan-rtx-flash-attn-env.json"
    path.write_text(json.dumps(facts))
    data = run_qvdoctor("diagnose", "--facts", str(path), "--json").json()
    (finding,) = [f for f in data["findings"] if f["id"] == "flash-attn-needs-ampere"]
    assert """--attention-config '{"backend":"TRITON_ATTN"}'""" in finding["fix"]
    assert data["patch"]["flags"]["attention_config"] == {"backend": "TRITON_ATTN"}
    assert "VLLM_ATTENTION_BACKEND" not in data["patch"]["env"]
    assert "VLLM_ATTENTION_BACKEND" not in data["launch"]["command"]
    assert """--attention-config '{"backend":"TRITON_ATTN"}'""" in data["launch"]["command"]
