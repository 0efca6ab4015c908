"""Pick a consistent CUDA / torch / vLLM / xformers set for a compute capability, or refuse.

Order of preference: a vLLM release whose published wheels carry the cc (prebuilt-wheel path)
over a source build; a newer vLLM over an older one; without ``--cuda``, the CUDA of the
release's default wheel. The torch wheel must carry the cc (torch is never built from source);
vLLM and xformers are built from source (``TORCH_CUDA_ARCH_LIST`` = the cc) when their wheels
do not carry it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from qvdoctor import compat
from qvdoctor.compat import version_key
from qvdoctor.errors import QvError
from qvdoctor.image.matrix import Matrix, VllmRelease, cut_to_toolkit, list_missing, load, source_arch
from qvdoctor.kernels.rules import parse_version

MIN_VLLM_CC = "7.0"  # CMake CUDA_SUPPORTED_ARCHS starts at 7.0 in every release (§3.3)
DEFAULT_PYTHON = "3.10"  # Ubuntu 22.04's python3; others come from the deadsnakes PPA


@dataclass
class BuildPlan:
    """A resolved image: everything the Dockerfile templates need, and why."""

    cc: str
    cuda: str
    path: str  # "wheels" or "source"
    vllm: str
    torch: str
    torch_flavour: str  # CUDA of the torch wheel, "11.8"
    torch_archs: str
    python: str
    base_image: str
    build_base_image: str | None  # devel image for the source build
    driver_min: str | None
    vllm_spec: str
    torch_spec: str
    extra_specs: list[str]
    pip_index_args: str
    xformers: str | None = None
    xformers_from_source: bool = False
    arch_list: str = ""  # TORCH_CUDA_ARCH_LIST for source builds
    vllm_archs: str = ""  # what the vLLM wheel / build carries
    env: dict[str, str] = field(default_factory=dict)
    serve_args: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # why these versions
    notes: list[str] = field(default_factory=list)  # what to know when serving on this cc

    @property
    def summary(self) -> str:
        how = "prebuilt wheels" if self.path == "wheels" else "vLLM built from source"
        xf = f", xformers {self.xformers}{' (source)' if self.xformers_from_source else ''}" if self.xformers else ""
        return f"vLLM {self.vllm} ({how}), torch {self.torch}+cu{self.torch_flavour.replace('.', '')}{xf}, CUDA {self.cuda}, Python {self.python}"


class Refused(QvError):
    """No consistent set exists for the request; ``message`` says why."""


def resolve(
    cc: str,
    cuda: str | None = None,
    vllm: str | None = None,
    python: str | None = None,
    driver: str | None = None,
    matrix: Matrix | None = None,
) -> BuildPlan:
    """``driver`` (e.g. "535.104.05") limits the choice to CUDA versions that driver can run."""
    m = matrix or load()
    _check_inputs(m, cc, cuda, vllm, python)
    if driver is not None and not re.fullmatch(r"\d+(\.\d+)*", driver.strip()):
        raise QvError(f"--driver must be a driver version such as 535.104.05, got {driver!r}", hint="nvidia-smi shows it as 'Driver Version'")
    if version_key(cc) < version_key(MIN_VLLM_CC):
        raise Refused(
            f"vLLM has no CUDA kernels below compute capability {MIN_VLLM_CC}: its CUDA_SUPPORTED_ARCHS start at 7.0 in every release, so no build can target {cc}",
            hint="Pascal GPUs need community builds such as sasha0552/pascal-pkgs-ci",
        )
    cudas = [cuda] if cuda else sorted(m.toolkits, key=version_key, reverse=True)
    dropped: list[str] = []
    if driver:
        runnable = [c for c in cudas if not compat.version_lt(driver, compat.driver_floor(c))]
        if not runnable:
            floor = compat.driver_floor(cudas[-1])
            raise Refused(
                f"driver {driver} is older than CUDA {cudas[-1]} needs (>= {floor})" if cuda
                else f"driver {driver} is older than every CUDA build-image offers (CUDA {cudas[-1]} needs >= {floor})",
                hint="upgrade the NVIDIA driver" + ("" if not cuda else " or choose an older --cuda"),
            )
        dropped = [c for c in cudas if c not in runnable]
        cudas = runnable
    rows = [m.vllm_release(vllm)] if vllm else list(reversed(m.vllm))
    plans, why_not = [], []
    for c in cudas:
        toolkit = m.toolkits[c]
        if cc not in toolkit.archs:
            why_not.append(_toolkit_refusal(m, cc, c))
            continue
        for row in rows:
            result = _plan_for(m, row, c, cc, python)
            if isinstance(result, BuildPlan):
                plans.append(result)
            else:
                why_not.append(f"vLLM {row.version} with CUDA {c}: {result}")
    if not plans:
        able = [c for c in dropped if cc in m.toolkits[c].archs]
        if able:
            first = min(able, key=version_key)
            raise Refused(
                f"cc {cc} needs CUDA >= {first}, which needs a driver >= {compat.driver_floor(first)}; driver {driver} is older",
                hint="upgrade the NVIDIA driver",
            )
        if len(why_not) == 1 or cuda:
            raise Refused(why_not[0] if len(why_not) == 1 else _join_refusals(why_not), hint=_refusal_hint(m, cc, cuda))
        raise Refused(f"no CUDA / vLLM combination builds for cc {cc}: " + _join_refusals(why_not))

    def preference(plan: BuildPlan):
        row = m.vllm_release(plan.vllm)
        return (plan.path == "wheels", version_key(plan.vllm), bool(row and row.wheels[0] == plan.cuda), version_key(plan.cuda))

    best = max(plans, key=preference)
    if not cuda:
        best.reasons.insert(0, f"CUDA {best.cuda}: the newest vLLM whose {'wheels carry' if best.path == 'wheels' else 'source builds for'} sm_{cc.replace('.', '')} ships for it")
    if driver and not cuda:
        best.reasons.insert(
            0,
            f"driver {driver} fully supports CUDA up to {cudas[0]} (newer {cudas[0].split('.')[0]}.x may start through "
            "minor-version compatibility, without PTX JIT; pass --cuda to choose one)",
        )
    return best


def _check_inputs(m: Matrix, cc: str, cuda: str | None, vllm: str | None, python: str | None) -> None:
    try:
        parse_version(cc)
    except ValueError:
        raise QvError(f"--cc must be MAJOR.MINOR such as 7.5, got {cc!r}", hint="find it with 'nvidia-smi --query-gpu=name,compute_cap --format=csv'")
    if cuda is not None and cuda not in m.toolkits:
        raise QvError(f"--cuda {cuda} is not one build-image knows", hint=f"choose one of {', '.join(sorted(m.toolkits, key=version_key))}")
    if vllm is not None and m.vllm_release(vllm) is None:
        raise QvError(f"--vllm {vllm} is not in the build matrix", hint=f"choose one of {', '.join(r.version for r in m.vllm)}")
    if python is not None:
        try:
            parse_version(python)
        except ValueError:
            raise QvError(f"--python must be MAJOR.MINOR such as 3.10, got {python!r}")


def _toolkit_refusal(m: Matrix, cc: str, cuda: str) -> str:
    toolkit = m.toolkits[cuda]
    arch = f"sm_{cc.replace('.', '')}"
    able = [c for c in sorted(m.toolkits, key=version_key) if cc in m.toolkits[c].archs]
    if toolkit.removed and version_key(cc) < version_key(toolkit.archs[0]):
        return f"CUDA {cuda} cannot compile for {arch}: {toolkit.removed}"
    if able and version_key(able[0]) > version_key(cuda):
        return f"CUDA {cuda} cannot compile for {arch}; {arch} needs CUDA >= {able[0]}"
    return f"CUDA {cuda} cannot compile for {arch}"


def _refusal_hint(m: Matrix, cc: str, cuda: str | None) -> str | None:
    able = [c for c in sorted(m.toolkits, key=version_key) if cc in m.toolkits[c].archs]
    if cuda and cuda not in able and able:
        return f"use --cuda {able[-1]} (CUDA versions that can target cc {cc}: {', '.join(able)})"
    return "leave out --vllm / --cuda to let build-image choose" if cuda else None


def _join_refusals(lines: list[str]) -> str:
    return "; ".join(lines[:3]) + (f"; and {len(lines) - 3} more" if len(lines) > 3 else "")


def _pick_python(m: Matrix, row: VllmRelease, requested: str | None) -> str | str:
    torch = m.torch[row.torch]
    low = max(row.python[0], torch.python[0], key=version_key)
    high = min(row.python[1], torch.python[1], key=version_key)
    if requested:
        if version_key(low) <= version_key(requested) <= version_key(high):
            return requested
        raise ValueError(f"Python {requested} is outside {low}-{high} (vLLM {row.version} and torch {row.torch} wheels)")
    if version_key(low) <= version_key(DEFAULT_PYTHON) <= version_key(high):
        return DEFAULT_PYTHON
    return "3.12" if version_key(low) <= (3, 12) <= version_key(high) else low


def _torch_flavour(m: Matrix, version: str, cuda: str, cc: str) -> tuple[str, str] | str:
    """The newest flavour of ``version`` for CUDA's major, at or below ``cuda``, carrying cc."""
    torch = m.torch[version]
    same_major = sorted(
        (f for f in torch.flavours if f.split(".")[0] == cuda.split(".")[0] and version_key(f) <= version_key(cuda)),
        key=version_key,
        reverse=True,
    )
    if not same_major:
        return f"torch {version} has no CUDA {cuda.split('.')[0]}.x wheel at or below {cuda} (flavours: {', '.join(torch.flavours)})"
    for flavour in same_major:
        if list_missing(torch.flavours[flavour], cc) is None:
            return flavour, torch.flavours[flavour]
    return f"torch {version} cu{same_major[0].replace('.', '')} wheels carry {torch.flavours[same_major[0]]}, nothing that runs on {cc}"


