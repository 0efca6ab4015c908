"""Log triage: find the known failure signatures in a vLLM log and name the root cause.

Signatures are the ``[log]`` tables of the check catalogue (``checks/``; schema in
``docs/checks.md``). Matching is built to stay linear on 100 MB logs and hostile lines:

* every pattern has a literal ``needle``; the text is scanned with ``str.find`` (C speed), never
  with a regex over the whole log; on big logs ``grep -F`` first keeps the lines that contain any
  needle (one C pass for all of them), with the same result;
* a pattern's ``regex`` runs only on a bounded window of the line around the needle (at most
  ``BEFORE`` characters before it and ``AFTER`` after it), so a 1 MB line costs no more than a
  short one, and patterns themselves avoid nested quantifiers (a test checks both);
* numbers in the message become ``log.<group>`` for the entry's templates, so fixes are computed
  from them (``max_model_len = log.estimated``...).

Ranking: the root cause is the earliest *cause* hit (wrappers such as "Engine core initialization
failed" never are); a matched signature that ``explains`` the root (a warning that predicts it)
takes its place. Other causes and warnings follow as contributing, then benign lines as
"not a problem".
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import gzip
import io
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from qvdoctor.catalog import CheckEntry, FixSpec, load_catalog
from qvdoctor.engine import make_finding
from qvdoctor.errors import QvError
from qvdoctor.expr import ExprError, compile_expr, evaluate
from qvdoctor.findings import Evidence, Finding, Patch

ROLES = ("cause", "warning", "wrapper", "benign")
ROLE_STATUS = {"cause": "fail", "warning": "warn", "wrapper": "info", "benign": "info"}
BEFORE = 512  # characters of the line a regex may see before the needle
AFTER = 4096  # ... and after it
MAX_TRIES = 100_000  # needle hits examined per needle (hostile logs stay bounded)
MAX_HITS = 20  # matching lines kept per pattern
MAX_EVIDENCE = 3  # evidence lines shown per finding
EVIDENCE_CHARS = 400
_ANSI = re.compile(r"\x1b\[[0-9;]{0,20}[A-Za-z]")
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
    known = {"role", "title", "cause", "fix", "explains", "patterns"}
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
    if not patterns:
        raise QvError(f"{where}: no patterns")
    fix = entry.fix
    if "fix" in raw:
        try:
            fix = FixSpec(**raw["fix"])  # replaces the facts fix as a whole
        except TypeError as exc:
            raise QvError(f"{where}: malformed [log.fix]: {exc}")
    view = dataclasses.replace(entry, title=raw.get("title", entry.title), cause=raw.get("cause", entry.cause), fix=fix)
    if isinstance(role, str) and role.startswith("="):
        compile_expr(role[1:])
    return Signature(view, tuple(patterns), role, tuple(raw.get("explains", ())))


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
    ("with config: ", re.compile(r"\bdtype=(?:torch\.)?(?P<dtype>\w{1,20})")),
    ("with config: ", re.compile(r"\bmodel=(?P<model>'[^']{1,300}'|[^\s,]{1,300})")),
    ("'gpu_memory_utilization': ", re.compile(r"'gpu_memory_utilization': (?P<gpu_memory_utilization>[\d.]{1,6})")),
    ("gpu_memory_utilization=", re.compile(r"\bgpu_memory_utilization=(?P<gpu_memory_utilization>[\d.]{1,6})")),
    ("'kv_cache_memory_bytes': ", re.compile(r"'kv_cache_memory_bytes': (?P<kv_cache_memory_bytes>\d{1,15})")),
    ("kv_cache_memory_bytes=", re.compile(r"\bkv_cache_memory_bytes=(?P<kv_cache_memory_bytes>\d{1,15})")),
    ("vLLM API server version ", re.compile(r"vLLM API server version (?P<vllm_version>\d{1,3}\.\d{1,3}[\w.+-]{0,30})")),
)


# --------------------------------------------------------------------------- reading


def read_log(path: str) -> str:
    """The text of a log file: ``-`` reads stdin; gzip is recognised by its magic bytes."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
        else:
            data = Path(path).read_bytes()
    except FileNotFoundError:
        raise QvError(f"log file not found: {path}", "pass the file vLLM's output was saved to, or - to read stdin")
    except IsADirectoryError:
        raise QvError(f"{path} is a directory, not a log file")
    except OSError as exc:
        raise QvError(f"cannot read log {path}: {exc.strerror or exc}")
    if data[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as handle:
                data = handle.read()
        except (OSError, EOFError) as exc:
            raise QvError(f"{path} looks gzip-compressed but cannot be decompressed: {exc}")
    text = data.decode("utf-8", errors="replace")
    if "\r\n" in text[:65536]:
        text = text.replace("\r\n", "\n")
    return text


# --------------------------------------------------------------------------- matching


@dataclass
class Hit:
    pattern: Pattern
    start: int  # offset of the line start
    end: int  # offset of the line end
    groups: dict[str, Any]
    line: int = 0  # 1-based, filled in later
    text: str = ""


def _convert(value: str | None) -> Any:
    if value is None:
        return None
    value = value.strip()
    if _NUMBER.fullmatch(value):
        return int(value.replace(",", ""))
    if _FLOAT.fullmatch(value):
        return float(value)
    return value.strip("'\"")


def _groups(match: re.Match[str]) -> dict[str, Any]:
    return {k: _convert(v) for k, v in match.groupdict().items() if v is not None}


def _line_bounds(text: str, pos: int) -> tuple[int, int]:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return start, (len(text) if end < 0 else end)


def _following(text: str, end: int, lines: int) -> str:
    """Up to ``lines`` lines after offset ``end`` (bounded in characters too)."""
    stop = end
    for _ in range(lines):
        nxt = text.find("\n", stop + 1, end + AFTER * 2)
        if nxt < 0:
            stop = min(len(text), end + AFTER * 2)
            break
        stop = nxt
    return text[end:stop]


def _match_at(pattern: Pattern, text: str, pos: int, start: int, end: int) -> dict[str, Any] | None:
    if pattern.regex is None:
        groups: dict[str, Any] = {}
    else:
        lo, hi = start, end
        for _ in range(pattern.lines_before):
            lo = text.rfind("\n", max(0, lo - 1 - BEFORE), max(0, lo - 1)) + 1 if lo > 0 else 0
        for _ in range(pattern.lines_after):
            nxt = text.find("\n", hi + 1, hi + 1 + AFTER)
            hi = nxt if nxt >= 0 else min(len(text), hi + 1 + AFTER)
        lo = max(lo, pos - BEFORE * (1 + pattern.lines_before))
        hi = min(hi, pos + len(pattern.needle) + AFTER * (1 + pattern.lines_after))
        match = pattern.regex.search(text, lo, hi)
        if match is None:
            return None
        groups = _groups(match)
    for extra in pattern.extras:
        m = extra.regex.search(_following(text, end, extra.within))
        if m:
            for k, v in _groups(m).items():
                groups.setdefault(k, v)
    return groups


@dataclass(frozen=True)
class _Index:
    """The lines that contain any needle, concatenated (``sub``), with where each came from."""

    sub: str
    sub_starts: list[int]  # offset of each candidate line in ``sub``
    starts: list[int]  # ... and in the original text


def _scan_needle(text: str, needle: str, patterns: list[Pattern], index: _Index | None = None) -> list[Hit]:
    """Hits of the patterns sharing one needle: ``str.find`` jumps, a bounded regex per hit.

    With an ``index`` the needle is searched in the candidate lines only and each hit is mapped
    back to the original text, where the regex window (and ``extra`` lines) are taken."""
    hits: list[Hit] = []
    counts = [0] * len(patterns)
    hay = index.sub if index is not None else text
    pos = hay.find(needle)
    tries = 0
    while pos >= 0 and tries < MAX_TRIES:
        tries += 1
        if index is not None:
            k = bisect.bisect_right(index.sub_starts, pos) - 1
            orig = index.starts[k] + pos - index.sub_starts[k]
            start, end = _line_bounds(text, orig)
            next_from = (index.sub_starts[k + 1] if k + 1 < len(index.sub_starts) else len(hay))
        else:
            orig = pos
            start, end = _line_bounds(text, pos)
            next_from = end + 1
        for i, pattern in enumerate(patterns):
            if counts[i] >= MAX_HITS:
                continue
            groups = _match_at(pattern, text, orig, start, end)
            if groups is not None:
                counts[i] += 1
                hits.append(Hit(pattern, start, end, groups))
        if all(c >= MAX_HITS for c in counts):
            break
        pos = hay.find(needle, next_from)
    return hits


GREP_MIN = 4 * 1024 * 1024  # below this, Python's own passes are as fast as starting grep


def _grep_index(text: str, needles: list[str]) -> _Index | None:
    """Candidate lines found by ``grep -F`` (one multi-string pass in C), or None.

    grep only narrows the search: every needle occurrence lies on a line grep prints, so the
    result is the same as scanning the whole text. Without grep (or on any grep problem) the
    caller scans the text itself."""
    import os
    import shutil
    import subprocess

    if os.environ.get("QVDOCTOR_TRIAGE_GREP", "1") == "0" or len(text) < GREP_MIN:
        return None
    grep = shutil.which("grep")
    if grep is None:
        return None
    ascii_text = text.isascii()  # then grep's byte offsets are character offsets
    args = [grep, "-a", "-n", "-b", "-F"]
    for needle in needles:
        args += ["-e", needle]
    try:
        proc = subprocess.run(args, input=text.encode("utf-8", "replace"), capture_output=True,
                              env={**os.environ, "LC_ALL": "C"}, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode not in (0, 1):
        return None
    out = proc.stdout.decode("utf-8", "replace")
    sub_lines: list[str] = []
    sub_starts: list[int] = []
    starts: list[int] = []
    line_no, offset, sub_len = 1, 0, 0
    for row in out.split("\n"):
        if not row:
            continue
        number, _, rest = row.partition(":")
        byte_offset, _, line = rest.partition(":")
        if ascii_text:
            offset = int(byte_offset)
        else:
            target = int(number)
            while line_no < target:  # walk to the start of line `target` in the original text
                nxt = text.find("\n", offset)
                if nxt < 0:
                    return None
                offset, line_no = nxt + 1, line_no + 1
        sub_starts.append(sub_len)
        starts.append(offset)
        sub_lines.append(line)
        sub_len += len(line) + 1
    return _Index("\n".join(sub_lines), sub_starts, starts)


def scan(text: str, signatures: Iterable[Signature]) -> list[Hit]:
    """Every hit of every pattern (at most MAX_HITS per pattern), in log order.

    Each needle is one linear ``str.find`` pass. On big logs ``grep -F`` first keeps the lines
    that contain any needle (one C pass for all needles) and the needles are searched there."""
    by_needle: dict[str, list[Pattern]] = {}
    for sig in signatures:
        for pattern in sig.patterns:
            by_needle.setdefault(pattern.needle, []).append(pattern)
    index = _grep_index(text, list(by_needle))
    hits = [h for needle, ps in by_needle.items() for h in _scan_needle(text, needle, ps, index)]
    hits.sort(key=lambda h: (h.start, h.pattern.entry_id, h.pattern.index))
    return hits


def _number_lines(text: str, offsets: list[int]) -> dict[int, int]:
    """1-based line numbers of the given line-start offsets (one pass over the text)."""
    result: dict[int, int] = {}
    line, last = 1, 0
    for off in sorted(set(offsets)):
        line += text.count("\n", last, off)
        last = off
        result[off] = line
    return result


def _literal_after(text: str, pos: int) -> Any:
    """The Python literal ({...}) starting at ``pos``, read within 4000 characters (None if unreadable)."""
    import ast

    if not text.startswith("{", pos):
        return None
    depth = 0
    for i in range(pos, min(len(text), pos + 4000)):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                try:
                    return ast.literal_eval(text[pos:i + 1])
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    return None
        elif ch == "\n":
            return None
    return None


def mm_limit(current: Any, modality: str | None, count: int | None) -> dict[str, Any]:
    """``limit_mm_per_prompt`` with ``modality`` raised to ``count``, other entries (and a
    per-modality options table such as ``{"count": 1, "num_frames": 8}``) kept."""
    table = dict(current) if isinstance(current, dict) else {}
    if modality is None or count is None:
        return table
    old = table.get(modality)
    table[modality] = {**old, "count": count} if isinstance(old, dict) else count
    return table


def context_numbers(text: str) -> dict[str, Any]:
    """The engine configuration the log printed (first occurrence of each value)."""
    found: dict[str, Any] = {}
    for needle in ("'limit_mm_per_prompt': ", "limit_mm_per_prompt="):
        pos = text.find(needle)
        if pos >= 0:
            value = _literal_after(text, pos + len(needle))
            if isinstance(value, dict):
                found.setdefault("limit_mm_per_prompt", value)
    for needle, regex in _CONTEXT:
        pos = text.find(needle)
        if pos < 0:
            continue
        start, end = _line_bounds(text, pos)
        match = regex.search(text, max(start, pos - BEFORE), min(end, pos + AFTER * 4))
        if match:
            for k, v in _groups(match).items():
                found.setdefault(k, v)
    return found


# --------------------------------------------------------------------------- last error line

_ERROR_MARKERS = ("Error", "Exception", "ERROR", "CRITICAL", "Fatal Python error", "Segmentation fault", "Killed")
_TRACEBACK = "Traceback (most recent call last)"  # only when no exception line is found (a cut-off log)
_PREFIX = re.compile(
    r"(?:\s{0,8}(?:\([\w.-]{1,60} pid=\d{1,10}(?:, ip=[\d.:]{1,40})?\)|\[rank\d{1,5}\]:|[\w.-]{1,60}\s{1,4}\|)\s?){0,3}"
    r"(?:(?P<level>INFO|WARNING|ERROR|DEBUG|CRITICAL)\s{1,3}\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,6})?\s{1,3}"
    r"(?:\[[\w.]{1,80}:\d{1,6}\]|[\w.]{1,80}:\d{1,6}\])\s?)?"
)
_EXCEPTION = re.compile(r"[\w.]{0,120}(?:Error|Exception|Exit|Interrupt)\b:?|Fatal Python error|Segmentation fault|Killed\s{0,8}$"
                        r"|Traceback \(most recent call last\)")  # a cut-off traceback still is an error
_FRAME = re.compile(r"\s|File \"|During handling of the above|The above exception")


def _strip_prefix(line: str) -> tuple[str, str | None]:
    """A log line without vLLM's worker tag and level/time/file prefix, and its level."""
    match = _PREFIX.match(line)
    return (line[match.end():], match.group("level")) if match else (line, None)


def _error_like(line: str) -> bool:
    """An exception line (``ValueError: ...``) or an ERROR/CRITICAL message; never a traceback frame."""
    msg, level = _strip_prefix(line[:2000])
    if not msg or _FRAME.match(msg):
        return False
    return bool(_EXCEPTION.match(msg)) or level in ("ERROR", "CRITICAL")


def last_error(text: str, skip: set[int]) -> tuple[int, str] | None:
    """Offset and text of the last error-looking line whose start is not in ``skip``.

    Found with ``rfind`` from the end of the log, so a clean 100 MB log costs little. A bare
    traceback header counts only when no exception line is found (the log was cut off)."""
    for markers in (_ERROR_MARKERS, (_TRACEBACK,)):
        best = _last_of(text, skip, markers)
        if best is not None:
            return best
    return None


def _last_of(text: str, skip: set[int], markers: tuple[str, ...]) -> tuple[int, str] | None:
    best: tuple[int, str] | None = None
    for marker in markers:
        pos = len(text)
        for _ in range(2000):
            pos = text.rfind(marker, 0, pos)
            if pos < 0 or (best and pos <= best[0]):
                break
            start, end = _line_bounds(text, pos)
            line = text[start:end]
            if start not in skip and _error_like(line):
                best = (start, line)
                break
            pos = start
    return best


# --------------------------------------------------------------------------- ranking


@dataclass
class TriageResult:
    findings: list[Finding]  # root cause first, then contributing, then benign
    last_error_line: str | None  # text of the last error-looking line (not a known benign one)
    unknown: bool  # the log shows an error but no known signature matched
    last_error_line_no: int | None = None
    context: dict[str, Any] = field(default_factory=dict)  # engine config numbers read from the log

    @property
    def root(self) -> Finding | None:
        return self.findings[0] if self.findings and self.findings[0].role == "root" else None

    @property
    def exit_code(self) -> int:
        """2 failing signature, 1 unexplained error or a warning, 0 clean or noise only."""
        if self.root is not None:
            return 2
        return 1 if self.unknown or any(f.status == "warn" for f in self.findings) else 0

    def summary(self) -> dict[str, Any]:
        return {
            "root": self.root.id if self.root else None,
            "unknown": self.unknown,
            "last_error_line": self.last_error_line,
            "last_error_line_no": self.last_error_line_no,
            "context": self.context,
        }


def _clean(line: str) -> str:
    line = _ANSI.sub("", line[: EVIDENCE_CHARS * 4]).rstrip()
    return line if len(line) <= EVIDENCE_CHARS else line[:EVIDENCE_CHARS] + "…"


def _default_names() -> dict[str, Any]:
    from qvdoctor.context import build_context
    from qvdoctor.facts.model import Facts

    return build_context(Facts(label="no facts", provenance="none"))


@dataclass
class _Matched:
    sig: Signature
    hits: list[Hit]
    role: str = "cause"
    scope: dict[str, Any] = field(default_factory=dict)

    @property
    def first(self) -> int:
        return self.hits[0].start


def _role_of(sig: Signature, hits: list[Hit], scope: Mapping[str, Any]) -> str:
    roles = {h.pattern.role for h in hits if h.pattern.role}
    if any(h.pattern.role is None for h in hits):
        base = sig.role
        if base.startswith("="):
            base = str(evaluate(base[1:], scope))
            if base not in ROLES:
                raise ExprError(f"role expression of {sig.entry.id} gave {base!r}")
        roles.add(base)
    for role in ROLES:  # strongest first
        if role in roles:
            return role
    return "cause"


def _finding(m: _Matched, status: str, role: str) -> Finding:
    shown = [h for h in m.hits if (h.pattern.role or m.role) == m.role] or m.hits
    evidence = [Evidence(_clean(h.text), source="log", line=h.line) for h in shown[:MAX_EVIDENCE]]
    try:
        finding = make_finding(m.sig.entry, status, m.scope, evidence)
    except (ExprError, TypeError, ValueError, AttributeError, KeyError, ZeroDivisionError) as exc:
        finding = Finding(id=m.sig.entry.id, family=m.sig.entry.family, status=status, title=m.sig.entry.id,
                          cause=f"(cause could not be rendered: {exc})", fix=m.sig.entry.fix.text,
                          evidence=evidence, docs=m.sig.entry.docs)
    finding.role = role
    if role != "root":
        finding.patch = Patch()  # smoke and the combined fix apply the root cause's patch only
    return finding


def triage_text(text: str, names: dict | None = None, signatures: Iterable[Signature] | None = None) -> TriageResult:
    """Triage a log given as text. ``names`` is the check context (facts of this machine, model,
    and optionally ``request`` counts such as ``{"video": 2}``) that makes fixes concrete."""
    sigs = tuple(signatures) if signatures is not None else load_signatures()
    base = dict(names) if names is not None else _default_names()
    base.setdefault("request", None)
    base.setdefault("mm_limit", mm_limit)
    context = context_numbers(text)
    hits = scan(text, sigs)
    lines = _number_lines(text, [h.start for h in hits])
    for h in hits:
        h.line = lines[h.start]
        h.text = text[h.start:min(h.end, h.start + EVIDENCE_CHARS * 4)]

    grouped: dict[str, list[Hit]] = {}
    for h in hits:
        grouped.setdefault(h.pattern.entry_id, []).append(h)
    by_id = {s.entry.id: s for s in sigs}
    matched: list[_Matched] = []
    for entry_id, sig_hits in grouped.items():
        seen_lines: set[int] = set()
        sig_hits = [h for h in sig_hits if not (h.start in seen_lines or seen_lines.add(h.start))]
        numbers: dict[str, Any] = dict(context)
        merged: dict[str, Any] = {}
        for h in sig_hits:
            for k, v in h.groups.items():
                merged.setdefault(k, v)
        numbers.update(merged)
        scope = {**base, "log": numbers}
        m = _Matched(by_id[entry_id], sig_hits, scope=scope)
        try:
            m.role = _role_of(m.sig, sig_hits, scope)
        except ExprError:
            m.role = "cause"
        matched.append(m)
    matched.sort(key=lambda m: m.first)

    causes = [m for m in matched if m.role == "cause"]
    root = causes[0] if causes else None
    for _ in range(4):  # a signature that explains the root takes its place
        if root is None:
            break
        better = next((m for m in matched if m is not root and root.sig.entry.id in m.sig.explains), None)
        if better is None:
            break
        root = better
    findings: list[Finding] = []
    if root is not None:
        findings.append(_finding(root, "fail", "root"))
    rest = [m for m in matched if m is not root]
    order = {"cause": 0, "warning": 1, "wrapper": 2}
    for m in sorted((m for m in rest if m.role != "benign"), key=lambda m: (order[m.role], m.first)):
        findings.append(_finding(m, ROLE_STATUS[m.role], "contributing"))
    for m in (m for m in rest if m.role == "benign"):
        findings.append(_finding(m, "info", "benign"))

    role_of = {m.sig.entry.id: m.role for m in matched}
    hit_role = {h.start: h.pattern.role or role_of[h.pattern.entry_id] for h in hits}
    err = _last_of(text, set(hit_role), _ERROR_MARKERS)
    if err is None:  # only known lines look like errors: show the last one that is not benign
        failing = [h for h in hits if hit_role[h.start] != "benign"]
        if failing:
            err = (failing[-1].start, failing[-1].text)
    if err is None:
        err = _last_of(text, set(hit_role), (_TRACEBACK,))
    harmless = {start for start, role in hit_role.items() if role in ("benign", "warning")}
    unknown = root is None and last_error(text, harmless) is not None
    last_no = _number_lines(text, [err[0]])[err[0]] if err else None
    return TriageResult(findings, _clean(err[1]) if err else None, unknown, last_no, context)


def triage_file(path: str, names: dict | None = None) -> TriageResult:
    """Triage a log file (``-`` for stdin, gzip accepted); a missing file is a QvError."""
    return triage_text(read_log(path), names)


# --------------------------------------------------------------------------- docs page


def signatures_markdown(signatures: Iterable[Signature] | None = None) -> str:
    """docs/signatures.md: every signature with its patterns, cause and fix (from checks/)."""
    sigs = sorted(signatures if signatures is not None else load_signatures(), key=lambda s: (s.entry.family, s.entry.id))
    n_patterns = sum(len(s.patterns) for s in sigs)
    out = [
        "# Log signatures",
        "",
        "<!-- generated by `python -m qvdoctor.triage --docs`; edit checks/*.toml, not this page -->",
        "",
        f"`qvdoctor diagnose --log FILE` knows {len(sigs)} signatures ({n_patterns} message patterns) in "
        f"{len({s.entry.family for s in sigs})} families. Roles: **cause** (a failure; the earliest one is the root "
        "cause), **warning** (predicts or contributes to a failure), **wrapper** (re-raises an error printed above "
        "it, never the root cause), **benign** (looks alarming, is not a problem). Texts in `{...}` are filled from "
        "the numbers in the message (`log.*`) and from the machine's facts when available.",
        "",
        "Speed: see [diagnose-log.md](diagnose-log.md).",
        "",
        "| family | signatures |",
        "|---|---|",
    ]
    families: dict[str, list[Signature]] = {}
    for s in sigs:
        families.setdefault(s.entry.family, []).append(s)
    for fam, group in families.items():
        out.append(f"| {fam} | {', '.join(f'[{s.entry.id}](#{s.entry.id})' for s in group)} |")
    for fam, group in families.items():
        out += ["", f"## {fam}"]
        for s in group:
            e = s.entry
            role = s.role if not s.role.startswith("=") else f"computed: `{s.role[1:]}`"
            explains = f"; explains: {', '.join(s.explains)}" if s.explains else ""
            out += ["", f'<a id="{e.id}"></a>', f"### {e.id}", "", f"*{e.title}* — role: {role}{explains}; file `checks/{e.path.parent.name}/{e.path.name}`"]
            out += ["", "Patterns (needle → regex):", ""]
            for p in s.patterns:
                extra = f" (role {p.role})" if p.role else ""
                rx = f" → `{p.regex.pattern}`" if p.regex is not None else ""
                out.append(f"- [{p.engine}] `{p.needle}`{rx}{extra}".replace("|", "\\|"))
            out += ["", f"**Cause.** {e.cause}", "", f"**Fix.** {e.fix.text or '(none: informational)'}"]
            if e.fix.flags or e.fix.env:
                out.append("")
                if e.fix.flags:
                    out.append(f"Flags: `{e.fix.flags}`")
                if e.fix.env:
                    out.append(f"Env: `{e.fix.env}`")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--docs"]:
        target = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent / "docs" / "signatures.md"
        tmp = target.with_name(target.name + ".part")
        tmp.write_text(signatures_markdown(), encoding="utf-8")
        tmp.replace(target)
        print(f"wrote {target}")
        return 0
    print("usage: python -m qvdoctor.triage --docs [PATH]", file=sys.stderr)
    return 3


if __name__ == "__main__":
    raise SystemExit(main())
