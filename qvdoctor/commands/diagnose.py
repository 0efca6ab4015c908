"""``qvdoctor diagnose``: what will break on this machine (or a snapshot), with the exact fix;
``--log`` names the root cause of a failed run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

from qvdoctor.commands.common import EXIT_CODES_HELP, emit_launch, facts_option
from qvdoctor.errors import QvError

HELP = f"""Say what will break on this GPU before launch, with the exact fix, and the launch that has it.

With --model the launch is the plan's for that model (the same one 'qvdoctor plan' prints);
with --log, the root cause of a failed vLLM run and the flag that fixes it.

Examples: qvdoctor diagnose --facts t4 --model Qwen/Qwen2.5-VL-3B-Instruct
          qvdoctor diagnose --log vllm.log --model /models/Qwen2.5-VL-7B-Instruct

{EXIT_CODES_HELP}"""


def register(app: typer.Typer) -> None:
    @app.command(help=HELP)
    def diagnose(
        facts: Optional[str] = facts_option("Diagnose a facts snapshot (a file, or a shipped machine such as t4, v100, h100) instead of this machine."),
        save_facts: Optional[Path] = typer.Option(None, "--save-facts", help="Write this machine's facts snapshot to FILE."),
        log: Optional[str] = typer.Option(None, "--log", help="Triage a failed vLLM log (FILE, FILE.gz or - for stdin)."),
        model: Optional[str] = typer.Option(None, "--model", help="Model directory or repo id: judge the plan's launch for it."),
        image: Optional[str] = typer.Option(None, "--image", help="Docker image: check the kernels inside it."),
        probe: bool = typer.Option(False, "--probe", help="Also import torch in an isolated child process (slower)."),
        emit_serve_cmd: Optional[Path] = typer.Option(None, "--emit-serve-cmd", help="With --model: write the fixed launch as a shell script."),
        emit_config: Optional[Path] = typer.Option(None, "--emit-config", help="With --model: write the fixed launch as a YAML file for 'vllm serve --config'."),
        json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
        fmt: str = typer.Option("text", "--format", help="text, json, or markdown (a redacted report to paste into a bug thread)."),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="Show evidence for passing checks too."),
    ) -> int:
        return run(locals())


def run(o: dict[str, Any]) -> int:
    from qvdoctor.facts.load import load_or_gather

    fmt = o.get("fmt") or "text"
    if fmt not in ("text", "json", "markdown"):
        raise QvError(f"unknown --format {fmt!r}", "use text, json or markdown")
    o["json_out"] = o.get("json_out") or fmt == "json"
    if o.get("facts") is not None and o.get("save_facts") is not None:
        raise QvError("--facts and --save-facts do not go together", "--save-facts records this machine; --facts reads a recording")
    if (o.get("emit_serve_cmd") or o.get("emit_config")) and not o.get("model"):
        raise QvError("--emit-serve-cmd and --emit-config need --model", "the launch names a model: e.g. --model Qwen/Qwen2.5-VL-7B-Instruct")
    if o.get("log") is not None:
        return run_log(o)
    snapshot = load_or_gather(o.get("facts"), o.get("probe", False))
    if o.get("save_facts") is not None:
        try:
            snapshot.save(o["save_facts"])
        except OSError as exc:
            raise QvError(f"cannot write {o['save_facts']}: {exc.strerror or exc}")
        print(f"facts written to {o['save_facts']}", file=sys.stderr)
    if o.get("image") is not None:  # judge the image's libraries against this machine's (or --facts') GPUs
        from qvdoctor.image.inspect import inspect_image

        snapshot.libraries = inspect_image(o["image"])
        snapshot.label += f", with the libraries of image {o['image']}"
    rx = _prescribe(snapshot, o.get("model"))
    emitted = emit_launch(rx, o.get("emit_serve_cmd"), o.get("emit_config"), "qvdoctor diagnose")
    findings = rx.requested_findings if rx.plan is None else _with_fixed(rx)
    if fmt == "markdown":
        from qvdoctor.doctor.markdown import markdown_report

        print(markdown_report(findings, snapshot, model=o.get("model"), prescription=rx), end="")
        return rx.request_exit_code
    if o.get("json_out"):
        from qvdoctor.doctor.render import prescription_json, to_json

        extra: dict[str, Any] = {**prescription_json(rx), "emitted": emitted, "exit_code": rx.request_exit_code}
        del extra["findings"]  # diagnose reports the request's findings (those the launch fixes marked)
        if rx.plan is not None:
            extra["plan"] = rx.plan.to_dict()
        print(to_json(findings, snapshot, patch=rx.fix_patch(), **extra))
        return rx.request_exit_code
    from rich.console import Console

    from qvdoctor.doctor.render import print_findings, print_launch

    console = Console(highlight=False)
    if rx.plan is not None:
        from qvdoctor.plan.render import print_plan

        print_plan(rx.plan, console)
        console.print()
    print_findings(findings, snapshot, console=console, verbose=o.get("verbose", False))
    if rx.fix_patch() or rx.launch is None or o.get("model"):
        print_launch(rx, console, emitted)
    return rx.request_exit_code


def _prescribe(snapshot: Any, model: str | None) -> Any:
    """Without a model: judge a plain ``vllm serve`` here; with one: the plan's launch for it."""
    from qvdoctor.prescription import prescribe

    if model is None:
        return prescribe(snapshot)
    from qvdoctor.model.info import load_model_info
    from qvdoctor.plan import PlanSettings

    info = load_model_info(model)
    if not snapshot.nvidia.gpus:  # nothing to plan memory for; the model's own checks still run
        return prescribe(snapshot, info)
    return prescribe(snapshot, info, PlanSettings())


