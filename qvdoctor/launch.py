"""The launch: one ``vllm serve`` invocation (model, engine flags, environment, vLLM version).

Every command derives, patches, validates and renders this one type: ``plan`` produces it,
check findings patch it (:meth:`Launch.apply`), ``smoke`` runs it, and every command renders it the
same way: :meth:`Launch.command` is one shell-safe line ``ENV=... vllm serve MODEL --flag value``
(values quoted with shlex rules, never wrapped), :meth:`Launch.config_yaml` the file for
``vllm serve --config``, :meth:`Launch.to_json` the ``{"command", "argv", "env"}`` object of
``--json`` (``shlex.split(command) == [f"{k}={v}" for k, v in env] + argv``).

Flag keys are snake_case vLLM engine-argument names (``max_model_len``); values are Python values
(``True`` renders as a bare switch, ``False`` and ``None`` are left out, dicts and lists as compact
JSON). A patch value of ``None`` removes the flag.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

from qvdoctor.doctor.findings import Patch
from qvdoctor.errors import QvError

_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def normalize_key(key: str) -> str:
    """``--max-model-len`` / ``max-model-len`` / ``max_model_len`` -> ``max_model_len``."""
    norm = key.strip().lstrip("-").replace("-", "_").lower()
    if not _KEY.match(norm):
        raise QvError(f"not a vLLM flag name: {key!r}", hint="use names like max_model_len or tensor-parallel-size")
    return norm


def parse_value(text: str) -> Any:
    """A flag value as typed on the command line: JSON when it parses (``4096``, ``0.9``,
    ``true``, ``{"video": 2}``), ``none``/``null`` for "remove the flag", else the string."""
    stripped = text.strip()
    low = stripped.lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    try:
        return json.loads(stripped)
    except ValueError:
        return stripped


def parse_assignment(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` from ``--flag``; env vars are written ``env:NAME=VALUE``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise QvError(f"--flag {text!r} is not KEY=VALUE", hint="e.g. --flag max_model_len=8192 or --flag env:VLLM_USE_V1=1")
    return key.strip(), value


# vLLM 0.13 deprecated VLLM_ATTENTION_BACKEND for --attention-config's backend, and later releases ignore the
# variable (vllm#50292; measured on an H100 with 0.26.0, tests/logs/real/gpu/failures/start-attention-backend-*.log:
# the variable is reported unknown and FLASH_ATTN is used, the flag's TRITON_ATTN is used); the JSON form of the
# flag is read by every release since 0.13 (0.26 and 0.32 checked)
ATTENTION_ENV, ATTENTION_FLAG_SINCE = "VLLM_ATTENTION_BACKEND", "0.13"


def installed_vllm(facts: Any) -> str | None:
    """The vLLM release a facts snapshot shows installed (what a launch without its own release runs)."""
    pkg = facts.packages.get("vllm") if facts is not None else None
    return pkg.version if pkg is not None else None


def takes_attention_flag(vllm_version: str | None) -> bool:
    """Whether ``vllm_version`` selects the attention backend with --attention-config (0.13 on), not the variable."""
    from qvdoctor.compat import version_key, version_lt

    return bool(vllm_version and version_key(vllm_version)) and not version_lt(vllm_version, ATTENTION_FLAG_SINCE)


def for_release(patch: Patch, vllm_version: str | None) -> Patch:
    """``patch`` as ``vllm_version`` takes it: an attention backend is a flag from 0.13 on, not the variable."""
    if ATTENTION_ENV not in patch.env or not takes_attention_flag(vllm_version):
        return patch
    env = {k: v for k, v in patch.env.items() if k != ATTENTION_ENV}
    return Patch({**patch.flags, "attention_config": {"backend": patch.env[ATTENTION_ENV]}}, env)


def _whole(old: Any, new: Any) -> Any:
    """``new`` as a patch value over ``old``: for two dicts, ``new`` plus ``None`` for the keys it dropped."""
    if isinstance(old, dict) and isinstance(new, dict):
        return {**new, **{k: None for k in old if k not in new}}
    return new


def flag_name(key: str) -> str:
    return "--" + key.replace("_", "-")


def flag_args(flags: dict[str, Any]) -> list[str]:
    """``{"max_model_len": 8192, "enforce_eager": True}`` -> ``["--max-model-len", "8192", "--enforce-eager"]``;
    ``False`` is the negated switch (``--no-enable-prefix-caching``: vLLM's switches that are on by default)."""
    args: list[str] = []
    for key, value in flags.items():
        if value is None:
            continue
        if value is True or value is False:
            args.append(flag_name(key) if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, dict):  # a key set to None is one a patch drops
            args += [flag_name(key), json.dumps({k: v for k, v in value.items() if v is not None}, separators=(",", ":"))]
        elif isinstance(value, list):
            args += [flag_name(key), json.dumps(value, separators=(",", ":"))]
        else:
            args += [flag_name(key), str(value)]
    return args


def env_assignments(env: dict[str, str]) -> list[str]:
    """``NAME=VALUE`` words, sorted by name (unquoted: :func:`shlex.join` quotes them)."""
    return [f"{k}={v}" for k, v in sorted(env.items())]


def shell_line(env: dict[str, str], argv: list[str]) -> str:
    """One shell-safe line; ``shlex.split`` of it gives the env words then ``argv`` back."""
    return " ".join([*(_quote_assignment(w) for w in env_assignments(env)), shlex.join(argv)])


def _quote_assignment(word: str) -> str:
    name, _, value = word.partition("=")
    return f"{name}={shlex.quote(value)}"


@dataclass
class Launch:
    """One ``vllm serve`` launch: engine flags plus environment for ``model`` on ``vllm_version``."""

    flags: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    model: str = ""
    vllm_version: str | None = None

    def copy(self) -> "Launch":
        return replace(self, flags=json.loads(json.dumps(self.flags)), env=dict(self.env))

    def apply(self, patch: Patch) -> "Launch":
        """A new launch with ``patch`` applied: ``None`` removes a flag; a dict given for a dict flag
        (``mm_processor_kwargs``, ``limit_mm_per_prompt``, ...) changes only its keys (``None`` removes
        one), so a fix of ``max_pixels`` keeps the user's ``fps``; anything else replaces the value."""
        out = self.copy()
        patch = for_release(patch, self.vllm_version)
        for key, value in patch.flags.items():
            key = normalize_key(key)
            current = out.flags.get(key)
            if value is None:
                out.flags.pop(key, None)
            elif isinstance(value, dict):
                merged = {**current, **value} if isinstance(current, dict) else value
                out.flags[key] = {k: v for k, v in merged.items() if v is not None}
            else:
                out.flags[key] = value
        for name, value in patch.env.items():
            if not _ENV_NAME.match(str(name)):
                raise QvError(f"not an environment variable name: {name!r}")
            out.env[str(name)] = str(value)
        return out

    def apply_all(self, patches: Iterable[Patch]) -> "Launch":
        out = self
        for patch in patches:
            out = out.apply(patch)
        return out

    def patch_to(self, other: "Launch") -> Patch:
        """The patch that turns this launch into ``other`` (flags set or removed, env set); a dict flag
        carries its whole new value, plus ``None`` for each key ``other`` dropped."""
        flags: dict[str, Any] = {k: _whole(self.flags.get(k), v) for k, v in other.flags.items() if self.flags.get(k) != v}
        flags.update({k: None for k in self.flags if k not in other.flags})
        return Patch(flags, {k: v for k, v in other.env.items() if self.env.get(k) != v})

    def with_assignments(self, assignments: list[str]) -> "Launch":
        """Apply ``--flag KEY=VALUE`` overrides (``env:NAME=VALUE`` sets an environment variable)."""
        flags: dict[str, Any] = {}
        env: dict[str, str] = {}
        for text in assignments:
            key, value = parse_assignment(text)
            if key.startswith("env:"):
                env[key[4:]] = value
            else:
                flags[normalize_key(key)] = parse_value(value)
        # a value given on the command line replaces the flag's value, dicts included (as vLLM's parser does)
        return self.apply(Patch(dict.fromkeys(flags))).apply(Patch(flags, env))

    def key(self) -> str:
        """Canonical identity: two launches with equal keys would run the same thing."""
        return json.dumps({"model": self.model, "flags": self.flags, "env": self.env}, sort_keys=True)

    # -- rendering -------------------------------------------------------------------------------
    def argv(self, extra: list[str] | None = None) -> list[str]:
        """``vllm serve MODEL --flag ...`` as an argument vector."""
        return ["vllm", "serve", self.model or "MODEL", *flag_args(self.flags), *(extra or [])]

    def command(self) -> str:
        """The line a user can paste: ``ENV=... vllm serve MODEL --flag ...`` (never wrapped)."""
        return shell_line(self.env, self.argv())

    def to_json(self) -> dict[str, Any]:
        """``{"command", "argv", "env"}``: ``shlex.split(command) == env words + argv``."""
        return {"command": self.command(), "argv": self.argv(), "env": dict(sorted(self.env.items()))}

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "vllm_version": self.vllm_version, "flags": dict(self.flags), "env": dict(self.env)}

    def config_yaml(self, tool: str = "qvdoctor") -> str:
        """A YAML file for ``vllm serve --config FILE`` (kebab-case keys; dicts stay nested, which
        vLLM turns back into JSON; ``False`` is the negated switch there too, ``None`` is left out).
        Environment variables go in a comment: the file cannot set them."""
        import yaml

        lines = [f"# Generated by {tool}. Use: vllm serve --config THIS_FILE"]
        if self.env:
            lines.append("# Set these environment variables first:")
            lines += [f"#   export {_quote_assignment(w)}" for w in env_assignments(self.env)]
        data: dict[str, Any] = {"model": self.model or "MODEL"}
        data.update({k.replace("_", "-"): v for k, v in self.flags.items() if v is not None})
        body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
        return "\n".join(lines) + "\n" + body

    def write(self, *, serve_cmd: Path | None = None, config: Path | None = None, header: str = "") -> dict[str, str]:
        """Write the command (a runnable shell script) and/or the YAML; returns ``{what: path}``."""
        from qvdoctor.fsutil import write_atomic

        out: dict[str, str] = {}
        if serve_cmd is not None:
            text = "#!/usr/bin/env bash\n" + "".join(f"# {h}\n" for h in header.splitlines() if h) + self.command() + "\n"
            out["serve command"] = write_atomic(serve_cmd, text, mode=0o755)
        if config is not None:
            out["config"] = write_atomic(config, self.config_yaml())
        return out


