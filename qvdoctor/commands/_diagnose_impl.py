"""Implementation of ``qvdoctor diagnose`` (imported only when the command runs)."""

from __future__ import annotations

import sys
from pathlib import Path

from qvdoctor.doctor.diagnose import diagnose, load_or_gather
from qvdoctor.errors import QvError
from qvdoctor.doctor.render import print_findings, to_json


def run(*, facts: Path | None, save_facts: Path | None, log: str | None, model: str | None, image: str | None,
        probe: bool, json_out: bool, verbose: bool, fmt: str = "text") -> int:
    if fmt not in ("text", "json", "markdown"):
        raise QvError(f"unknown --format {fmt!r}", "use text, json or markdown")
    json_out = json_out or fmt == "json"
    markdown = fmt == "markdown"
    if facts is not None and save_facts is not None:
        raise QvError("--facts and --save-facts do not go together", "--save-facts records this machine; --facts reads a recording")
    if log is not None:
        return run_log(log, facts=facts, model=model, probe=probe, json_out=json_out, verbose=verbose, markdown=markdown)
    snapshot = load_or_gather(facts, probe)
    if save_facts is not None:
        try:
            snapshot.save(save_facts)
        except OSError as exc:
            raise QvError(f"cannot write {save_facts}: {exc.strerror or exc}")
        print(f"facts written to {save_facts}", file=sys.stderr)
    if image is not None:  # judge the image's libraries against this machine's (or --facts') GPUs
        from qvdoctor.image.inspect import inspect_image

        snapshot.libraries = inspect_image(image)
        snapshot.label += f", with the libraries of image {image}"
    model_info, plan = None, None
    if model is not None:  # the plan's model facts and checks (qvdoctor plan)
        from qvdoctor.commands._plan_impl import model_and_plan, plan_names

        model_info, plan = model_and_plan(model, snapshot)
    result = diagnose(snapshot, model=model_info, extra_names=plan_names(plan) if plan is not None else None)
    if plan is not None:
        result.extra["plan"] = plan.to_dict()
    if markdown:
        from qvdoctor.doctor.markdown import markdown_report

        print(markdown_report(result.findings, result.facts, model=model), end="")
    elif json_out:
        print(to_json(result.findings, result.facts, **result.extra))
    else:
        if plan is not None:
            from qvdoctor.plan.render import print_plan

            print_plan(plan)
            print()
        print_findings(result.findings, result.facts, verbose=verbose)
    return result.exit_code


# --- log triage (qvdoctor diagnose --log) ---------------------------------------------------------


def run_log(log: str, *, facts: Path | None, model: str | None, probe: bool, json_out: bool, verbose: bool,
            markdown: bool = False) -> int:
    """Triage a vLLM log; this machine's (or --facts') facts make the fixes concrete.

    Shown: the log findings (root cause, contributing, benign), plus environment findings that
    fail or warn in the root cause's family. Exit 2 known failure, 1 unexplained error or a
    warning, 0 clean log."""
    from qvdoctor.doctor.context import build_context
    from qvdoctor.doctor.rules import run_checks
    from qvdoctor.doctor.triage import read_log, triage_text

    text = read_log(log)  # a missing/unreadable log fails before facts are gathered
    snapshot = load_or_gather(facts, probe)
    model_info = None
    if model is not None:
        from qvdoctor.model.info import load_model_info

        model_info = load_model_info(model)
    names = build_context(snapshot, model=model_info)
    result = triage_text(text, names)
    findings = list(result.findings)
    if result.root is not None:
        env = [f for f in run_checks(names) if f.status in ("fail", "warn") and f.family == result.root.family]
        for f in env:
            f.role = "contributing"
            f.subject = f.subject or "this machine"
            f.patch = type(f.patch)()  # only the root cause's patch is applied
        benign_at = next((i for i, f in enumerate(findings) if f.role == "benign"), len(findings))
        findings[benign_at:benign_at] = env
    source = "stdin" if log == "-" else log
    if markdown:
        from qvdoctor.doctor.markdown import markdown_report

        print(markdown_report(findings, snapshot, source=source, summary=result.summary(), model=model,
                              context=result.context), end="")
        return result.exit_code
    if json_out:
        print(to_json(findings, snapshot, triage={"log": source, **result.summary(), "exit_code": result.exit_code}))
        return result.exit_code
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, soft_wrap=True)
    if result.root is not None:
        where = f" (line {result.root.evidence[0].line})" if result.root.evidence else ""
        console.print(f"[bold]Log {escape(source)}[/]: root cause [red]{result.root.id}[/]{where}")
    elif result.unknown:
        console.print(f"[bold]Log {escape(source)}[/]: [yellow]the log shows an error, but no known signature matches it.[/]")
        console.print(f"  last error line {result.last_error_line_no}: {escape(result.last_error_line or '')}")
    else:
        console.print(f"[bold]Log {escape(source)}[/]: no failure found" + (" (warnings below)" if result.exit_code else "") + ".")
    console.print()
    print_findings(findings, snapshot, console=console, verbose=verbose)
    return result.exit_code