def _with_fixed(rx: Any) -> list[Any]:
    """The request's findings, each problem the launch fixes said so."""
    fixed = {(f.id, f.subject) for f in rx.findings if f.status == "fixed"}
    return [f for f in rx.findings if f.status == "fixed"] + [f for f in rx.requested_findings if (f.id, f.subject) not in fixed]


# --- log triage (qvdoctor diagnose --log) ---------------------------------------------------------


def _local_model(name: Any) -> Any:
    """The model a log names, read only if it is a local directory or in the local HF cache (no network)."""
    from qvdoctor.model.info import load_model_info
    from qvdoctor.model.registry import find

    name = str(name or "").strip("'\"")
    if not name:
        return None
    local = Path(name).expanduser()
    hit = find(name) if not local.is_dir() and name.count("/") == 1 else None
    found = local if local.is_dir() else (hit.directory if hit is not None else None)
    if found is None:
        return None
    try:
        return load_model_info(found)
    except QvError:
        return None


def run_log(o: dict[str, Any]) -> int:
    """Triage a vLLM log; this machine's (or --facts') facts and --model make the fixes concrete.

    Shown: the log findings (root cause, contributing, benign), plus environment findings that
    fail or warn in the root cause's family. Exit 2 known failure, 1 unexplained error or a
    warning, 0 clean log."""
    from qvdoctor.doctor.context import build_context
    from qvdoctor.facts.load import load_or_gather
    from qvdoctor.doctor.render import print_findings, to_json
    from qvdoctor.doctor.rules import run_checks
    from qvdoctor.doctor.triage import read_log, triage_text
    from qvdoctor.doctor.triage.stages import CUT_ID

    log = o["log"]
    text = read_log(log)  # a missing/unreadable log fails before facts are gathered
    snapshot = load_or_gather(o.get("facts"), o.get("probe", False))
    model_info = None
    if o.get("model") is not None:
        from qvdoctor.model.info import load_model_info

        model_info = load_model_info(o["model"])
    names = build_context(snapshot, model=model_info)
    result = triage_text(text, names)
    if model_info is None:  # the model the log's engine config names, when it is on this machine
        model_info = _local_model(result.context.get("model"))
    findings = list(result.findings)
    if result.root is not None:
        from qvdoctor.consistency import repair_patch
        from qvdoctor.launch import installed_vllm, launch_from_log

        root = result.root
        base = launch_from_log(result.context, getattr(model_info, "serve_as", "") or None)  # the launch the log ran
        base.vllm_version = base.vllm_version or installed_vllm(snapshot)  # as the fix texts read it
        root.patch, notes = repair_patch(root.patch, base, model_info, snapshot)
        if notes:  # the log's numbers alone led elsewhere: say the fix that holds, and why
            import shlex

            from qvdoctor.launch import flag_args

            root.fix = f"Use {shlex.join(flag_args(root.patch.flags))}: " + "; ".join(notes) + "."
        env = [f for f in run_checks(names) if f.status in ("fail", "warn") and f.family == root.family]
        for f in env:
            f.role = "contributing"
            f.subject = f.subject or "this machine"
            f.patch = type(f.patch)()  # only the root cause's patch is applied
        benign_at = next((i for i, f in enumerate(findings) if f.role == "benign"), len(findings))
        findings[benign_at:benign_at] = env
    source = "stdin" if log == "-" else log
    if o.get("fmt") == "markdown":
        from qvdoctor.doctor.markdown import markdown_report

        print(markdown_report(findings, snapshot, source=source, summary=result.summary(), model=o.get("model"),
                              context=result.context), end="")
        return result.exit_code
    if o.get("json_out"):
        print(to_json(findings, snapshot, triage={"log": source, **result.summary(), "exit_code": result.exit_code}))
        return result.exit_code
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, soft_wrap=True)
    if result.root is not None:
        where = f" (line {result.root.evidence[0].line})" if result.root.evidence else ""
        console.print(f"[bold]Log {escape(source)}[/]: root cause [red]{result.root.id}[/]{where}")
    elif result.unknown and result.findings[0].id == CUT_ID:
        frame = result.findings[0].evidence[0]
        console.print(f"[bold]Log {escape(source)}[/]: [yellow]the copy stops inside a traceback, before its error line.[/]")
        console.print(f"  last frame, line {frame.line}: {escape(frame.text)}")
    elif result.unknown:
        console.print(f"[bold]Log {escape(source)}[/]: [yellow]the log shows an error, but no known signature matches it.[/]")
        console.print(f"  last error line {result.last_error_line_no}: {escape(result.last_error_line or '')}")
    else:
        console.print(f"[bold]Log {escape(source)}[/]: no failure found" + (" (warnings below)" if result.exit_code else "") + ".")
    console.print()
    print_findings(findings, snapshot, console=console, verbose=o.get("verbose", False))
    return result.exit_code
