"""``qvdoctor diagnose``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def diagnose(
        facts: Optional[Path] = typer.Option(None, "--facts", help="Diagnose a saved facts snapshot instead of this machine."),
        save_facts: Optional[Path] = typer.Option(None, "--save-facts", help="Write this machine's facts snapshot to FILE."),
        log: Optional[str] = typer.Option(None, "--log", help="Triage a failed vLLM log (FILE, FILE.gz or - for stdin)."),
        model: Optional[str] = typer.Option(None, "--model", help="Model directory or repo id: add the plan's checks."),
        image: Optional[str] = typer.Option(None, "--image", help="Docker image: check the kernels inside it."),
        probe: bool = typer.Option(False, "--probe", help="Also import torch in an isolated child process (slower)."),
        json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
        fmt: str = typer.Option("text", "--format", help="text, json, or markdown (a redacted report to paste into a bug thread)."),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="Show evidence for passing checks too."),
    ) -> int:
        """Say what will break on this GPU before launch, with the exact fix."""
        from qvdoctor.commands._diagnose_impl import run

        return run(facts=facts, save_facts=save_facts, log=log, model=model, image=image, probe=probe, json_out=json_out,
                   verbose=verbose, fmt=fmt)
