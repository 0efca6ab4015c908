"""``qvdoctor kernels PATH... [--cc X.Y]``: the SASS and PTX architectures in CUDA libraries."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    app.command(
        "kernels",
        help=(
            "List the SASS (sm_XY) and PTX (compute_XY) architectures compiled into CUDA shared "
            "libraries, and with --cc whether they can run on that compute capability. "
            "Exit 0: all run (or no --cc), 2: something cannot run or cannot be read, 3: bad input.\n\n"
            "Example: qvdoctor kernels .venv/lib/python3.11/site-packages/torch/lib --cc 7.5"
        ),
    )(kernels)


def kernels(
    paths: List[Path] = typer.Argument(..., metavar="PATH", help="Shared libraries, or directories to search for *.so* files."),
    cc: Optional[str] = typer.Option(None, "--cc", help="Compute capability to check, e.g. 7.5."),
    driver_cuda: Optional[str] = typer.Option(
        None, "--driver-cuda", help="CUDA version the driver supports (nvidia-smi 'CUDA Version'), e.g. 12.4; rules out PTX too new to JIT."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
    show_all: bool = typer.Option(False, "--all", help="In directories, also list libraries without device code."),
) -> int:
    from qvdoctor.errors import EXIT_FAIL, EXIT_OK
    from qvdoctor.kernels.report import check_version, collect, render_json, render_table

    check_version(cc, "--cc", "7.5")
    check_version(driver_cuda, "--driver-cuda", "12.4")
    rows, hidden = collect(paths, cc, driver_cuda, show_all)
    if json_out:
        render_json(rows)
    else:
        render_table(rows, hidden, cc, driver_cuda)
    failed = any(row.archs.error or row.runs_on is False for row in rows)
    return EXIT_FAIL if failed else EXIT_OK
