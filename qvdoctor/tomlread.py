"""TOML reading on Python 3.10 to 3.13: ``tomllib`` where the standard library has it, else the
``tomli`` backport (the same API)."""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised by the Python 3.10 CI run
    import tomli as tomllib

loads = tomllib.loads
TOMLDecodeError = tomllib.TOMLDecodeError
