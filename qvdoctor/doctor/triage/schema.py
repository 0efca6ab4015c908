"""Log signatures: the ``[log]`` tables of the check catalogue compiled into patterns."""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass, replace

from qvdoctor.doctor.catalog import CheckEntry, FixSpec, load_catalog
from qvdoctor.doctor.expr import compile_expr
from qvdoctor.errors import QvError

ROLES = ("cause", "warning", "wrapper", "benign")
HINT = "hint"  # internal role of frame/exception patterns: used only when no signature explains the log
NO_ROLE = "none"  # a role expression giving "none": the signature does not apply to this match
ROLE_STATUS = {"cause": "fail", "warning": "warn", "wrapper": "info", "benign": "info"}
BEFORE = 512  # characters of the line a regex may see before the needle
AFTER = 4096  # ... and after it
MAX_TRIES = 100_000  # needle hits examined per needle (hostile logs stay bounded)
MAX_HITS = 20  # matching lines kept per pattern
MAX_EVIDENCE = 3  # evidence lines shown per finding
EVIDENCE_CHARS = 400
_ANSI = re.compile(r"\x1b\[[0-9;]{0,20}[A-Za-z]")
_IDENT = re.compile(r"[A-Za-z_][\w.]{0,120}")
_TOPIC = re.compile(r"[^\n]{3,80}")
_MODULE = re.compile(r"[\w./-]{3,120}")
_NUMBER = re.compile(r"[+-]?\d{1,30}(?:,\d{3}){0,10}")
_FLOAT = re.compile(r"[+-]?\d{1,30}\.\d{1,30}")


# --------------------------------------------------------------------------- signatures


@dataclass(frozen=True)
class Extra:
    """A follow-up regex searched in the next ``within`` lines after a hit (multi-line messages)."""

    regex: re.Pattern[str]
    within: int = 10


@dataclass(frozen=True)
class Pattern:
    entry_id: str
    index: int
    needle: str
    regex: re.Pattern[str] | None
    role: str | None = None  # overrides the signature's role for hits of this pattern
    engine: str = ""  # "V0", "V1", "any": which vLLM wording (documentation)
    extras: tuple[Extra, ...] = ()
    lines_before: int = 0  # the regex window starts this many lines above the needle's line
    lines_after: int = 0  # ... and ends this many lines below it


@dataclass(frozen=True)
class Signature:
    entry: CheckEntry  # title/cause/fix already replaced by the [log] overrides
    patterns: tuple[Pattern, ...]
    role: str  # a role or "=expression" giving one
    explains: tuple[str, ...] = ()
    frames: tuple[str, ...] = ()  # traceback frame names that point here when the message is missing
    exceptions: tuple[str, ...] = ()  # exception types that point here when no message matches
    topics: tuple[str, ...] = ()  # words of this subsystem (rope_scaling, PyAV, c10d...) near the last error
    modules: tuple[str, ...] = ()  # source paths of traceback frames (vllm/multimodal/video) near the last error
    consequence: bool = False  # a line that follows from another failure (an access-log 400): root only when no other cause matched