def _plan_for(m: Matrix, row: VllmRelease, cuda: str, cc: str, python: str | None) -> BuildPlan | str:
    toolkit = m.toolkits[cuda]
    try:
        py = _pick_python(m, row, python)
    except ValueError as exc:
        return str(exc)
    torch = _torch_flavour(m, row.torch, cuda, cc)
    if isinstance(torch, str):
        return torch
    flavour, torch_archs = torch
    reasons = [f"vLLM {row.version} pins torch {row.torch}; its cu{flavour.replace('.', '')} wheels carry {torch_archs}"]

    wheel_archs = cut_to_toolkit(row.wheel_archs, toolkit)
    if cuda in row.wheels and list_missing(wheel_archs, cc) is None:
        path, arch_list, vllm_archs = "wheels", "", wheel_archs
        reasons.append(f"the vLLM {row.version} wheel for CUDA {cuda} is built for {wheel_archs}, which runs on {cc}")
    else:
        cmake = row.cmake_for(cuda)
        target = source_arch(cmake, cc) if cmake else None
        if not target:
            return f"vLLM {row.version} compiles nothing for sm_{cc.replace('.', '')} with CUDA {cuda} (CUDA_SUPPORTED_ARCHS {cmake or 'none'})"
        path, arch_list, vllm_archs = "source", cc, target
        if cuda not in row.wheels:
            why = f"no confirmed vLLM {row.version} wheel for CUDA {cuda}" + (" (one may exist; unconfirmed)" if cuda in row.wheels_unconfirmed else "")
        else:
            why = f"the vLLM {row.version} wheel for CUDA {cuda} carries {wheel_archs}, nothing for {cc}"
        reasons.append(f"{why}: build vLLM from source with TORCH_CUDA_ARCH_LIST={cc}")

    xformers, xf_source = row.xformers, False
    if xformers:
        xf = m.xformers[xformers]
        if flavour in xf.flavours and list_missing(xf.archs_for(flavour), cc) is None:
            reasons.append(f"xformers {xformers} (pinned by vLLM) cu{flavour.replace('.', '')} wheels carry {xf.archs_for(flavour)}")
        else:
            xf_source = True
            path, arch_list = "source", cc
            reasons.append(f"xformers {xformers} wheels for cu{flavour.replace('.', '')} do not carry {cc}: build it from source")

    transformers = max(row.transformers, compat.table()["qwen2_5_vl"]["transformers_min"], key=version_key)
    torch_spec, index = _torch_spec(m, row.torch, flavour)
    plan = BuildPlan(
        cc=cc, cuda=cuda, path=path, vllm=row.version, torch=row.torch, torch_flavour=flavour, torch_archs=torch_archs,
        python=py,
        base_image=f"nvidia/cuda:{toolkit.image}-runtime-ubuntu22.04",
        build_base_image=f"nvidia/cuda:{toolkit.image}-devel-ubuntu22.04" if path == "source" else None,
        driver_min=compat.driver_floor(cuda),
        vllm_spec=_vllm_spec(m, row, cuda, path),
        torch_spec=torch_spec,
        extra_specs=[s for s in (f"xformers=={xformers}" if xformers and not xf_source else None, f"transformers>={transformers}", f"qwen-vl-utils=={m.qwen_vl_utils}") if s],
        pip_index_args=f"--extra-index-url {index}" if index else "",
        xformers=xformers, xformers_from_source=xf_source, arch_list=arch_list, vllm_archs=vllm_archs, reasons=reasons,
    )
    _runtime_defaults(plan)
    return plan


