"""The build matrix (``qvdoctor/data/matrix.toml``) as typed rows, and arch-list arithmetic."""

from __future__ import annotations

import functools
from qvdoctor import tomlread as tomllib
from dataclasses import dataclass, field
from pathlib import Path

from qvdoctor.compat import version_key
from qvdoctor.kernels.rules import missing_reason, parse_version

MATRIX_PATH = Path(__file__).resolve().parent.parent / "data" / "matrix.toml"


@dataclass(frozen=True)
class Toolkit:
    cuda: str  # "12.8"
    image: str  # nvidia/cuda tag version, "12.8.1"
    archs: tuple[str, ...]  # what nvcc can compile for, "7.5"
    removed: str | None = None  # why older archs are gone


@dataclass(frozen=True)
class TorchRelease:
    version: str
    python: tuple[str, str]
    pypi_cuda: str
    flavours: dict[str, str]  # CUDA -> TORCH_CUDA_ARCH_LIST


@dataclass(frozen=True)
class VllmRelease:
    version: str
    torch: str
    wheels: tuple[str, ...]  # confirmed wheel CUDAs, PyPI default first
    wheel_archs: str
    cmake_archs: dict[str, str]  # "lt128" / "ge128" / "ge130" -> CUDA_SUPPORTED_ARCHS
    transformers: str
    python: tuple[str, str]
    xformers: str | None = None
    wheels_unconfirmed: tuple[str, ...] = ()

    def cmake_for(self, cuda: str) -> str | None:
        key = "ge130" if version_key(cuda) >= (13, 0) else "ge128" if version_key(cuda) >= (12, 8) else "lt128"
        return self.cmake_archs.get(key)


@dataclass(frozen=True)
class XformersRelease:
    version: str
    torch: str
    flavours: tuple[str, ...]
    archs: str
    archs_cuda12: str = ""
    archs_cuda13: str = ""

    def archs_for(self, cuda: str) -> str:
        extra = self.archs_cuda13 if version_key(cuda) >= (13, 0) else self.archs_cuda12 if version_key(cuda) >= (12, 0) else ""
        return ";".join(part for part in (self.archs, extra) if part)


@dataclass(frozen=True)
class OptionalLibrary:
    glob: str
    below_cc: str
    reason: str


@dataclass(frozen=True)
class Matrix:
    toolkits: dict[str, Toolkit]
    torch: dict[str, TorchRelease]
    vllm: tuple[VllmRelease, ...]  # oldest first
    xformers: dict[str, XformersRelease]
    qwen_vl_utils: str
    indexes: dict[str, str]
    verify_packages: tuple[str, ...]
    must_have_kernels: tuple[str, ...]
    optional: tuple[OptionalLibrary, ...] = field(default=())

    def vllm_release(self, version: str) -> VllmRelease | None:
        return next((row for row in self.vllm if row.version == version), None)


@functools.cache
def load(path: Path = MATRIX_PATH) -> Matrix:
    data = tomllib.loads(path.read_text())
    return Matrix(
        toolkits={k: Toolkit(k, v["image"], tuple(v["archs"]), v.get("removed")) for k, v in data["toolkit"].items()},
        torch={r["version"]: TorchRelease(r["version"], tuple(r["python"]), r["pypi_cuda"], dict(r["flavours"])) for r in data["torch"]},
        vllm=tuple(
            sorted(
                (
                    VllmRelease(
                        version=r["version"], torch=r["torch"], wheels=tuple(r["wheels"]), wheel_archs=r["wheel_archs"],
                        cmake_archs=dict(r["cmake_archs"]), transformers=r["transformers"], python=tuple(r["python"]),
                        xformers=r.get("xformers"), wheels_unconfirmed=tuple(r.get("wheels_unconfirmed", ())),
                    )
                    for r in data["vllm"]
                ),
                key=lambda row: version_key(row.version),
            )
        ),
        xformers={
            k: XformersRelease(k, v["torch"], tuple(v["flavours"]), v["archs"], v.get("archs_cuda12", ""), v.get("archs_cuda13", ""))
            for k, v in data["xformers"].items()
        },
        qwen_vl_utils=data["qwen"]["qwen_vl_utils"],
        indexes=dict(data["indexes"]),
        verify_packages=tuple(data["verify"]["packages"]),
        must_have_kernels=tuple(data["verify"].get("must_have_kernels", ())),
        optional=tuple(OptionalLibrary(o["glob"], o["below_cc"], o["reason"]) for o in data["verify"].get("optional", ())),
    )


# --- arch lists ("7.0;7.5;9.0+PTX;9.0a") -------------------------------------------------


def arch_labels(arch_list: str) -> tuple[list[str], list[str]]:
    """A TORCH_CUDA_ARCH_LIST as the SASS and PTX labels nvcc produces for it."""
    sass, ptx = [], []
    for item in arch_list.replace(" ", ";").split(";"):
        item = item.strip()
        if not item:
            continue
        base, plus_ptx = (item[:-4], True) if item.upper().endswith("+PTX") else (item, False)
        suffix = base[-1] if base[-1] in "af" else ""
        number = base[:-1] if suffix else base
        major, minor = number.split(".")
        label = f"{major}{minor}{suffix}"
        sass.append(f"sm_{label}")
        if plus_ptx:
            ptx.append(f"compute_{label}")
    return sass, ptx


def list_missing(arch_list: str, cc: str) -> str | None:
    """Why binaries built for ``arch_list`` would not load on ``cc``; None when they would."""
    sass, ptx = arch_labels(arch_list)
    return missing_reason(sass, ptx, cc)


def cut_to_toolkit(arch_list: str, toolkit: Toolkit) -> str:
    """Drop the archs a toolkit cannot compile ("10.0+PTX" is gone under CUDA 12.4)."""
    kept = []
    for item in arch_list.split(";"):
        base = item[:-4] if item.upper().endswith("+PTX") else item
        if base.rstrip("af") in toolkit.archs:
            kept.append(item)
    return ";".join(kept)


def source_arch(cmake_list: str, cc: str) -> str | None:
    """vLLM's loose intersection (cmake/utils.cmake): the highest supported arch <= cc, same major."""
    device = parse_version(cc)
    best = None
    for item in cmake_list.split(";"):
        arch = parse_version(item.rstrip("af").replace("+PTX", ""))
        if arch[0] == device[0] and arch[1] <= device[1] and (best is None or arch > best):
            best = arch
    return f"{best[0]}.{best[1]}" if best else None
