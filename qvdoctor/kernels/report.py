"""Scan the paths given to ``qvdoctor kernels`` and render the result as a table or JSON."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from qvdoctor.errors import QvError
from qvdoctor.kernels.archs import KernelArchs
from qvdoctor.kernels.rules import parse_version
from qvdoctor.kernels.scan import expand_paths, is_foreign, scan_file


@dataclass
class Row:
    archs: KernelArchs
    runs_on: bool | None  # None without --cc, or when the file could not be read
    reason: str | None  # why it cannot run on --cc

    def to_dict(self) -> dict:
        data = self.archs.to_dict()
        data["runs_on"] = self.runs_on
        data["reason"] = self.reason
        return data


def check_version(value: str | None, option: str, example: str) -> None:
    if value is None:
        return
    try:
        parse_version(value)
    except ValueError:
        raise QvError(f"{option} must be MAJOR.MINOR such as {example}, got {value!r}", hint=f"e.g. '{option} {example}'") from None


def collect(paths: list[Path], cc: str | None, driver_cuda: str | None, show_all: bool) -> tuple[list[Row], int]:
    """Scan every file; return the rows to show and how many device-code-free libraries were hidden.

    Files named explicitly are always shown; in directories, files that are not ELF (linker
    scripts named libfoo.so) are skipped and libraries without device code are hidden unless
    ``show_all``. A damaged library (truncated, unreadable) is always shown, with its error."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise QvError(f"no such file or directory: {missing[0]}", hint="give shared libraries (.so) or directories that contain them")
    rows, hidden, seen_any = [], 0, False
    for path, explicit in expand_paths(paths):
        seen_any = True
        if not explicit and is_foreign(path):
            continue
        archs = scan_file(path)
        if not explicit and not show_all and not archs.has_device_code and not archs.error:
            hidden += 1
            continue
        rows.append(_row(archs, cc, driver_cuda))
    if not seen_any:
        raise QvError(f"no shared libraries (*.so*) under {', '.join(map(str, paths))}")
    return rows, hidden


def _row(archs: KernelArchs, cc: str | None, driver_cuda: str | None) -> Row:
    if cc is None or archs.error:
        return Row(archs, None, None)
    reason = archs.missing_reason(cc, driver_cuda)
    return Row(archs, reason is None, reason)


def render_json(rows: list[Row]) -> None:
    sys.stdout.write(json.dumps([row.to_dict() for row in rows], indent=2) + "\n")


def render_table(rows: list[Row], hidden: int, cc: str | None, driver_cuda: str | None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(show_lines=False, pad_edge=False, box=None, header_style="bold")
    table.add_column("library", overflow="fold")
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("SASS", overflow="fold")
    table.add_column("PTX", overflow="fold")
    if cc:
        table.add_column(f"runs on {cc}", no_wrap=True)
    for row in rows:
        archs = row.archs
        cells = [escape(archs.path), _size(archs.size)]
        if archs.error:
            cells += [f"[red]error: {escape(archs.error)}[/red]", ""]
        elif not archs.has_device_code:
            cells += ["[dim]no device code[/dim]", ""]
        else:
            cells += [" ".join(archs.sass) or "-", " ".join(archs.ptx) or "-"]
        if cc:
            cells.append({True: "[green]✔ yes[/green]", False: "[red]✖ no[/red]", None: "[yellow]? unknown[/yellow]"}[row.runs_on])
        table.add_row(*cells)
    console.print(table)
    for row in rows:
        if row.reason:
            console.print(f"[red]✖[/red] {escape(row.archs.path)}: {row.reason}", soft_wrap=True)
    if hidden:
        console.print(f"[dim]{hidden} libraries without device code not shown (--all lists them)[/dim]")
    if cc:
        bad = sum(1 for row in rows if row.runs_on is False)
        unreadable = sum(1 for row in rows if row.archs.error)
        driver = f" with a CUDA {driver_cuda} driver" if driver_cuda else ""
        summary = f"{len(rows) - bad - unreadable} of {len(rows)} libraries run on cc {cc}{driver}"
        if bad:
            summary += f"; {bad} have no kernel image for it"
        if unreadable:
            summary += f"; {unreadable} could not be read"
        console.print(summary)


def _size(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)
