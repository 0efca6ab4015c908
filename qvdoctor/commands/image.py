"""``qvdoctor build-image`` and ``qvdoctor inspect-image``: vLLM images with kernels for one GPU."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    app.command(
        "build-image",
        help=(
            "Build a vLLM image whose torch / vLLM / xformers kernels cover one compute capability, "
            "and prove it: a verify stage runs qvdoctor's kernel reader over the installed libraries "
            "and fails the build when the cc is not covered. Exit 0: built, 2: verification failed, "
            "3: refused or could not build.\n\nExample: qvdoctor build-image --cc 7.5 --driver 550.127.05"
        ),
    )(build_image)
    app.command(
        "inspect-image",
        help=(
            "List the SASS / PTX archs of the torch, vLLM, xformers, flash-attn and flashinfer "
            "libraries inside a local image (its layers are read; no container runs), and with --cc "
            "whether it runs there. Exit 0: runs (or no --cc), 2: it does not, 3: error.\n\n"
            "Example: qvdoctor inspect-image vllm/vllm-openai:latest --cc 7.5"
        ),
    )(inspect_image)


def build_image(
    cc: Optional[str] = typer.Option(None, "--cc", help="Target compute capability, e.g. 7.5 (nvidia-smi --query-gpu=compute_cap --format=csv)."),
    facts: Optional[str] = typer.Option(
        None, "--facts", help="Take --cc and --driver from a facts snapshot of the target: a file ('qvdoctor diagnose --save-facts FILE' there) or a shipped name such as t4."
    ),
    cuda: Optional[str] = typer.Option(None, "--cuda", help="CUDA of the stack: 11.8, 12.1, 12.4, 12.6, 12.8, 12.9 or 13.0 (default: chosen)."),
    vllm: Optional[str] = typer.Option(None, "--vllm", help="vLLM release from the build matrix (default: the newest that fits)."),
    python: Optional[str] = typer.Option(None, "--python", help="Python version in the image, e.g. 3.10."),
    driver: Optional[str] = typer.Option(None, "--driver", help="NVIDIA driver of the target machine (nvidia-smi), e.g. 535.104.05: only CUDA versions it runs."),
    tag: Optional[str] = typer.Option(None, "--tag", "-t", help="Image tag (default qvdoctor/vllm:<vllm>-cu<cuda>-sm<cc>)."),
    base: Optional[str] = typer.Option(None, "--base", help="Base image instead of nvidia/cuda:<cuda>-runtime-ubuntu22.04."),
    build_arg: List[str] = typer.Option([], "--build-arg", help="Override a build arg, KEY=VALUE (repeatable)."),
    wheelhouse: Optional[Path] = typer.Option(
        None, "--wheelhouse", help="Install every wheel from this directory with pip --no-index (offline builds); the build then runs with --network none."
    ),
    network: Optional[str] = typer.Option(None, "--network", help="Network mode of the build containers (default: none with --wheelhouse, else Docker's default)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the rendered Dockerfile and build args; needs no Docker daemon."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="With --dry-run: write the Dockerfile here instead of printing it."),
    push: bool = typer.Option(False, "--push", help="Push the tag after a verified build."),
) -> None:
    import sys
    import tempfile

    from qvdoctor.errors import QvError
    from qvdoctor.image import build as builder
    from qvdoctor.image.render import build_args, make_context, offline_args, render_dockerfile
    from qvdoctor.image.resolve import resolve

    if facts is not None:
        from qvdoctor.image.target import target_from_facts

        target = target_from_facts(facts)
        cc = cc or target.cc  # an explicit --cc / --driver wins over the snapshot
        driver = driver or target.driver
        print(f"build-image: target {target.describe()}", file=sys.stderr)
    if cc is None:
        raise QvError("build-image needs the target's compute capability",
                      hint="pass --facts FILE|NAME (a snapshot of the target, e.g. --facts t4) or --cc, e.g. --cc 7.5")
    plan = resolve(cc, cuda=cuda, vllm=vllm, python=python, driver=driver)
    command = "qvdoctor build-image " + " ".join(
        f"{flag} {value}" for flag, value in (("--cc", cc), ("--cuda", cuda), ("--vllm", vllm), ("--python", python), ("--driver", driver)) if value
    )
    dockerfile = render_dockerfile(plan, command)
    args = build_args(plan)
    if wheelhouse is not None:
        args.update(offline_args(plan))
    if base:
        args["BASE_IMAGE"] = base
    for item in build_arg:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise QvError(f"--build-arg must be KEY=VALUE, got {item!r}")
        args[key] = value
    tag = tag or f"qvdoctor/vllm:{plan.vllm}-cu{plan.cuda.replace('.', '')}-sm{plan.cc.replace('.', '')}"

    if dry_run:
        arg_lines = "".join(f"# --build-arg {k}={v}\n" for k, v in args.items())
        text = dockerfile + "\n# Build args build-image passes (same as the ARG defaults unless overridden):\n" + arg_lines
        if output:
            from qvdoctor.fsutil import write_atomic

            write_atomic(output, text)
            print(f"wrote {output} ({plan.summary})", file=sys.stderr)
        else:
            sys.stdout.write(text)
        return

    client = builder.connect()
    print(f"build-image: {plan.summary}", file=sys.stderr)
    for reason in plan.reasons:
        print(f"  why: {reason}", file=sys.stderr)
    mode = network or ("none" if wheelhouse is not None else None)
    with tempfile.TemporaryDirectory(prefix="qvdoctor-build-") as tmp:
        context = make_context(plan, Path(tmp), dockerfile, wheelhouse)
        result = builder.build(client, context, tag, args, mode)
    print(f"built {tag} ({result.image_id[:19]}): torch / vLLM kernels verified for cc {plan.cc}")
    for note in plan.notes:
        print(f"  note: {note}")
    if push:
        builder.push(client, tag)
        print(f"pushed {tag}")


def inspect_image(
    image: str = typer.Argument(..., help="A local image: name[:tag] or id."),
    cc: Optional[str] = typer.Option(None, "--cc", help="Compute capability to check, e.g. 7.5."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> int:
    import json
    import sys
    from dataclasses import asdict

    from qvdoctor.errors import EXIT_FAIL, EXIT_OK
    from qvdoctor.image.inspect import inspect_image_report
    from qvdoctor.kernels.report import check_version

    check_version(cc, "--cc", "7.5")
    report = inspect_image_report(image, cc=cc)
    if json_out:
        data = {
            "image": report.ref, "id": report.image_id, "built_for_cc": report.built_for, "cc": cc,
            "runs_on": (not report.failures) if cc else None, "failures": report.failures,
            "labels": report.labels, "libraries": [asdict(lib) for lib in report.libraries],
        }
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        _render(report)
    return EXIT_FAIL if report.failures else EXIT_OK


def _render(report) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False)
    built = f", built for cc {report.built_for}" if report.built_for else ""
    console.print(f"{escape(report.ref)} ({report.image_id[:19]}{built})")
    sites = sorted({lib.image_path[: -len(lib.path)].rstrip("/") for lib in report.libraries})
    if sites:
        console.print(f"libraries under {', '.join(escape(s) for s in sites)}")
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("library", "SASS", "PTX") + ((f"runs on {report.cc}",) if report.cc else ()):
        table.add_column(column, overflow="fold")
    for lib in report.libraries:
        cells = [escape(lib.path), " ".join(lib.sass) or "-", " ".join(lib.ptx) or "-"]
        if lib.error:
            cells[1:3] = [f"[red]error: {escape(lib.error)}[/red]", ""]
        if report.cc:
            cells.append("[green]✔ yes[/green]" if lib.runs else "[yellow]– unused here[/yellow]" if lib.optional else "[red]✖ no[/red]" if lib.runs is False else "?")
        table.add_row(*cells)
    if report.libraries:
        console.print(table)
    else:
        console.print("no CUDA libraries of torch / vLLM / xformers / flash-attn / flashinfer in this image")
    for lib in report.libraries:
        if lib.optional:
            console.print(f"[dim]note: {escape(lib.path)}: {lib.reason}; fine: {lib.optional}[/dim]", soft_wrap=True)
    for line in report.failures:
        console.print(f"[red]✖[/red] {escape(line)}", soft_wrap=True)
    if report.cc:
        console.print(f"[red]does not run on cc {report.cc}[/red]" if report.failures else f"[green]runs on cc {report.cc}[/green]")
