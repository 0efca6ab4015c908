"""``qvdoctor cluster``."""

from __future__ import annotations

from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def cluster(
        address: Optional[str] = typer.Option(None, "--address", help="Ray head HEAD:PORT (default: RAY_ADDRESS or the local cluster)."),
        model: Optional[str] = typer.Option(None, "--model", help="Model directory (the same path on every node) or repo id."),
        tp: Optional[int] = typer.Option(None, "--tp", min=1, help="Tensor parallel size you plan to serve with."),
        pp: Optional[int] = typer.Option(None, "--pp", min=1, help="Pipeline parallel size you plan to serve with."),
        timeout: float = typer.Option(60.0, "--timeout", min=1.0, help="Seconds to wait for each node's answer."),
        gloo_timeout: float = typer.Option(20.0, "--gloo-timeout", min=1.0, help="Seconds the Gloo all-reduce may take to connect."),
        json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="List passing checks too."),
    ) -> int:
        """Check every node of a Ray cluster before a multi-node vLLM launch."""
        from qvdoctor.cluster.command import run

        return run(address=address, model=model, tp=tp, pp=pp, timeout=timeout, gloo_timeout=gloo_timeout,
                   json_out=json_out, verbose=verbose)
