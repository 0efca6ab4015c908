"""Turn a resolved plan into a Dockerfile, its build args and a build context directory.

Templates live in ``dockerfiles/`` (``vllm-wheels.Dockerfile``, ``vllm-source.Dockerfile`` and
shared ``parts/``). ``{{NAME}}`` placeholders take the plan's values, which become the ARG
defaults, so a rendered Dockerfile builds the same image with a plain ``docker build``; the
build args passed by ``build-image`` carry the same values plus the user's overrides."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from qvdoctor.errors import QvError
from qvdoctor.image.matrix import load
from qvdoctor.image.resolve import BuildPlan

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # qvdoctor/
TEMPLATE_DIRS = (PACKAGE_DIR / "_dockerfiles", PACKAGE_DIR.parent / "dockerfiles")  # installed wheel, source tree
MAX_JOBS, NVCC_THREADS = 4, 2
LABEL_PREFIX = "io.qvdoctor."
# What the verify stage needs of qvdoctor: the kernel reader and the verify module (stdlib only).
VERIFY_FILES = ("__init__.py", "kernels/*.py", "image/__init__.py", "image/verify.py")

_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")
_INCLUDE = re.compile(r"^# @include (\S+)\s*$", re.M)


def template_dir() -> Path:
    for candidate in TEMPLATE_DIRS:
        if (candidate / "vllm-wheels.Dockerfile").is_file():
            return candidate
    raise QvError("the Dockerfile templates are missing from this qvdoctor installation", hint="reinstall qvdoctor")


def build_args(plan: BuildPlan) -> dict[str, str]:
    """The ARGs of the rendered Dockerfile, with the plan's values."""
    args = {
        "BASE_IMAGE": plan.base_image,
        "PYTHON_VERSION": plan.python,
        "PIP_INDEX_ARGS": plan.pip_index_args,
        "TORCH_SPEC": plan.torch_spec,
        "EXTRA_SPECS": " ".join(plan.extra_specs),
        "CC": plan.cc,
    }
    if plan.path == "wheels":
        args["VLLM_SPEC"] = plan.vllm_spec
    else:
        args.update(
            BUILD_BASE_IMAGE=plan.build_base_image or plan.base_image,
            TORCH_CUDA_ARCH_LIST=plan.arch_list,
            MAX_JOBS=str(MAX_JOBS),
            NVCC_THREADS=str(NVCC_THREADS),
            VLLM_VERSION=plan.vllm,
            VLLM_REPO=load().indexes["vllm_repo"],
            XFORMERS_FROM_SOURCE="1" if plan.xformers_from_source else "0",
            XFORMERS_VERSION=plan.xformers or "",
        )
    return args


def offline_args(plan: BuildPlan) -> dict[str, str]:
    """Build-arg overrides that install everything from the context's wheelhouse, no index."""
    args = {"PIP_INDEX_ARGS": "--no-index"}
    if plan.path == "wheels" and plan.vllm_spec.startswith("vllm @ "):
        args["VLLM_SPEC"] = f"vllm=={plan.vllm}+cu{plan.cuda.replace('.', '')}"
    return args


def labels(plan: BuildPlan) -> dict[str, str]:
    values = {
        "cc": plan.cc, "cuda": plan.cuda, "path": plan.path, "vllm": plan.vllm,
        "torch": f"{plan.torch}+cu{plan.torch_flavour.replace('.', '')}", "xformers": plan.xformers or "",
        "python": plan.python, "driver-min": plan.driver_min or "", "vllm-archs": plan.vllm_archs,
    }
    return {LABEL_PREFIX + key: value for key, value in values.items()}


def render_dockerfile(plan: BuildPlan, command: str | None = None) -> str:
    root = template_dir()
    name = "vllm-wheels.Dockerfile" if plan.path == "wheels" else "vllm-source.Dockerfile"
    text = _INCLUDE.sub(lambda m: (root / m.group(1)).read_text().rstrip("\n"), (root / name).read_text())
    env = dict(plan.env, QVDOCTOR_SERVE_ARGS=" ".join(plan.serve_args))
    values = dict(build_args(plan))
    values.update(
        HEADER=_header(plan, command),
        ARCH_LIST=plan.arch_list,
        ENV_LINES="ENV " + " \\\n    ".join(f'{k}="{v}"' for k, v in env.items()),
        LABELS=" \\\n      ".join(f'{k}="{v}"' for k, v in labels(plan).items()),
    )
    missing = set(_PLACEHOLDER.findall(text)) - set(values)
    if missing:
        raise QvError(f"template {name} uses unknown placeholders: {', '.join(sorted(missing))}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def _header(plan: BuildPlan, command: str | None) -> str:
    lines = [f"Rendered by qvdoctor: {command}" if command else "Rendered by qvdoctor build-image", "", plan.summary, "", "Why:"]
    lines += [f"  - {r}" for r in plan.reasons]
    lines += ["Serving on this GPU:"] + [f"  - {n}" for n in plan.notes]
    return "\n".join(f"# {line}".rstrip() for line in lines)


def make_context(plan: BuildPlan, dest: Path, dockerfile: str, wheelhouse: Path | None = None) -> Path:
    """Write the build context: Dockerfile, wheelhouse/, and qvdoctor-verify/ (reader + policy)."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "Dockerfile").write_text(dockerfile)
    wheels = dest / "wheelhouse"
    wheels.mkdir(exist_ok=True)
    (wheels / ".keep").write_text("")
    if wheelhouse is not None:
        if not wheelhouse.is_dir():
            raise QvError(f"--wheelhouse {wheelhouse} is not a directory")
        for whl in sorted(wheelhouse.glob("*.whl")):
            shutil.copy2(whl, wheels / whl.name)
    verify = dest / "qvdoctor-verify"
    for pattern in VERIFY_FILES:
        for src in PACKAGE_DIR.glob(pattern):
            target = verify / "qvdoctor" / src.relative_to(PACKAGE_DIR)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    (verify / "policy.json").write_text(json.dumps(verify_policy(), indent=2) + "\n")
    return dest


def verify_policy() -> dict:
    m = load()
    return {
        "packages": list(m.verify_packages),
        "must_have_kernels": list(m.must_have_kernels),
        "optional": [{"glob": o.glob, "below_cc": o.below_cc, "reason": o.reason} for o in m.optional],
    }
