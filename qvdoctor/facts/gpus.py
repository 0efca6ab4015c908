"""GPU facts through NVML (nvidia-ml-py). No driver is a fact, not an error."""

from __future__ import annotations

from qvdoctor.facts.snapshot import GpuFacts, NvidiaFacts


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def read_nvidia() -> NvidiaFacts:
    try:
        import pynvml
    except ImportError:
        return NvidiaFacts(error="nvidia-ml-py is not installed; cannot query GPUs")
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return NvidiaFacts(error=f"no NVIDIA GPU: {exc}")
    try:
        cuda = pynvml.nvmlSystemGetCudaDriverVersion()  # e.g. 13000
        facts = NvidiaFacts(
            driver_version=_text(pynvml.nvmlSystemGetDriverVersion()),
            cuda_driver_version=f"{cuda // 1000}.{cuda % 1000 // 10}",
        )
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            try:
                mig = bool(pynvml.nvmlDeviceGetMigMode(handle)[0])
            except pynvml.NVMLError:
                mig = None  # not supported on this GPU
            facts.gpus.append(
                GpuFacts(
                    index=index,
                    name=_text(pynvml.nvmlDeviceGetName(handle)),
                    cc=f"{major}.{minor}",
                    memory_total_bytes=int(memory.total),
                    memory_free_bytes=int(memory.free),
                    mig_mode=mig,
                )
            )
        return facts
    except pynvml.NVMLError as exc:
        return NvidiaFacts(error=f"NVML query failed: {exc}")
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass
