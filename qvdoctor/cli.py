"""The ``qvdoctor`` command line. Command modules register themselves; each imports its
implementation only when it runs, so ``qvdoctor --help`` stays fast."""

from __future__ import annotations

import os
import sys

import typer

try:  # typer >= 0.20 vendors its own click
    from typer._click import exceptions as _click_exceptions
except ImportError:  # pragma: no cover - older typer
    from click import exceptions as _click_exceptions

from qvdoctor import __version__
from qvdoctor.errors import EXIT_ERROR, QvError

app = typer.Typer(
    name="qvdoctor",
    help="Get Qwen2.5-VL from nothing to serving on vLLM: fetch, diagnose, plan, build-image, smoke.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

COMMAND_MODULES = ("diagnose", "kernels", "plan", "fetch", "image", "smoke", "cluster", "bench", "monitor")


def _version(value: bool) -> None:
    if value:
        print(f"qvdoctor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """qvdoctor"""


def _register() -> None:
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"qvdoctor.commands.{name}").register(app)


_JSON = False  # --json on the command line: errors also come as a JSON object on stdout


def _say_error(message: str, hint: str | None = None, exit_code: int = EXIT_ERROR) -> None:
    print(f"error: {message}", file=sys.stderr)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)
    if _JSON:
        import json

        print(json.dumps({"error": {"message": message, "hint": hint, "exit_code": exit_code}}))


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one line per error, never a traceback (QVDOCTOR_DEBUG=1 shows it)."""
    global _JSON
    _JSON = "--json" in (sys.argv[1:] if argv is None else argv)
    _register()
    try:
        result = app(args=argv, standalone_mode=False)
    except QvError as exc:
        _say_error(exc.message, exc.hint, exc.exit_code)
        sys.exit(exc.exit_code)
    except _click_exceptions.NoArgsIsHelpError as exc:
        print(exc.ctx.get_help() if exc.ctx else "")
        sys.exit(0)
    except _click_exceptions.UsageError as exc:
        cmd = exc.ctx.command_path if exc.ctx else "qvdoctor"
        _say_error(exc.format_message().splitlines()[0], f"run '{cmd} --help' for usage")
        sys.exit(EXIT_ERROR)
    except typer.Exit as exc:
        if exc.exit_code == 130:  # typer turns Ctrl-C into Exit(130)
            _say_error("interrupted", exit_code=130)
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _say_error("interrupted", exit_code=130)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(EXIT_ERROR)
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if os.environ.get("QVDOCTOR_DEBUG"):
            raise
        _say_error(f"qvdoctor internal error: {type(exc).__name__}: {exc}", "re-run with QVDOCTOR_DEBUG=1 for the traceback and report it")
        sys.exit(EXIT_ERROR)
    sys.exit(result if isinstance(result, int) else 0)
