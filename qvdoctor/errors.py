"""User-facing errors: one clear line, an optional hint, a non-zero exit code."""

from __future__ import annotations

# Exit codes shared by every command.
EXIT_OK = 0
EXIT_WARN = 1
EXIT_FAIL = 2
EXIT_ERROR = 3  # qvdoctor could not do its job (bad input, unreachable daemon, ...)


class QvError(Exception):
    """An error the user can act on. Rendered as ``error: <message>`` plus ``hint: <hint>``."""

    def __init__(self, message: str, hint: str | None = None, exit_code: int = EXIT_ERROR):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message
