"""build-image and inspect-image against the real Docker engine (no network, local base image).

Stand-in wheels carry nvcc-built libraries with sm_75 kernels (and vLLM's FlashAttention
library with sm_80 only, as upstream ships it) where torch / vLLM / xformers keep theirs; the
build goes through the real templates, `pip --no-index` from the wheelhouse and the verify stage."""

from __future__ import annotations

import io
import tarfile

import pytest

from qvdoctor.image.inspect import inspect_image
from qvdoctor.image.resolve import resolve

from .conftest import ROOT
from .standins import cuobjdump_archs, cuobjdump_path, make_wheelhouse

pytestmark = [pytest.mark.docker, pytest.mark.nvcc]

PIN = ["--cuda", "11.8", "--vllm", "0.8.5", "--python", "3.11"]  # the test base image has CPython 3.11
TAG75, TAG86 = "qvdoctor-test/vllm:sm75-ok", "qvdoctor-test/vllm:sm86-should-fail"


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory, standin_libs):
    plan = resolve("7.5", cuda="11.8", vllm="0.8.5", python="3.11")
    specs = [plan.torch_spec, f"vllm=={plan.vllm}+cu118", *plan.extra_specs]
    return make_wheelhouse(tmp_path_factory.mktemp("wheelhouse"), specs, standin_libs["sm75"], standin_libs["fa"])


@pytest.fixture(scope="module")
def built75(qvdoctor_module, base_image, wheelhouse, docker_client):
    result = qvdoctor_module("build-image", "--cc", "7.5", *PIN, "--base", base_image, "--wheelhouse", str(wheelhouse), "--tag", TAG75)
    yield result
    try:
        docker_client.images.remove(TAG75, force=True)
    except Exception:
        pass


@pytest.fixture(scope="module")
def qvdoctor_module():
    from tests.conftest import run_qvdoctor

    return run_qvdoctor


def test_sm75_image_builds_and_passes_verification_for_cc75(built75, docker_client):
    assert built75.returncode == 0, built75.stderr[-3000:]
    assert "qvdoctor verify: OK: 5 CUDA libraries carry kernels for cc 7.5" in built75.stderr
    assert f"built {TAG75}" in built75.stdout
    labels = docker_client.images.get(TAG75).labels
    assert labels["io.qvdoctor.cc"] == "7.5" and labels["io.qvdoctor.cuda"] == "11.8" and labels["io.qvdoctor.vllm"] == "0.8.5"
    config = docker_client.images.get(TAG75).attrs["Config"]
    assert "QVDOCTOR_SERVE_ARGS=--dtype half" in config["Env"] and "VLLM_WORKER_MULTIPROC_METHOD=spawn" in config["Env"]


def test_same_build_for_cc86_fails_verification_with_the_reason(built75, qvdoctor_module, base_image, wheelhouse, docker_client):
    result = qvdoctor_module("build-image", "--cc", "8.6", *PIN, "--base", base_image, "--wheelhouse", str(wheelhouse), "--tag", TAG86)
    assert result.returncode == 2, result.stderr[-3000:]
    error = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert error == [
        "error: verification failed: the image has no kernel image for cc 8.6: torch/lib/libtorch_cuda.so: "
        "no SASS for sm_86 (has sm_75) and no PTX at or below compute_86 (has none) (and 3 more)"
    ]
    assert "Traceback" not in result.stderr
    assert not docker_client.images.list(name=TAG86)  # nothing tagged


def _files_from_image(client, tag: str, paths: list[str], dest):
    """Copy files out of a created (never started) container, independently of inspect-image."""
    container = client.containers.create(tag, network_mode="none")
    try:
        out = {}
        for path in paths:
            stream, _ = container.get_archive(path)
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                member = tar.getmembers()[0]
                target = dest / path.strip("/").replace("/", "__")
                target.write_bytes(tar.extractfile(member).read())
                out[path] = target
        return out
    finally:
        container.remove(force=True)


