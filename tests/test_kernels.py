"""The fatbin reader on libraries compiled here with nvcc, checked against cuobjdump.

Every fixture library is built in the session from tests/kernels_fixtures/*.cu for a chosen
-gencode set; outputs are cached under the temp dir, keyed by nvcc version, sources and flags,
so a second run does not compile again. cuobjdump (from the PyPI ``triton`` package) is the
oracle; each case also states the expected archs so it still means something without it."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from qvdoctor.kernels import KernelArchs, scan_file
from qvdoctor.kernels.elf import read_sections
from qvdoctor.kernels.fatbin import walk

REPO = Path(__file__).resolve().parent.parent
SOURCES = Path(__file__).resolve().parent / "kernels_fixtures"
NVCC = os.environ.get("NVCC") or shutil.which("nvcc") or "/usr/local/bin/nvcc"


def _gencode(arch: str, *codes: str) -> list[str]:
    return ["-gencode", f"arch={arch},code=[{','.join(codes)}]"]


@dataclass(frozen=True)
class Build:
    """A fixture library: how nvcc builds it, and the archs cuobjdump shows for it."""

    steps: tuple[tuple[str, ...], ...]  # nvcc argument lists; "{out}" and "{obj}" are filled in
    sass: tuple[str, ...]
    ptx: tuple[str, ...]
    output: str = "lib.so"


SHARED = ("-shared", "-Xcompiler", "-fPIC")
BUILDS: dict[str, Build] = {
    "sm75": Build(((*SHARED, *_gencode("compute_75", "sm_75"), "scale.cu", "-o", "{out}"),), ("sm_75",), ()),
    "sm80_sm90": Build(
        ((*SHARED, *_gencode("compute_80", "sm_80"), *_gencode("compute_90", "sm_90"), "scale.cu", "-o", "{out}"),),
        ("sm_80", "sm_90"), (),
    ),
    "sm75_ptx90": Build(
        ((*SHARED, *_gencode("compute_75", "sm_75"), *_gencode("compute_90", "compute_90"), "scale.cu", "-o", "{out}"),),
        ("sm_75",), ("compute_90",),
    ),
    "compressed": Build(
        ((*SHARED, "-Xfatbin", "-compress-all", *_gencode("compute_80", "sm_80"), *_gencode("compute_86", "sm_86", "compute_86"),
          "scale.cu", "-o", "{out}"),),
        ("sm_80", "sm_86"), ("compute_86",),
    ),
    # Two translation units compiled for different archs, linked into one library.
    "multi_tu": Build(
        (
            ("-c", "-Xcompiler", "-fPIC", *_gencode("compute_75", "sm_75"), "scale.cu", "-o", "{obj}1.o"),
            ("-c", "-Xcompiler", "-fPIC", *_gencode("compute_90", "sm_90", "compute_90"), "add.cu", "-o", "{obj}2.o"),
            (*SHARED, "{obj}1.o", "{obj}2.o", "-o", "{out}"),
        ),
        ("sm_75", "sm_90"), ("compute_90",),
    ),
    # -rdc: the PTX stays in __nv_relfatbin as link input; the runtime loads only the linked
    # sm_80 cubin of .nv_fatbin, so the library has no JIT-able PTX.
    "rdc": Build(
        (
            ("-rdc=true", "-c", "-Xcompiler", "-fPIC", *_gencode("compute_80", "sm_80", "compute_80"), "rdc_device.cu", "-o", "{obj}1.o"),
            ("-rdc=true", "-c", "-Xcompiler", "-fPIC", *_gencode("compute_80", "sm_80", "compute_80"), "rdc_kernel.cu", "-o", "{obj}2.o"),
            (*SHARED, "-rdc=true", *_gencode("compute_80", "sm_80", "compute_80"), "{obj}1.o", "{obj}2.o", "-o", "{out}"),
        ),
        ("sm_80",), (),
    ),
    # An unlinked relocatable object: its only fatbin is __nv_relfatbin, PTX included.
    "rdc_object": Build(
        (("-rdc=true", "-c", "-Xcompiler", "-fPIC", *_gencode("compute_80", "sm_80", "compute_80"), "rdc_device.cu", "-o", "{out}"),),
        ("sm_80",), ("compute_80",), output="obj.o",
    ),
    "arch_specific": Build(
        ((*SHARED, *_gencode("compute_90a", "sm_90a", "compute_90a"), "scale.cu", "-o", "{out}"),),
        ("sm_90a",), ("compute_90a",),
    ),
    # Family cubins are plain sm_100 code (cuobjdump prints sm_100); family PTX stays 100f.
    "family": Build(
        ((*SHARED, *_gencode("compute_100f", "sm_100f", "compute_100f"), "scale.cu", "-o", "{out}"),),
        ("sm_100",), ("compute_100f",),
    ),
}


def _nvcc_version() -> str | None:
    try:
        out = subprocess.run([NVCC, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().splitlines()[-1] if out.returncode == 0 and out.stdout.strip() else None


def _build(name: str, build: Build, cache: Path, nvcc_version: str) -> Path:
    key = hashlib.sha256(repr((nvcc_version, build.steps)).encode())
    for source in sorted(SOURCES.glob("*.cu")):
        key.update(source.read_bytes())
    target = cache / f"{name}-{key.hexdigest()[:16]}" / build.output
    if target.exists():
        return target
    work = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=cache))
    out = work / build.output
    for step in build.steps:
        args = [a.replace("{out}", str(out)).replace("{obj}", str(work / "part")) for a in step]
        done = subprocess.run([NVCC, *args], cwd=SOURCES, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"nvcc failed for {name}: {' '.join(args)}\n{done.stderr}")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(out, target)  # atomic: a half-built library is never cached
    except OSError:
        pass
    shutil.rmtree(work, ignore_errors=True)
    return target


@pytest.fixture(scope="session")
def libs() -> dict[str, Path]:
    version = _nvcc_version()
    if version is None:
        pytest.skip(f"nvcc not found at {NVCC}: the CUDA fixture libraries cannot be built")
    cache = Path(tempfile.gettempdir()) / "qvdoctor-test-cuda"
    cache.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {name: pool.submit(_build, name, build, cache, version) for name, build in BUILDS.items()}
        return {name: future.result() for name, future in futures.items()}


def find_cuobjdump() -> str | None:
    """cuobjdump from the installed triton wheel, else from PATH."""
    spec = importlib.util.find_spec("triton")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "backends" / "nvidia" / "bin" / "cuobjdump"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("cuobjdump")


_CUOBJDUMP_LINE = re.compile(r"^(ELF|PTX) file\s+\d+: .*\.sm_(\d+[af]?)\.(?:cubin|ptx)$")


@functools.lru_cache(maxsize=None)
def cuobjdump_archs(path: Path) -> tuple[list[str], list[str]]:
    """The (sass, ptx) sets of ``cuobjdump --list-elf --list-ptx``, PTX renamed compute_XY."""
    tool = find_cuobjdump()
    if tool is None:
        pytest.skip("cuobjdump not found (pip install triton ships it under triton/backends/nvidia/bin)")
    done = subprocess.run([tool, "--list-elf", "--list-ptx", str(path)], capture_output=True, text=True, timeout=600)
    sass, ptx = set(), set()
    for line in done.stdout.splitlines():
        match = _CUOBJDUMP_LINE.match(line.strip())
        if match:
            (sass if match.group(1) == "ELF" else ptx).add(("sm_" if match.group(1) == "ELF" else "compute_") + match.group(2))
    return sorted(sass), sorted(ptx)


# --- the reader against nvcc builds ------------------------------------------------------------


@pytest.mark.nvcc
@pytest.mark.parametrize("name", list(BUILDS))
def test_reader_lists_the_archs_nvcc_compiled(libs, name):
    found = scan_file(libs[name])
    assert found.error is None
    assert (found.sass, found.ptx) == (list(BUILDS[name].sass), list(BUILDS[name].ptx))


@pytest.mark.nvcc
@pytest.mark.parametrize("name", list(BUILDS))
def test_reader_agrees_with_cuobjdump(libs, name):
    found = scan_file(libs[name])
    assert (sorted(found.sass), sorted(found.ptx)) == cuobjdump_archs(libs[name])


@pytest.mark.nvcc
def test_ptx_isa_version_is_the_one_nvcc_emitted(libs):
    # CUDA 13.0 emits PTX ISA 9.0 (image_matrix.md §1.4); a newer nvcc may emit more.
    isa = scan_file(libs["sm75_ptx90"]).ptx_isa
    assert set(isa) == {"compute_90"}
    major, minor = map(int, isa["compute_90"].split("."))
    assert (major, minor) >= (9, 0)


@pytest.mark.nvcc
def test_compressed_entries_are_listed_without_decompressing(libs):
    path = libs["compressed"]
    with open(path, "rb") as fh:
        sections = {s.name: s for s in read_sections(fh, path.stat().st_size).sections}
    fatbin = sections[".nv_fatbin"]
    data = path.read_bytes()
    entries = walk(data, fatbin.offset, fatbin.offset + fatbin.size).entries
    assert entries and all(entry.compressed for entry in entries)
    assert {entry.label for entry in entries} == {"sm_80", "sm_86", "compute_86"}


@pytest.mark.nvcc
def test_library_runs_where_cuda_would_load_it(libs):
    sm75 = scan_file(libs["sm75"])
    assert sm75.runs_on("7.5") and not sm75.runs_on("8.0") and not sm75.runs_on("7.0")
    ampere_hopper = scan_file(libs["sm80_sm90"])
    assert ampere_hopper.runs_on("8.6") and ampere_hopper.runs_on("9.0")
    assert not ampere_hopper.runs_on("7.5") and not ampere_hopper.runs_on("12.0")
    with_ptx = scan_file(libs["sm75_ptx90"])
    assert with_ptx.runs_on("7.5") and with_ptx.runs_on("12.0")  # 12.0 through the compute_90 PTX
    assert not with_ptx.runs_on("8.6")  # sm_75 SASS is Turing-only, compute_90 is above 8.6
    assert not with_ptx.runs_on("12.0", driver_cuda="12.8")  # ISA 9.0 needs a CUDA 13 driver
    assert "CUDA 13.0" in with_ptx.missing_reason("12.0", driver_cuda="12.8")
    hopper_a = scan_file(libs["arch_specific"])
    assert hopper_a.runs_on("9.0") and not hopper_a.runs_on("10.0")
    rdc = scan_file(libs["rdc"])
    assert rdc.runs_on("8.9") and not rdc.runs_on("9.0")  # its compute_80 PTX is never loaded


# --- damaged and foreign files ------------------------------------------------------------------


def _cut(source: Path, dest: Path, size: int) -> Path:
    with open(source, "rb") as fh:
        dest.write_bytes(fh.read(size))
    return dest


@pytest.mark.nvcc
def test_truncated_library_reports_an_error_and_what_it_could_read(libs, tmp_path):
    source = libs["sm75_ptx90"]
    with open(source, "rb") as fh:
        sections = {s.name: s for s in read_sections(fh, source.stat().st_size).sections}
    fatbin = sections[".nv_fatbin"]
    # Cut after the fatbin: section headers are gone, the byte scan still finds the archs.
    after = scan_file(_cut(source, tmp_path / "after.so", fatbin.offset + fatbin.size + 64))
    assert after.error == "truncated ELF: section headers past end of file"
    assert (after.sass, after.ptx) == (["sm_75"], ["compute_90"])
    # Cut inside the fatbin: an error, no exception, at most what is there.
    inside = scan_file(_cut(source, tmp_path / "inside.so", fatbin.offset + 100))
    assert inside.error and inside.error.startswith("truncated")
    assert set(inside.sass) <= {"sm_75"} and set(inside.ptx) <= {"compute_90"}
    # Cut inside the ELF header.
    header = scan_file(_cut(source, tmp_path / "header.so", 10))
    assert header.error == "truncated ELF: header cut short"
    assert (header.sass, header.ptx) == ([], [])


@pytest.mark.nvcc
def test_library_without_section_headers_is_scanned_for_fatbins(libs, tmp_path):
    data = bytearray(libs["multi_tu"].read_bytes())
    data[0x28:0x30] = bytes(8)  # e_shoff = 0: as if stripped with sstrip
    data[0x3C:0x40] = bytes(4)  # e_shnum = 0, e_shstrndx = 0
    stripped = tmp_path / "stripped.so"
    stripped.write_bytes(bytes(data))
    found = scan_file(stripped)
    assert found.error is None
    assert (found.sass, found.ptx) == (["sm_75", "sm_90"], ["compute_90"])


def test_non_elf_empty_and_missing_files_set_error(tmp_path):
    script = tmp_path / "libfoo.so"
    script.write_text("/* GNU ld script */\nINPUT(libfoo.so.1)\n")
    empty = tmp_path / "empty.so"
    empty.write_bytes(b"")
    fifo = tmp_path / "libfifo.so"
    os.mkfifo(fifo)  # opening it would block: must be refused, not read
    cases = {
        script: "not an ELF file",
        empty: "empty file",
        tmp_path / "gone.so": "no such file",
        tmp_path: "is a directory",
        fifo: "not a regular file",
    }
    for path, error in cases.items():
        found = scan_file(path)
        assert isinstance(found, KernelArchs)
        assert (found.error, found.sass, found.ptx) == (error, [], [])


def test_host_only_library_has_no_device_code_and_runs_anywhere():
    found = scan_file(sys.executable)
    assert found.error is None and not found.has_device_code
    assert found.runs_on("7.5") and found.missing_reason("7.5") is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_sets_error(tmp_path):
    locked = tmp_path / "locked.so"
    locked.write_bytes(b"\x7fELF")
    locked.chmod(0)
    assert scan_file(locked).error == "permission denied"


# --- the command --------------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    command = [sys.executable, "-m", "qvdoctor", "kernels", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)


@pytest.mark.nvcc
def test_cli_exit_0_when_every_library_runs_on_cc(libs):
    done = run_cli(str(libs["sm75"]), str(libs["sm75_ptx90"]), "--cc", "7.5")
    assert done.returncode == 0, done.stderr
    assert "sm_75" in done.stdout and "compute_90" in done.stdout
    assert "2 of 2 libraries run on cc 7.5" in done.stdout


@pytest.mark.nvcc
def test_cli_exit_2_and_json_when_a_library_lacks_the_arch(libs):
    done = run_cli(str(libs["sm75"]), str(libs["sm80_sm90"]), "--cc", "7.5", "--json")
    assert done.returncode == 2, done.stderr
    rows = json.loads(done.stdout)
    assert [row["path"] for row in rows] == [str(libs["sm75"]), str(libs["sm80_sm90"])]
    assert [(row["sass"], row["ptx"], row["runs_on"], row["error"]) for row in rows] == [
        (["sm_75"], [], True, None),
        (["sm_80", "sm_90"], [], False, None),
    ]
    assert rows[1]["reason"].startswith("no SASS for sm_75 (has sm_80, sm_90)")


@pytest.mark.nvcc
def test_cli_table_explains_a_library_that_cannot_run(libs):
    done = run_cli(str(libs["sm80_sm90"]), "--cc", "7.5")
    assert done.returncode == 2
    assert "no SASS for sm_75 (has sm_80, sm_90) and no PTX at or below compute_75" in done.stdout


@pytest.mark.nvcc
def test_cli_without_cc_has_null_runs_on(libs):
    done = run_cli(str(libs["compressed"]), "--json")
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert row["runs_on"] is None and row["sass"] == ["sm_80", "sm_86"] and row["ptx"] == ["compute_86"]


@pytest.mark.nvcc
def test_cli_scans_directories_and_reports_broken_libraries(libs, tmp_path):
    (tmp_path / "pkg" / "lib").mkdir(parents=True)
    shutil.copy(libs["sm75"], tmp_path / "pkg" / "lib" / "libgood.so.1")
    (tmp_path / "pkg" / "lib" / "libgood.so").symlink_to("libgood.so.1")  # counted once
    (tmp_path / "pkg" / "libscript.so").write_text("INPUT(libgood.so.1)\n")  # a linker script: skipped
    (tmp_path / "pkg" / "notes.txt").write_text("not a library")
    _cut(libs["sm75"], tmp_path / "pkg" / "libbroken.so", 4096)
    (tmp_path / "pkg" / "libempty.so").write_bytes(b"")  # a broken install: reported, not skipped
    done = run_cli(str(tmp_path / "pkg"), "--cc", "7.5", "--json")
    assert done.returncode == 2, done.stderr
    rows = {Path(row["path"]).name: row for row in json.loads(done.stdout)}
    assert set(rows) == {"libbroken.so", "libempty.so", "libgood.so"}
    assert rows["libempty.so"]["error"] == "empty file"
    assert rows["libgood.so"]["runs_on"] is True
    assert rows["libbroken.so"]["error"] == "truncated ELF: section headers past end of file"
    assert rows["libbroken.so"]["runs_on"] is None


def test_cli_bad_input_is_one_line_exit_3(tmp_path):
    missing = run_cli(str(tmp_path / "nope.so"), "--cc", "7.5")
    assert missing.returncode == 3
    assert missing.stderr.startswith("error: no such file or directory:") and "Traceback" not in missing.stderr
    bad_cc = run_cli(sys.executable, "--cc", "75")
    assert bad_cc.returncode == 3
    assert bad_cc.stderr.splitlines()[0] == "error: --cc must be MAJOR.MINOR such as 7.5, got '75'"
    empty_dir = run_cli(str(tmp_path))
    assert empty_dir.returncode == 3 and "no shared libraries" in empty_dir.stderr


# --- the libraries of the installed torch wheel -------------------------------------------------


def _torch_lib_dir() -> Path | None:
    spec = importlib.util.find_spec("torch")  # locates the package without importing it
    for location in (spec.submodule_search_locations or []) if spec else []:
        lib = Path(location) / "lib"
        if (lib / "libtorch_cuda.so").is_file():
            return lib
    return None


TORCH_LIB = _torch_lib_dir()
needs_torch_cuda = pytest.mark.skipif(TORCH_LIB is None, reason="no CUDA build of torch (libtorch_cuda.so) installed")


@needs_torch_cuda
def test_torch_wheel_libraries_agree_with_cuobjdump():
    libraries = sorted(p for p in TORCH_LIB.glob("*.so*") if p.is_file())
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        oracle = dict(zip(libraries, pool.map(cuobjdump_archs, libraries), strict=True))
    with_code = 0
    for path in libraries:
        found = scan_file(path)
        assert found.error is None, path
        assert (sorted(found.sass), sorted(found.ptx)) == oracle[path], path.name
        with_code += found.has_device_code
    assert with_code >= 1
    assert scan_file(TORCH_LIB / "libtorch_cuda.so").runs_on("9.0")  # every CUDA wheel ships sm_90


@needs_torch_cuda
def test_cli_on_torch_lib_dir_matches_the_rules_applied_to_cuobjdump():
    from qvdoctor.kernels import runs_on

    sass, ptx = cuobjdump_archs(TORCH_LIB / "libtorch_cuda.so")
    for cc in ("7.0", "7.5", "9.0"):
        done = run_cli(str(TORCH_LIB), "--cc", cc, "--json")
        rows = {Path(row["path"]).name: row for row in json.loads(done.stdout)}
        assert rows["libtorch_cuda.so"]["runs_on"] is runs_on(sass, ptx, cc)
        assert done.returncode == (0 if all(row["runs_on"] for row in rows.values()) else 2)
