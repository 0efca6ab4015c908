"""Write the facts snapshots that stand for real GPUs, built from published specifications.

Each snapshot says so (provenance "published-spec") and names its sources. GPU names, compute
capabilities and memory come from NVIDIA's datasheets and its "CUDA GPU Compute Capability"
page; software stacks are typical installs of that era, and the kernel architectures inside
their libraries follow the build arch lists in ../shared/reference/image_matrix.md (§2.2 torch
wheels, §3.2-3.3 vLLM, §4.2 xformers). Run: python scripts/make_spec_snapshots.py
"""

from __future__ import annotations

from pathlib import Path

from qvdoctor.facts.snapshot import Facts, GpuFacts, LibraryFacts, NvidiaFacts, PackageFacts, SystemFacts

OUT = Path(__file__).resolve().parent.parent / "qvdoctor" / "data" / "machines"
GIB = 1024**3
SITE = "/usr/local/lib/python3.11/dist-packages"
SOURCES = [
    "NVIDIA CUDA GPU Compute Capability table (developer.nvidia.com/cuda-gpus)",
    "NVIDIA product datasheets (memory size)",
    "shared/reference/image_matrix.md §1.3 (driver floors), §2.2 (torch wheel arch lists), §3.2-3.3 (vLLM arch lists), §4.2 (xformers arch lists)",
]


def sass(*archs: int) -> list[str]:
    return [f"sm_{a}" for a in archs]


def ptx(*archs: int) -> list[str]:
    return [f"compute_{a}" for a in archs]


def pkg(name: str, dist: str, version: str, cuda: str | None = None) -> PackageFacts:
    return PackageFacts(name=name, dist=dist, version=version, location=SITE, cuda=cuda)


def lib(package: str, rel: str, size_mb: int, s: list[str], p: list[str]) -> LibraryFacts:
    return LibraryFacts(package=package, path=f"{SITE}/{rel}", size=size_mb * 1024 * 1024, sass=s, ptx=p)


def torch_stack(version: str, cuda: str, s: list[str], p: list[str] | None = None) -> tuple[list[PackageFacts], list[LibraryFacts]]:
    return [pkg("torch", "torch", version, cuda)], [lib("torch", "torch/lib/libtorch_cuda.so", 900, s, p or [])]


def vllm_stack(version: str, s: list[str], p: list[str], fa: bool = True) -> tuple[list[PackageFacts], list[LibraryFacts]]:
    libs = [lib("vllm", "vllm/_C.abi3.so", 300, s, p)]
    if fa:
        libs.append(lib("vllm", "vllm/vllm_flash_attn/_vllm_fa2_C.abi3.so", 250, sass(80, 90), []))
    return [pkg("vllm", "vllm", version)], libs


def machine(name: str, label: str, gpu: str, cc: str, mem_gib: float, count: int, driver: str, cuda_drv: str,
            stacks: list[tuple[list[PackageFacts], list[LibraryFacts]]], extra_pkgs: list[PackageFacts],
            notes: str, shm_gib: float = 32, container: bool = False, env: dict[str, str] | None = None) -> Facts:
    packages = {p.name: p for p in extra_pkgs}
    libraries: list[LibraryFacts] = []
    for pkgs, libs in stacks:
        packages.update({p.name: p for p in pkgs})
        libraries += libs
    return Facts(
        label=label,
        provenance="published-spec",
        nvidia=NvidiaFacts(
            driver_version=driver,
            cuda_driver_version=cuda_drv,
            gpus=[GpuFacts(i, gpu, cc, int(mem_gib * GIB), int(mem_gib * GIB * 0.98), None) for i in range(count)],
        ),
        packages=packages,
        libraries=libraries,
        system=SystemFacts(
            os="Linux 5.15.0 x86_64", python="3.11.9", cpu_count=16, memory_bytes=128 * GIB,
            shm_bytes=int(shm_gib * GIB), in_container=container,
            container_evidence="/.dockerenv exists" if container else None, env=env or {},
        ),
        notes=notes,
        sources=SOURCES,
        collected_at="built from published specifications",
    )


