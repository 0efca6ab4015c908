"""The smoke report: every attempt, the flags that worked, the command to serve with, the metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qvdoctor.smoke.attempts import Attempt


@dataclass
class SmokeReport:
    ok: bool
    backend: str
    model: str
    video: dict[str, Any]
    attempts: list[Attempt]
    final_flags: dict[str, Any]
    final_env: dict[str, str]
    serve_command: str
    serve_command_verified: bool  # True when this exact launch served the video (vllm / vllm-serve)
    metrics: dict[str, Any]
    production_command: str = ""  # the verified launch without the test clip's limits, re-validated
    production_changes: list[str] = field(default_factory=list)  # how it differs from serve_command
    explanation: str | None = None
    plan_notes: list[str] = field(default_factory=list)
    workdir: str = ""
    emitted: dict[str, str] = field(default_factory=dict)  # "serve_cmd" / "config" -> path

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "backend": self.backend,
            "model": self.model,
            "video": self.video,
            "attempts": [a.to_dict() for a in self.attempts],
            "final_flags": self.final_flags,
            "final_env": self.final_env,
            "serve_command": self.serve_command,
            "serve_command_verified": self.serve_command_verified,
            "production_command": self.production_command,
            "production_changes": self.production_changes,
            "metrics": self.metrics,
            "explanation": self.explanation,
            "plan_notes": self.plan_notes,
            "workdir": self.workdir,
            "emitted": self.emitted,
        }


def metrics_of(attempt: Attempt | None, frames: int, frame_hw: tuple[int, int], device: str) -> dict[str, Any]:
    """The metrics of the successful attempt (None where not measured)."""
    r = attempt.result if attempt else {}
    gpu = attempt.peak_gpu_bytes if attempt else None
    if gpu:
        peak, source = gpu, attempt.gpu_source or "GPU memory (pynvml)"
    else:
        peak, source = (attempt.peak_rss_bytes if attempt else None), "RSS of the engine processes (sum over the process group)"
    out = {
        "ttft_s": _round(r.get("ttft_s"), 4),
        "decode_tokens_per_s": _round(r.get("decode_tokens_per_s"), 2),
        "prompt_tokens": r.get("prompt_tokens"),
        "generated_tokens": r.get("generated_tokens"),
        "frames": frames,
        "frame_height": frame_hw[0],
        "frame_width": frame_hw[1],
        "visual_tokens": r.get("visual_tokens"),
        "visual_tokens_source": "counted in the prompt token ids" if r.get("visual_tokens") is not None else None,
        "peak_memory_bytes": peak,
        "peak_memory_source": source,
        "engine_load_s": _round(r.get("load_s"), 2),
        "timing_source": r.get("timing_source"),
        "device": device,
        "answer": r.get("text"),
    }
    for key in ("torch_peak_allocated_bytes", "gpu_name", "dtype", "ttft_client_s"):
        if key in r:
            out[key] = r[key]
    return out


def _round(value: Any, digits: int) -> Any:
    return round(value, digits) if isinstance(value, (int, float)) else value


def _mib(n: int | None) -> str:
    return "n/a" if not n else f"{n / 2**20:,.0f} MiB"


def render_text(report: SmokeReport) -> str:
    lines = [f"qvdoctor smoke: {report.model} on {report.backend}"]
    v = report.video
    lines.append(f"  video: {v.get('source')} -> {v.get('frames')} frames of {v.get('width')}x{v.get('height')}"
                 f" ({v.get('visual_tokens_expected')} visual tokens expected per video, {v.get('num_videos')} video(s))")
    for a in report.attempts:
        status = "ok" if a.ok else "FAILED"
        lines.append(f"  attempt {a.number}: {status} in {a.seconds:.0f} s  (log: {a.log})")
        flags = " ".join(f"{k}={v}" for k, v in a.flags.items())
        lines.append(f"    flags: {flags}")
        if a.env:
            lines.append("    env:   " + " ".join(f"{k}={v}" for k, v in a.env.items()))
        if a.finding:
            lines.append(f"    cause: [{a.finding['id']}] {a.finding.get('cause') or a.finding.get('title')}")
            for ev in a.finding.get("evidence", [])[:2]:
                where = f"line {ev['line']}: " if ev.get("line") else ""
                lines.append(f"      {where}{ev['text']}")
        elif a.error and not a.ok:
            lines.append(f"    error: {a.error}")
        if a.patch_applied:
            changes = {**a.patch_applied.get("flags", {}), **a.patch_applied.get("env", {})}
            lines.append("    patch: " + ", ".join(f"{k}={v}" for k, v in changes.items()) + f"  (fix for {a.patch_applied['reason']})")
    m = report.metrics
    if report.ok:
        lines.append("  result: ok")
        lines.append(f"    time to first token: {m.get('ttft_s')} s; decode: {m.get('decode_tokens_per_s')} tokens/s "
                     f"({m.get('generated_tokens')} tokens; prompt {m.get('prompt_tokens')} tokens, "
                     f"{m.get('visual_tokens')} visual)")
        lines.append(f"    peak memory: {_mib(m.get('peak_memory_bytes'))} ({m.get('peak_memory_source')})")
        lines.append(f"    answer: {str(m.get('answer') or '')[:120]!r}")
    else:
        lines.append("  result: no attempt succeeded")
        if report.explanation:
            lines.append(f"    why: {report.explanation}")
    if not report.ok:
        label = "last flags tried (they did not work)"
    elif report.serve_command_verified:
        label = "serve with"
    else:
        label = "serve with (planned, not run on vLLM here)"
    lines.append(f"  {label}:")
    lines.append(f"    {report.serve_command}")
    if report.ok and report.production_command and report.production_command != report.serve_command:
        lines.append("  for production (the test clip's limits dropped, checked by qvdoctor's rules, not run):")
        lines.append(f"    {report.production_command}")
        lines += [f"    - {c}" for c in report.production_changes]
    for note in report.plan_notes:
        if "'vllm' command" in note:
            lines.append(f"    note: {note}")
    for what, path in report.emitted.items():
        lines.append(f"  wrote {what}: {path}")
    return "\n".join(lines)
