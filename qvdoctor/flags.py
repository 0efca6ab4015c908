"""vLLM launch flags: apply patches, render ``vllm serve`` arguments and shell fragments."""

from __future__ import annotations

import json
import shlex
from typing import Any, Iterable

from qvdoctor.doctor.findings import Patch


def apply_patches(flags: dict[str, Any], env: dict[str, str], patches: Iterable[Patch]) -> tuple[dict[str, Any], dict[str, str]]:
    """New flag and env tables with every patch applied in order; ``None`` removes a flag."""
    flags, env = dict(flags), dict(env)
    for patch in patches:
        for key, value in patch.flags.items():
            if value is None:
                flags.pop(key, None)
            else:
                flags[key] = value
        env.update(patch.env)
    return flags, env


def flag_name(key: str) -> str:
    return "--" + key.replace("_", "-")


def flag_args(flags: dict[str, Any]) -> list[str]:
    """``{"max_model_len": 8192, "enforce_eager": True}`` -> ``["--max-model-len", "8192", "--enforce-eager"]``."""
    args: list[str] = []
    for key, value in flags.items():
        if value is None or value is False:
            continue
        if value is True:
            args.append(flag_name(key))
        elif isinstance(value, (dict, list)):
            args += [flag_name(key), json.dumps(value, separators=(",", ":"))]
        else:
            args += [flag_name(key), str(value)]
    return args


def env_prefix(env: dict[str, str]) -> str:
    return " ".join(f"{k}={shlex.quote(str(v))}" for k, v in sorted(env.items()))


def serve_command(model: str, flags: dict[str, Any], env: dict[str, str] | None = None) -> str:
    """The exact shell line: ``ENV=.. vllm serve MODEL --flag value ...``."""
    line = shlex.join(["vllm", "serve", model, *flag_args(flags)])
    prefix = env_prefix(env or {})
    return f"{prefix} {line}" if prefix else line