def _compile(source: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(source)
    except re.error as exc:
        raise QvError(f"{where}: bad regex {source!r}: {exc}")


def signature_of(entry: CheckEntry) -> Signature | None:
    """The compiled ``[log]`` table of an entry (None when it has none)."""
    raw = entry.log
    if not raw:
        return None
    where = f"check entry {entry.path} [log]"
    known = {"role", "title", "cause", "fix", "explains", "patterns", "frames", "exceptions", "topics", "modules", "consequence"}
    if set(raw) - known:
        raise QvError(f"{where}: unknown key(s) {sorted(set(raw) - known)}")
    role = raw.get("role", "cause")
    if not (role in ROLES or (isinstance(role, str) and role.startswith("="))):
        raise QvError(f"{where}: role must be one of {', '.join(ROLES)} or '=expression'")
    patterns = []
    for i, spec in enumerate(raw.get("patterns", [])):
        unknown = set(spec) - {"needle", "regex", "role", "engine", "extra", "lines_before", "lines_after"}
        if unknown or not spec.get("needle"):
            raise QvError(f"{where}: pattern {i + 1} needs a 'needle' (unknown keys: {sorted(unknown)})")
        regex = _compile(spec["regex"], where) if spec.get("regex") else None
        extras = tuple(Extra(_compile(x["regex"], where), int(x.get("within", 10))) for x in spec.get("extra", []))
        prole = spec.get("role")
        if prole is not None and prole not in ROLES:
            raise QvError(f"{where}: pattern {i + 1} role {prole!r} is not one of {', '.join(ROLES)}")
        patterns.append(Pattern(entry.id, i, spec["needle"], regex, prole, spec.get("engine", "any"), extras,
                                int(spec.get("lines_before", 0)), int(spec.get("lines_after", 0))))
        if "`" in spec["needle"]:  # the message as a GitHub thread renders it: `code` spans lose their backticks
            patterns.append(replace(patterns[-1], needle=spec["needle"].replace("`", ""),
                                    regex=_compile(spec["regex"].replace("`", "`?"), where) if spec.get("regex") else None))
    frames = tuple(raw.get("frames", ()))
    exceptions = tuple(raw.get("exceptions", ()))
    topics = tuple(raw.get("topics", ()))
    modules = tuple(raw.get("modules", ()))
    if not (patterns or frames or exceptions or topics or modules):
        raise QvError(f"{where}: no patterns")
    for name in frames + exceptions:
        if not isinstance(name, str) or not (_IDENT.fullmatch(name) or (name == "<module>" and name in frames)):
            raise QvError(f"{where}: frames/exceptions take dotted Python names, not {name!r}")
    for word in topics:
        if not isinstance(word, str) or not _TOPIC.fullmatch(word):
            raise QvError(f"{where}: topics take a literal word or phrase of 3-80 characters, not {word!r}")
    for path in modules:
        if not isinstance(path, str) or not _MODULE.fullmatch(path):
            raise QvError(f"{where}: modules take a source path fragment (vllm/multimodal/video), not {path!r}")
    n = len(patterns)
    for k, name in enumerate(frames):  # 'File "...", line 231, in _check_if_gpu_supports_dtype', also with the path's start cut
        patterns.append(Pattern(entry.id, n + k, f"in {name}", _compile(
            r'(?m)(?:File "[^"\n]{0,400}|^[^"\s]{1,400}\.py)", line \d{1,7}, in ' + re.escape(name) + r'(?!\w)', where), HINT, "frame"))
    n = len(patterns)
    for k, name in enumerate(frames):  # the last frame's source line calls it: '    sanity_check_mm_encoder_outputs(' (cut there)
        patterns.append(Pattern(entry.id, n + k, f"{name}(", _compile(
            r'(?m)^(?:[^\n]{0,300}?\S)?[ \t]{4,40}(?:return |await |[\w.,\[\] ]{1,80} = )?(?:[\w.]{1,120}\.)?'
            + re.escape(name) + r'\(', where), HINT, "call"))
    n = len(patterns)
    for k, name in enumerate(exceptions):  # 'torch.OutOfMemoryError: CUDA out of' (message cut), or IPython's header
        patterns.append(Pattern(entry.id, n + k, name, _compile(  # 'ModuleNotFoundError      Traceback (most recent call last)'
            r'(?m)(?:^|[\s:\]|>)])' + re.escape(name) + r'(?::|[ \t]{2,120}Traceback \(most recent call last\))', where),
            HINT, "exception"))
    n = len(patterns)
    for k, path in enumerate(modules):  # 'File ".../vllm/multimodal/video.py", line 193, in load_bytes' (also cut mid-line)
        patterns.append(Pattern(entry.id, n + k, path, _compile(r'File "[^"\n]{0,400}?' + re.escape(path), where), HINT, "module"))
    n = len(patterns)
    for k, word in enumerate(topics):  # 'ImportError: PyAV is not installed', 'raise KeyError("rope_type")'
        patterns.append(Pattern(entry.id, n + k, word, None, HINT, "topic"))
    fix = entry.fix
    if "fix" in raw:
        try:
            fix = FixSpec(**raw["fix"])  # replaces the facts fix as a whole
        except TypeError as exc:
            raise QvError(f"{where}: malformed [log.fix]: {exc}")
    view = dataclasses.replace(entry, title=raw.get("title", entry.title), cause=raw.get("cause", entry.cause), fix=fix)
    if isinstance(role, str) and role.startswith("="):
        compile_expr(role[1:])
    return Signature(view, tuple(patterns), role, tuple(raw.get("explains", ())), frames, exceptions, topics, modules,
                     bool(raw.get("consequence", False)))


@functools.lru_cache(maxsize=4)
def load_signatures(entries: tuple[CheckEntry, ...] | None = None) -> tuple[Signature, ...]:
    entries = entries if entries is not None else load_catalog()
    return tuple(s for s in (signature_of(e) for e in entries) if s is not None)


# Engine configuration printed at start-up: numbers every fix may use (log.tp, log.max_model_len...).
_CONTEXT = (
    ("with config: ", re.compile(r"\(v(?P<vllm_version>\d{1,3}\.\d{1,3}[\w.+-]{0,30})\) with config: ")),
    ("tensor_parallel_size=", re.compile(r"\btensor_parallel_size=(?P<tp>\d{1,4})")),
    ("pipeline_parallel_size=", re.compile(r"\bpipeline_parallel_size=(?P<pp>\d{1,4})")),
    ("max_seq_len=", re.compile(r"\bmax_seq_len=(?P<max_model_len>\d{1,9})")),
    ("quantization=", re.compile(r"\bquantization=(?P<quantization>\w{1,30})")),
    ("with config: ", re.compile(r"\bdtype=(?:torch\.)?(?P<dtype>\w{1,20})")),
    ("with config: ", re.compile(r"\bmodel=(?P<model>'[^']{1,300}'|[^\s,]{1,300})")),
    ("'gpu_memory_utilization': ", re.compile(r"'gpu_memory_utilization': (?P<gpu_memory_utilization>[\d.]{1,6})")),
    ("gpu_memory_utilization=", re.compile(r"\bgpu_memory_utilization=(?P<gpu_memory_utilization>[\d.]{1,6})")),
    ("'kv_cache_memory_bytes': ", re.compile(r"'kv_cache_memory_bytes': (?P<kv_cache_memory_bytes>\d{1,15})")),
    ("kv_cache_memory_bytes=", re.compile(r"\bkv_cache_memory_bytes=(?P<kv_cache_memory_bytes>\d{1,15})")),
    ("vLLM API server version ", re.compile(r"vLLM API server version (?P<vllm_version>\d{1,3}\.\d{1,3}[\w.+-]{0,30})")),
    # the platform vLLM runs on ("Automatically detected platform cuda.", a plugin's "Platform plugin ascend is activated")
    ("Automatically detected platform ", re.compile(r"Automatically detected platform (?P<platform>\w{1,20})")),
    ("Platform plugin ", re.compile(r"Platform plugin (?P<platform>\w{1,30}) is activated")),
    # vLLM's (and tpu-inference's) TPU platform logging from its own module: "[tpu_platform.py:81] Automatically using ..."
    ("tpu_platform.py:", re.compile(r"(?P<platform>tpu)_platform\.py:\d{1,6}\]")),
    # the start-up banner of vLLM >= 0.11: "▄▄ ▄█ █     █     █ ▀▄▀ █  version 0.32.0"
    ("\u2580\u2584\u2580 \u2588", re.compile(r"\u2580\u2584\u2580 \u2588\s{1,4}version (?P<vllm_version>\d{1,3}\.\d{1,3}[\w.+-]{0,30})")),
)


# --------------------------------------------------------------------------- reading