MACHINES = {
    "t4": machine(
        "t4", "NVIDIA Tesla T4 (published specs) with a torch built without sm_75", "Tesla T4", "7.5", 16, 1,
        "550.127.05", "12.4",
        [torch_stack("2.6.0", "12.4", sass(80, 86, 90), ptx(90)),
         vllm_stack("0.8.5", sass(70, 75, 80, 86, 89, 90), ptx(90)),
         ([pkg("xformers", "xformers", "0.0.29.post2")], [lib("xformers", "xformers/_C.so", 120, sass(60, 70, 75, 80, 90), ptx(60, 80))])],
        [pkg("transformers", "transformers", "4.51.3")],
        "A T4 whose torch came from a source build with TORCH_CUDA_ARCH_LIST='8.0;8.6;9.0+PTX' (as in images built for A100/H100 only): "
        "the scenario behind 'no kernel image is available for execution on the device'.",
    ),
    "rtx2080ti": machine(
        "rtx2080ti", "NVIDIA GeForce RTX 2080 Ti (published specs)", "NVIDIA GeForce RTX 2080 Ti", "7.5", 11, 2,
        "570.133.07", "12.8",
        [torch_stack("2.7.1", "12.6", sass(50, 60, 70, 75, 80, 86, 90)),
         vllm_stack("0.10.1.1", sass(70, 75, 80, 89, 90, 100, 120), []),
         ([pkg("xformers", "xformers", "0.0.31")], [lib("xformers", "xformers/_C.so", 110, sass(75, 80, 90), ptx(80))])],
        [pkg("transformers", "transformers", "4.55.0")],
        "Two 2080 Ti on a workstation with vLLM 0.10.1.1 (V1 default engine, no kernels for cc 7.5).",
    ),
    "titan-rtx": machine(
        "titan-rtx", "NVIDIA TITAN RTX (published specs)", "NVIDIA TITAN RTX", "7.5", 24, 1,
        "580.95.05", "13.0",
        [torch_stack("2.11.0", "13.0", sass(75, 80, 86, 90, 100, 120)),
         vllm_stack("0.20.0", sass(75, 80, 86, 89, 90, 100, 110, 120), ptx(120))],
        [pkg("transformers", "transformers", "4.57.1")],
        "A Titan RTX with vLLM 0.20 (CUDA 13 wheels keep sm_75; the vision encoder defaults to TRITON_ATTN).",
    ),
    "v100": machine(
        "v100", "NVIDIA Tesla V100-SXM2-32GB (published specs)", "Tesla V100-SXM2-32GB", "7.0", 32, 1,
        "560.35.03", "12.6",
        [torch_stack("2.7.1", "12.6", sass(50, 60, 70, 75, 80, 86, 90)),
         vllm_stack("0.10.1.1", sass(70, 75, 80, 89, 90, 100, 120), []),
         ([pkg("xformers", "xformers", "0.0.31")], [lib("xformers", "xformers/_C.so", 110, sass(75, 80, 90), ptx(80))]),
         ([pkg("flash_attn", "flash-attn", "2.7.4.post1")], [lib("flash_attn", "flash_attn_2_cuda.cpython-311-x86_64-linux-gnu.so", 400, sass(80, 90), [])])],
        [pkg("transformers", "transformers", "4.55.0")],
        "A V100 with vLLM 0.10.1.1: xformers 0.0.31 dropped sm_70, flash-attn is installed but needs cc 8.0.",
    ),
    "a10": machine(
        "a10", "NVIDIA A10 (published specs)", "NVIDIA A10", "8.6", 24, 1,
        "550.127.05", "12.4",
        [torch_stack("2.6.0", "12.4", sass(50, 60, 70, 75, 80, 86, 90)),
         vllm_stack("0.8.5", sass(70, 75, 80, 86, 89, 90), ptx(90))],
        [pkg("transformers", "transformers", "4.51.3")],
        "A cloud A10 with vLLM 0.8.5.",
    ),
    "l4": machine(
        "l4", "NVIDIA L4 (published specs)", "NVIDIA L4", "8.9", 24, 1,
        "570.133.20", "12.8",
        [torch_stack("2.8.0", "12.8", sass(70, 75, 80, 86, 90, 100, 120)),
         vllm_stack("0.11.0", sass(70, 75, 80, 89, 90, 100, 120), [])],
        [pkg("transformers", "transformers", "4.57.1")],
        "A cloud L4 with vLLM 0.11.0.",
    ),
    "rtx4090": machine(
        "rtx4090", "NVIDIA GeForce RTX 4090 (published specs)", "NVIDIA GeForce RTX 4090", "8.9", 24, 1,
        "575.64.03", "12.9",
        [torch_stack("2.10.0", "12.8", sass(70, 75, 80, 86, 90, 100, 120)),
         vllm_stack("0.19.1", sass(70, 75, 80, 89, 90, 100, 120), [])],
        [pkg("transformers", "transformers", "4.57.1")],
        "A desktop RTX 4090 with vLLM 0.19.1.",
    ),
    "a100-x4-docker": machine(
        "a100-x4-docker", "4 x NVIDIA A100-SXM4-80GB in a Docker container with the default /dev/shm (published specs)",
        "NVIDIA A100-SXM4-80GB", "8.0", 80, 4, "570.133.20", "12.8",
        [torch_stack("2.8.0", "12.8", sass(70, 75, 80, 86, 90, 100, 120)),
         vllm_stack("0.10.2", sass(70, 75, 80, 89, 90, 100, 120), [])],
        [pkg("transformers", "transformers", "4.56.1")],
        "Four A100 in a container started without --ipc=host: Docker's 64 MiB /dev/shm.",
        shm_gib=64 / 1024, container=True,
    ),
    "h100": machine(
        "h100", "NVIDIA H100 80GB HBM3 (published specs)", "NVIDIA H100 80GB HBM3", "9.0", 80, 1,
        "580.95.05", "13.0",
        [torch_stack("2.13.0", "13.0", sass(75, 80, 86, 90, 100, 120)),
         vllm_stack("0.32.0", sass(75, 80, 86, 89, 90, 100, 110, 120), ptx(120))],
        [pkg("transformers", "transformers", "5.19.0")],
        "An H100 with the current vLLM and torch.",
        env={"VLLM_WORKER_MULTIPROC_METHOD": "spawn"},
    ),
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, facts in MACHINES.items():
        facts.save(OUT / f"{name}.json")
        print(f"wrote {OUT / f'{name}.json'}")


if __name__ == "__main__":
    main()
