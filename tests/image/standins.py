"""Stand-ins for the wheels a real build installs: tiny wheels whose CUDA libraries are real
fatbins compiled by nvcc for chosen archs, placed where torch / vLLM / xformers keep theirs.

Labelled as what they are: they carry no working kernels, only the kernel images that the
verify stage and inspect-image read, exactly as they would read the real libraries."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

KERNEL_SOURCE = r"""
extern "C" __global__ void qvdoctor_standin(float *x, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = x[i] * 2.0f + 1.0f;
}
extern "C" void qvdoctor_standin_launch(float *x, int n) { qvdoctor_standin<<<(n + 255) / 256, 256>>>(x, n); }
"""

# where each package keeps a CUDA library (what the real wheels ship)
LIBRARY_PATHS = {
    "torch": ["torch/lib/libtorch_cuda.so"],
    "vllm": ["vllm/_C.abi3.so", "vllm/_moe_C.abi3.so"],
    "xformers": ["xformers/_C.so"],
}
# vLLM's FlashAttention library ships sm_80 only (image_matrix.md §3.3): mirror that.
FA_PATH, FA_GENCODE = "vllm/vllm_flash_attn/_vllm_fa2_C.abi3.so", ["-gencode", "arch=compute_80,code=sm_80"]


def nvcc_library(out: Path, gencode: list[str], nvcc: str = "nvcc") -> Path:
    """Compile the stand-in kernel into a shared library with the given -gencode flags."""
    src = out.with_suffix(".cu")
    src.write_text(KERNEL_SOURCE)
    subprocess.run([nvcc, "-shared", "-Xcompiler", "-fPIC", *gencode, "-o", str(out), str(src)], check=True, capture_output=True, text=True)
    return out


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def make_wheel(dest: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    """A minimal valid py3-none-any wheel."""
    dist = re.sub(r"[-_.]+", "_", name)
    info = f"{dist}-{version}.dist-info"
    entries = dict(files)
    entries[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: qvdoctor test stand-in\n".encode()
    entries[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: qvdoctor-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = [_record_line(n, d) for n, d in entries.items()] + [f"{info}/RECORD,,"]
    entries[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = dest / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, d in entries.items():
            zf.writestr(n, d)
    return path


def requirement_versions(specs: list[str]) -> dict[str, str]:
    """'torch==2.6.0+cu118', 'transformers>=4.51.1' -> {'torch': '2.6.0+cu118', ...}."""
    found = {}
    for spec in specs:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(?:==|>=)\s*(\S+)", spec.strip())
        if not m:
            raise ValueError(f"stand-ins need name==version or name>=version, got {spec!r}")
        found[m.group(1)] = m.group(2)
    return found


def make_wheelhouse(dest: Path, specs: list[str], library: Path, fa_library: Path) -> Path:
    """One stand-in wheel per requirement; torch / vLLM / xformers carry ``library``."""
    dest.mkdir(parents=True, exist_ok=True)
    lib, fa = library.read_bytes(), fa_library.read_bytes()
    for name, version in requirement_versions(specs).items():
        files = {f"{name.replace('-', '_')}/__init__.py": b""}
        for path in LIBRARY_PATHS.get(name, []):
            files[path] = lib
        if name == "vllm":
            files[FA_PATH] = fa
        make_wheel(dest, name, version, files)
    return dest


def cuobjdump_path() -> str | None:
    """cuobjdump from the PyPI triton package (or PATH)."""
    import importlib.util

    spec = importlib.util.find_spec("triton")
    if spec and spec.submodule_search_locations:
        candidate = Path(list(spec.submodule_search_locations)[0]) / "backends" / "nvidia" / "bin" / "cuobjdump"
        if candidate.is_file():
            return str(candidate)
    return shutil.which("cuobjdump")


def cuobjdump_archs(cuobjdump: str, path: Path) -> tuple[list[str], list[str]]:
    """(SASS, PTX) arch labels as cuobjdump lists them."""
    sass, ptx = set(), set()
    for flag, into, prefix in (("--list-elf", sass, "sm_"), ("--list-ptx", ptx, "compute_")):
        out = subprocess.run([cuobjdump, flag, str(path)], capture_output=True, text=True).stdout
        for m in re.finditer(r"\.(sm_\d+[af]?)\.(?:cubin|ptx)", out):
            into.add(prefix + m.group(1)[3:])
    return sorted(sass), sorted(ptx)