_NOT_FLAGS = {"model", "model_tag", "api_key", "hf_token", "ssl_keyfile"}  # the positional model, and secrets


def launch_from_log(context: dict[str, Any], model: str | None = None) -> Launch:
    """The launch the log describes: the arguments its ``non-default args:`` line gave (secrets and
    lists of several values left out), then TP/PP, max_model_len, dtype read from its config lines."""
    flags: dict[str, Any] = {}
    for key, value in (context.get("args") or {}).items():
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if key not in _NOT_FLAGS and _KEY.match(key) and isinstance(value, (str, int, float, bool, dict)):
            flags[key] = value
    for key, flag in (("tp", "tensor_parallel_size"), ("pp", "pipeline_parallel_size"),
                      ("max_model_len", "max_model_len"), ("dtype", "dtype"),
                      ("gpu_memory_utilization", "gpu_memory_utilization")):
        if context.get(key) is not None:
            flags.setdefault(flag, context[key])
    if isinstance(context.get("limit_mm_per_prompt"), dict):
        flags["limit_mm_per_prompt"] = context["limit_mm_per_prompt"]
    return Launch(flags, {}, model=str(model or context.get("model") or (context.get("args") or {}).get("model") or "").strip("'\""),
                  vllm_version=context.get("vllm_version"))
