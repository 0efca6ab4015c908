"""CUDA-bearing shared libraries of the serving stack and the kernel architectures inside them."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from qvdoctor.facts.snapshot import LibraryFacts, PackageFacts

# packages whose shared libraries the serving path loads
KERNEL_PACKAGES = ("torch", "vllm", "xformers", "flash_attn", "flashinfer")


def _is_shared_library(name: str) -> bool:
    return name.endswith(".so") or ".so." in name


def library_paths(package: PackageFacts) -> list[Path]:
    """Shared libraries listed in the package's RECORD (no directory walk of site-packages)."""
    try:
        dist = metadata.distribution(package.dist)
        files = dist.files or []
    except Exception:
        return []
    paths = []
    for file in files:
        if _is_shared_library(file.name):
            path = Path(dist.locate_file(file))
            if path.is_file():
                paths.append(path)
    return sorted(paths)


def scan_libraries(packages: dict[str, PackageFacts]) -> list[LibraryFacts]:
    """Every library that carries CUDA kernels, or that could not be read."""
    from qvdoctor.kernels import scan_file

    found: list[LibraryFacts] = []
    for name in KERNEL_PACKAGES:
        if name not in packages:
            continue
        for path in library_paths(packages[name]):
            archs = scan_file(path)
            if archs.sass or archs.ptx or archs.error:
                found.append(LibraryFacts(name, str(path), archs.size, list(archs.sass), list(archs.ptx), archs.error, dict(archs.ptx_isa)))
    return found