def test_inspect_image_reports_what_cuobjdump_reads_inside_the_image(built75, docker_client, tmp_path):
    assert built75.returncode == 0
    cuobjdump = cuobjdump_path()
    if cuobjdump is None:
        pytest.skip("cuobjdump not found (it ships in the PyPI triton package)")
    libraries = inspect_image(TAG75, docker_client)
    assert sorted(lib.package for lib in libraries) == ["torch", "vllm", "vllm", "vllm", "xformers"]
    files = _files_from_image(docker_client, TAG75, [lib.path for lib in libraries], tmp_path)
    for lib in libraries:
        assert (lib.sass, lib.ptx) == cuobjdump_archs(cuobjdump, files[lib.path]), lib.path
        assert lib.size == files[lib.path].stat().st_size and lib.error is None
    by_path = {lib.path.split("site-packages/")[1]: lib.sass for lib in libraries}
    assert by_path["vllm/vllm_flash_attn/_vllm_fa2_C.abi3.so"] == ["sm_80"] and by_path["torch/lib/libtorch_cuda.so"] == ["sm_75"]


def test_inspect_image_exit_codes(built75, qvdoctor_module):
    assert built75.returncode == 0
    ok = qvdoctor_module("inspect-image", TAG75, "--cc", "7.5")
    assert ok.returncode == 0, ok.stderr
    assert "runs on cc 7.5" in ok.stdout and "built for cc 7.5" in ok.stdout
    bad = qvdoctor_module("inspect-image", TAG75, "--cc", "8.6", "--json")
    assert bad.returncode == 2
    data = bad.json()
    assert data["runs_on"] is False and data["built_for_cc"] == "7.5"
    assert "torch/lib/libtorch_cuda.so: no SASS for sm_86 (has sm_75) and no PTX at or below compute_86 (has none)" in data["failures"]
    listed = qvdoctor_module("inspect-image", TAG75)
    assert listed.returncode == 0 and "libtorch_cuda.so" in listed.stdout
    missing = qvdoctor_module("inspect-image", "qvdoctor-test/no-such-image:1", "--cc", "7.5")
    assert missing.returncode == 3 and missing.stderr.startswith("error: no image 'qvdoctor-test/no-such-image:1'")


def test_inspect_image_applies_later_layers(built75, docker_client, tmp_path, standin_libs):
    """A later layer that deletes one library and replaces another (sm_80) is what inspect sees."""
    assert built75.returncode == 0
    site = "/opt/venv/lib/python3.11/site-packages"
    (tmp_path / "fa.so").write_bytes(standin_libs["fa"].read_bytes())
    (tmp_path / "Dockerfile").write_text(
        f"FROM {TAG75}\nRUN rm {site}/vllm/_moe_C.abi3.so\nCOPY fa.so {site}/xformers/_C.so\n"
    )
    tag = "qvdoctor-test/vllm:derived"
    docker_client.images.build(path=str(tmp_path), tag=tag, network_mode="none", rm=True)
    try:
        found = {lib.path.split("site-packages/")[1]: lib.sass for lib in inspect_image(tag, docker_client)}
        assert "vllm/_moe_C.abi3.so" not in found
        assert found["xformers/_C.so"] == ["sm_80"] and found["vllm/_C.abi3.so"] == ["sm_75"]
    finally:
        docker_client.images.remove(tag, force=True)


def test_diagnose_image_judges_the_images_libraries(built75, qvdoctor_module):
    """`diagnose --image` reads the image's libraries: fine for a T4 (cc 7.5), no kernel image for an A10 (cc 8.6)."""
    machines = ROOT / "qvdoctor" / "data" / "machines"
    t4 = qvdoctor_module("diagnose", "--image", TAG75, "--facts", str(machines / "t4.json"), "--json").json()
    assert {f["status"] for f in t4["findings"] if f["id"] == "no-kernel-image"} == {"ok"}
    assert all(lib["sass"] == ["sm_75"] for lib in t4["facts"]["libraries"] if "flash_attn" not in lib["path"])
    a10 = qvdoctor_module("diagnose", "--image", TAG75, "--facts", str(machines / "a10.json"), "--json")
    assert a10.returncode == 2
    failing = [f for f in a10.json()["findings"] if f["id"] == "no-kernel-image" and f["status"] == "fail"]
    assert {f["subject"].rsplit("/", 1)[-1] for f in failing} >= {"libtorch_cuda.so", "_C.abi3.so"}
