"""qvdoctor's fatbin reader against ``cuobjdump --list-elf --list-ptx``, measured in one run.

    .venv/bin/python bench/kernels_speed.py [LIBRARY ...] [--rounds 5] [--synthetic]

Without arguments it uses the biggest CUDA library of the installed torch wheel
(torch/lib/libtorch_cuda.so) and, when torch is absent, a synthetic library: the fatbin of
tests/kernels_fixtures/scale.cu built with nvcc, repeated 20,000 times, after 256 MiB of
stand-in host code. Peers in the same run, warm page cache, medians over the rounds:

* ``scan_file`` in-process, and ``python -c 'scan_file(...)'`` as a fresh process (what
  ``qvdoctor kernels`` pays, interpreter start included);
* ``cuobjdump --list-elf --list-ptx`` (from the triton wheel);
* reading the whole file once (what a reader that is not header-only would pay at least).

It also checks that both tools list the same archs, and counts the page faults of one scan."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from qvdoctor.kernels import scan_file  # noqa: E402
from qvdoctor.kernels.elf import read_sections  # noqa: E402


def find_cuobjdump() -> str | None:
    spec = importlib.util.find_spec("triton")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "backends" / "nvidia" / "bin" / "cuobjdump"
        if candidate.is_file():
            return str(candidate)
    return shutil.which("cuobjdump")


SYNTHETIC = "synthetic: scale.cu fatbin x 20,000 after 256 MiB of host bytes"


def default_target(workdir: Path) -> tuple[Path, str]:
    spec = importlib.util.find_spec("torch")
    for location in (spec.submodule_search_locations or []) if spec else []:
        lib = Path(location) / "lib" / "libtorch_cuda.so"
        if lib.is_file():
            return lib, "torch wheel's libtorch_cuda.so"
    return synthetic_library(workdir), SYNTHETIC


def synthetic_library(workdir: Path, copies: int = 20_000, host_mib: int = 256) -> Path:
    """A minimal ELF64 with .text (stand-in host code) and a big .nv_fatbin built from nvcc output."""
    nvcc = shutil.which("nvcc") or "/usr/local/bin/nvcc"
    small = workdir / "small.so"
    source = REPO / "tests" / "kernels_fixtures" / "scale.cu"
    subprocess.run(
        [nvcc, "-shared", "-Xcompiler", "-fPIC", "-gencode", "arch=compute_75,code=sm_75",
         "-gencode", "arch=compute_90,code=compute_90", str(source), "-o", str(small)],
        check=True, capture_output=True,
    )
    data = small.read_bytes()
    with open(small, "rb") as fh:
        fatbin = next(s for s in read_sections(fh, len(data)).sections if s.name == ".nv_fatbin")
    blob = data[fatbin.offset : fatbin.offset + fatbin.size]
    blob += bytes(-len(blob) % 8)
    names = b"\0.text\0.nv_fatbin\0.shstrtab\0"
    off_text = 64
    off_fat = off_text + (host_mib << 20)
    off_names = off_fat + len(blob) * copies
    off_sh = (off_names + len(names) + 7) // 8 * 8

    def shdr(name: int, kind: int, flags: int, offset: int, size: int, align: int) -> bytes:
        return struct.pack("<IIQQQQIIQQ", name, kind, flags, 0, offset, size, 0, 0, align, 0)

    out = workdir / "libsynthetic.so"
    with open(out, "wb") as fh:
        fh.write(b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8))
        fh.write(struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, 0, off_sh, 0, 64, 56, 0, 64, 4, 3))
        chunk = b"\x90" * (1 << 20)
        for _ in range(host_mib):
            fh.write(chunk)
        for _ in range(copies):
            fh.write(blob)
        fh.write(names + bytes(off_sh - off_names - len(names)))
        fh.write(shdr(0, 0, 0, 0, 0, 0) + shdr(1, 1, 6, off_text, host_mib << 20, 16))
        fh.write(shdr(7, 1, 2, off_fat, len(blob) * copies, 8) + shdr(18, 3, 0, off_names, len(names), 1))
    return out


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def read_whole(path: Path) -> None:
    with open(path, "rb") as fh:
        while fh.read(1 << 24):
            pass


def cuobjdump_archs(tool: str, path: Path) -> tuple[list[str], list[str]]:
    out = subprocess.run([tool, "--list-elf", "--list-ptx", str(path)], capture_output=True, text=True).stdout
    sass, ptx = set(), set()
    for line in out.splitlines():
        match = re.match(r"^(ELF|PTX) file\s+\d+: .*\.sm_(\d+[af]?)\.(?:cubin|ptx)$", line.strip())
        if match:
            (sass if match.group(1) == "ELF" else ptx).add(("sm_" if match.group(1) == "ELF" else "compute_") + match.group(2))
    return sorted(sass), sorted(ptx)


def measure(path: Path, tool: str, rounds: int) -> dict:
    fresh = [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(REPO)!r}); "
             f"from qvdoctor.kernels import scan_file; scan_file({str(path)!r})"]
    read_whole(path)  # warm the page cache for every contender alike
    ours, ours_process, theirs, whole = [], [], [], []
    for i in range(rounds):
        steps = [
            lambda: ours.append(timed(lambda: scan_file(path))),
            lambda: ours_process.append(timed(lambda: subprocess.run(fresh, check=True))),
            lambda: theirs.append(timed(lambda: subprocess.run([tool, "--list-elf", "--list-ptx", str(path)], capture_output=True))),
            lambda: whole.append(timed(lambda: read_whole(path))),
        ]
        for step in steps[i % 2 :: 1] + steps[: i % 2]:  # rotate the order between rounds
            step()
    before = resource.getrusage(resource.RUSAGE_SELF)
    found = scan_file(path)
    after = resource.getrusage(resource.RUSAGE_SELF)
    faults = (after.ru_minflt - before.ru_minflt) + (after.ru_majflt - before.ru_majflt)
    oracle = cuobjdump_archs(tool, path)
    med = {name: statistics.median(values) for name, values in
           (("ours_s", ours), ("ours_process_s", ours_process), ("cuobjdump_s", theirs), ("read_whole_file_s", whole))}
    return {
        "path": str(path),
        "size_bytes": path.stat().st_size,
        "rounds": rounds,
        **{k: round(v, 4) for k, v in med.items()},
        "ratio_ours_process_vs_cuobjdump": round(med["ours_process_s"] / med["cuobjdump_s"], 4),
        "ratio_ours_vs_cuobjdump": round(med["ours_s"] / med["cuobjdump_s"], 5),
        "ratio_ours_vs_read_whole_file": round(med["ours_s"] / med["read_whole_file_s"], 4),
        "page_faults_one_scan": faults,
        "same_archs_as_cuobjdump": (sorted(found.sass), sorted(found.ptx)) == oracle,
        "sass": found.sass,
        "ptx": found.ptx,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--synthetic", action="store_true", help="also measure the synthetic library (needs nvcc)")
    args = parser.parse_args()
    tool = find_cuobjdump()
    if tool is None:
        sys.exit("cuobjdump not found: pip install triton (it ships triton/backends/nvidia/bin/cuobjdump)")
    version = subprocess.run([tool, "--version"], capture_output=True, text=True).stdout.strip().splitlines()[-1]
    with tempfile.TemporaryDirectory() as tmp:
        targets = [(p, "given") for p in args.paths] or [default_target(Path(tmp))]
        if args.synthetic and not any(label.startswith("synthetic") for _, label in targets):
            targets.append((synthetic_library(Path(tmp)), SYNTHETIC))
        results = []
        for path, label in targets:
            result = measure(path, tool, args.rounds)
            result["what"] = label
            results.append(result)
    print(json.dumps({"cuobjdump": version, "python": sys.version.split()[0], "cpus": os.cpu_count(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
