"""The verify stage's checker on its own: stdlib only, real nvcc-built libraries."""

from __future__ import annotations

import json
import subprocess
import sys

from qvdoctor.image.render import make_context, render_dockerfile, verify_policy
from qvdoctor.image.resolve import resolve


def _site(tmp_path, libs):
    site = tmp_path / "site-packages"
    for rel, src in {
        "torch/lib/libtorch_cuda.so": libs["sm75"],
        "vllm/_C.abi3.so": libs["sm75"],
        "vllm/vllm_flash_attn/_vllm_fa2_C.abi3.so": libs["fa"],
        "torchvision/_C.so": libs["fa"],  # not a package the serving path needs: ignored
    }.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_bytes(src.read_bytes())
    return site


def _run_isolated(tmp_path, site, cc):
    """Run the copy that goes into the build context, with -I (no site, no PYTHONPATH from env)."""
    plan = resolve("7.5", cuda="11.8")
    ctx = make_context(plan, tmp_path / "ctx", render_dockerfile(plan))
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from qvdoctor.image.verify import main; "
        "sys.exit(main(sys.argv[2:]))"
    )
    report = tmp_path / f"report-{cc}.json"
    proc = subprocess.run(
        [sys.executable, "-I", "-c", code, str(ctx / "qvdoctor-verify"), "--cc", cc,
         "--policy", str(ctx / "qvdoctor-verify" / "policy.json"), "--report", str(report), str(site)],
        capture_output=True, text=True,
    )
    return proc, json.loads(report.read_text())


def test_verify_passes_on_the_cc_the_libraries_carry(tmp_path, standin_libs):
    proc, report = _run_isolated(tmp_path, _site(tmp_path, standin_libs), "7.5")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report["ok"] and [lib["path"] for lib in report["libraries"]] == [
        "torch/lib/libtorch_cuda.so", "vllm/_C.abi3.so", "vllm/vllm_flash_attn/_vllm_fa2_C.abi3.so"]
    fa = report["libraries"][2]
    assert fa["runs"] is False and "FlashAttention" in fa["optional"]  # sm_80 only: fine below 8.0
    assert "qvdoctor verify: OK" in proc.stdout


def test_verify_fails_with_the_reason_elsewhere(tmp_path, standin_libs):
    proc, report = _run_isolated(tmp_path, _site(tmp_path, standin_libs), "8.6")
    assert proc.returncode == 2
    assert "qvdoctor verify: FAIL for cc 8.6: torch/lib/libtorch_cuda.so: no SASS for sm_86 (has sm_75)" in proc.stdout
    assert not report["ok"] and len(report["failures"]) == 2  # torch and vLLM; FA's sm_80 runs on 8.6


def test_verify_fails_on_a_cpu_only_stack(tmp_path):
    site = tmp_path / "site-packages"
    (site / "torch" / "lib").mkdir(parents=True)
    (site / "torch" / "lib" / "libtorch_cpu.so").write_bytes(b"\x7fELF" + b"\0" * 60)
    proc, report = _run_isolated(tmp_path, site, "7.5")
    assert proc.returncode == 2
    assert "torch: no library with CUDA kernels found" in proc.stdout
    assert verify_policy()["must_have_kernels"] == ["torch", "vllm"]