def _torch_spec(m: Matrix, version: str, flavour: str) -> tuple[str, str | None]:
    if m.torch[version].pypi_cuda == flavour:
        return f"torch=={version}", None
    nodot = flavour.replace(".", "")
    return f"torch=={version}+cu{nodot}", m.indexes["torch"].format(cuda_nodot=nodot)


def _vllm_spec(m: Matrix, row: VllmRelease, cuda: str, path: str) -> str:
    if path == "source" or cuda == row.wheels[0]:
        return f"vllm=={row.version}"
    return "vllm @ " + m.indexes["vllm_variant_wheel"].format(version=row.version, cuda_nodot=cuda.replace(".", ""))


def _runtime_defaults(plan: BuildPlan) -> None:
    """Env and `vllm serve` defaults that make this cc work (image_matrix.md §3.5)."""
    plan.env["VLLM_WORKER_MULTIPROC_METHOD"] = "spawn"
    plan.notes.append(f"needs an NVIDIA driver >= {plan.driver_min} (CUDA {plan.cuda})")
    if version_key(plan.cc) >= (8, 0):
        if version_key(plan.cc) < (8, 9):
            plan.notes.append("no FP8 on cc < 8.9 (weights or KV cache)")
        return
    plan.serve_args += ["--dtype", "half"]
    plan.notes.append("bf16 is not supported on cc < 8.0: the image defaults to --dtype half (Qwen2.5-VL checkpoints are bf16)")
    plan.notes.append("FlashAttention (FA2/FA3, vllm-flash-attn) needs cc >= 8.0 and is never selected here")
    row = compat.pre_ampere(plan.vllm)
    if row:
        plan.notes.append(f"engine {row['engine']}; decoder attention {row['decoder']}; vision-encoder attention {row['vit']}")
        for key, value in row.get("env", {}).items():
            plan.env[key] = str(value)
        if row["decoder"] == "XFORMERS":
            plan.env["VLLM_ATTENTION_BACKEND"] = "XFORMERS"
        for key, value in row.get("flags", {}).items():
            plan.serve_args += ["--" + key.replace("_", "-"), str(value)]
        if row.get("note"):
            plan.notes.append(row["note"])
