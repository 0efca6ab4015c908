"""Ranking hits into findings: the root cause, contributing causes, warnings and benign lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Collection, Iterable, Mapping

from qvdoctor.doctor.expr import ExprError, evaluate
from qvdoctor.doctor.findings import Evidence, Finding, Patch
from qvdoctor.doctor.rules import make_finding
import re

from qvdoctor.doctor.triage.scanning import (
    _ERROR_MARKERS,
    _CPP_FRAME,
    _IPY7_FRAME,
    _TB_FRAME,
    _TRACEBACK,
    Hit,
    _last_frame,
    _line_bounds,
    _last_of,
    _number_lines,
    _strip_prefix,
    context_numbers,
    last_error,
    mm_limit,
    read_log,
    scan,
)
from qvdoctor.doctor.triage.schema import (
    _ANSI,
    EVIDENCE_CHARS,
    MAX_EVIDENCE,
    NO_ROLE,
    ROLE_STATUS,
    ROLES,
    Signature,
    load_signatures,
)
from qvdoctor.doctor.triage.search import search_url
from qvdoctor.doctor.triage.stages import cut_traceback_finding, stopped_finding, teardown_lines

UNKNOWN_ID = "unknown-error"
_NEW_RECORD = re.compile(r"\s|\(|\[|[A-Z]{4,8} \d\d-\d\d |\d{4}-\d\d-\d\d|Traceback|File \"")


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
        """2 a failure (a known root cause, or an error no signature explains), 1 warnings only,
        0 clean or noise only. A traceback or a CUDA/NCCL error is never an all-clear."""
        if self.root is not None or self.unknown:
            return 2
        return 1 if any(f.status == "warn" for f in self.findings) else 0

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
    from qvdoctor.doctor.context import build_context
    from qvdoctor.facts.snapshot import Facts

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
            if base not in ROLES + (NO_ROLE,):
                raise ExprError(f"role expression of {sig.entry.id} gave {base!r}")
        roles.add(base)
    for role in ROLES + (NO_ROLE,):  # strongest first
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
    and optionally ``request`` counts such as ``{"video": 2}``) that makes fixes concrete.

    A log nothing explains is tried once more with the lines a terminal hard-wrapped joined
    again (copied from a fixed-width console); evidence keeps the original line numbers."""
    sigs = tuple(signatures) if signatures is not None else load_signatures()
    result = _triage(text, names, sigs)
    if result.root is None and result.unknown and len(text) <= UNWRAP_MAX:
        joined, origin = unwrap_lines(text)
        if joined != text:
            again = _triage(joined, names, sigs)
            if again.root is not None:
                for f in again.findings:
                    for e in f.evidence:
                        if e.line:
                            e.line = origin[e.line - 1]
                again.root.cause += " (Matched after joining the lines a terminal had wrapped.)"
                if again.last_error_line_no:
                    again.last_error_line_no = origin[again.last_error_line_no - 1]
                return again
    return result


UNWRAP_MAX = 4 * 1024 * 1024  # the second pass is for pasted excerpts, not for 100 MB service logs


def unwrap_lines(text: str) -> tuple[str, list[int]]:
    """``text`` with hard-wrapped lines joined, and for each joined line its first original line
    number. A wrap is a line of the log's most common long length (>= 70 characters, seen at
    least 3 times) followed by a line that does not start a new record (no leading space,
    no worker/level prefix)."""
    lines = text.split("\n")
    lengths: dict[int, int] = {}
    for line in lines:
        if len(line) >= 70:
            lengths[len(line)] = lengths.get(len(line), 0) + 1
    if not lengths:
        return text, list(range(1, len(lines) + 1))
    width, count = max(lengths.items(), key=lambda kv: kv[1])
    if count < 3:
        return text, list(range(1, len(lines) + 1))
    out: list[str] = []
    origin: list[int] = []
    for i, line in enumerate(lines):
        if out and len(lines[i - 1]) == width and line and not _NEW_RECORD.match(line):
            out[-1] += line
        else:
            out.append(line)
            origin.append(i + 1)
    return "\n".join(out), origin


def _triage(text: str, names: dict | None, sigs: tuple[Signature, ...]) -> TriageResult:
    base = dict(names) if names is not None else _default_names()
    base.setdefault("request", None)
    base.setdefault("mm_limit", mm_limit)
    context = context_numbers(text)
    hits = scan(text, sigs, hints=False)
    lines = _number_lines(text, [h.start for h in hits])
    for h in hits:
        h.line = lines[h.start]
        h.text = text[h.start:min(h.end, h.start + EVIDENCE_CHARS * 4)]

    matched = _match(hits, sigs, base, context)
    matched = [m for m in matched if m.role != NO_ROLE]
    keep = {m.sig.entry.id for m in matched}
    hits = [h for h in hits if h.pattern.entry_id in keep]

    causes = sorted((m for m in matched if m.role == "cause"), key=lambda m: m.sig.consequence)  # stable: log order
    root = causes[0] if causes else None
    for _ in range(4):  # a signature that explains the root takes its place
        if root is None:
            break
        better = next((m for m in matched if m is not root and root.sig.entry.id in m.sig.explains), None)
        if better is None:
            break
        root = better

    role_of = {m.sig.entry.id: m.role for m in matched}
    hit_role = {h.start: h.pattern.role or role_of[h.pattern.entry_id] for h in hits}
    harmless = _with_backtrace(text, {start for start, role in hit_role.items() if role in ("benign", "warning")})
    teardown = teardown_lines(text)  # what a server logs while it is stopped on request is no failure
    error = last_error(text, harmless | teardown) if root is None else None
    unknown_error = error
    inferred = ""
    if root is None and error is not None:  # the fallback ladder: frames, exception types, a warning
        root, inferred = _from_traceback(text, sigs, base, context, error, harmless)
        if root is None:
            root = next((m for m in matched if m.role == "warning"), None)
            inferred = "the log ends in an error that no signature explains; this warning came before it" if root else ""
        root = _adopt(root, matched)
    elif root is not None and root.sig.consequence:  # an access-log status follows from the request's own error:
        mine = {h.start for h in hits if h.pattern.entry_id == root.sig.entry.id}  # the ladder's reading of it wins
        below = last_error(text, harmless | teardown | mine)
        deeper, why = _from_traceback(text, sigs, base, context, below, harmless) if below else (None, "")
        if deeper is not None:
            root, inferred = _adopt(deeper, matched), why

    findings: list[Finding] = []
    if root is not None:
        findings.append(_finding(root, "fail", "root"))
        if inferred:
            findings[0].cause += f" (Inferred: {inferred}.)"
    rest = [m for m in matched if m is not root and not _read_again(text, root, m)]
    order = {"cause": 0, "warning": 1, "wrapper": 2}
    for m in sorted((m for m in rest if m.role != "benign"), key=lambda m: (order[m.role], m.first)):
        findings.append(_finding(m, ROLE_STATUS[m.role], "contributing"))
    for m in (m for m in rest if m.role == "benign"):
        findings.append(_finding(m, "info", "benign"))

    err = _last_of(text, set(hit_role) | teardown, _ERROR_MARKERS)
    if err is None:  # only known lines look like errors: show the last one that is not benign
        failing = [h for h in hits if hit_role[h.start] != "benign"]
        if failing:
            err = (failing[-1].start, failing[-1].text)
    if err is None:
        err = _last_of(text, set(hit_role) | teardown, (_TRACEBACK,))
    if err is None and unknown_error is not None:  # a traceback cut before its header and message: its last frame
        err = unknown_error
    wrapped_only = root is None and error is None and any(m.role == "wrapper" for m in matched)
    unknown = root is None and (error is not None or wrapped_only)
    last_no = _number_lines(text, [err[0]])[err[0]] if err else None
    if unknown and err is not None:
        cut = None if wrapped_only else cut_traceback_finding(text)  # the error line is missing from the copy
        findings.insert(0, cut or _unknown_finding(_clean(err[1]), last_no, wrapped_only, err[1]))
    elif not any(f.status in ("fail", "warn") for f in findings):
        stopped = stopped_finding(text)  # no error, no warning: did start-up finish?
        if stopped is not None:
            findings.insert(0, stopped)
    return TriageResult(findings, _clean(err[1]) if err else None, unknown, last_no, context)


def _adopt(root: _Matched | None, matched: list[_Matched]) -> _Matched | None:
    """A root the fallback ladder found, as one of ``matched`` (the matched entry itself when it is there)."""
    same = next((m for m in matched if root is not None and m is not root and m.sig.entry.id == root.sig.entry.id), None)
    if same is not None:
        return same
    if root is not None and root not in matched:
        matched.append(root)
        matched.sort(key=lambda m: m.first)
    return root


def _match(hits: list[Hit], sigs: tuple[Signature, ...], base: dict[str, Any], context: dict[str, Any]) -> list[_Matched]:
    """Hits grouped by signature, each with its numbers and role, in log order."""
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
        if m.role in ("cause", "wrapper") and all(_strip_prefix(h.text[:2000])[1] == "DEBUG" for h in sig_hits):
            m.role = "warning"  # vLLM logs an exception it handled (a fallback it then takes) at DEBUG level
        matched.append(m)
    matched.sort(key=lambda m: m.first)
    return matched


REGION_LINES = 40  # lines above the last error searched for hints when no traceback header is near
HEADER_LINES = 8  # ... and lines above the traceback header
REGION_MAX = 256 * 1024  # characters of the region around the last error (a 100 MB log costs no more)


def _line_after(text: str, end: int, lines: int) -> int:
    for _ in range(lines):
        nxt = text.find("\n", end + 1)
        if nxt < 0:
            return len(text)
        end = nxt
    return end


def error_region(text: str, error: tuple[int, str]) -> tuple[int, int, int, bool]:
    """(start, end, end of the message lines, cut) of the part of the log that tells what failed:
    from the traceback header above the last error (else REGION_LINES lines above it) to a few
    lines after it; a traceback that goes on after the last error line without a message of its
    own was cut off, and then the region runs to the end of the log."""
    pos = error[0]
    msg_end = _line_after(text, pos + len(error[1]), 2)
    frame = _last_frame(text)
    cut = ("Traceback (most recent call last)" in error[1] or '", line ' in error[1]
           or (frame is not None and frame[0] > pos))
    header = text.rfind("Traceback (most recent call last)", max(0, pos - REGION_MAX), pos + len(error[1]))
    if header < 0:
        header = pos
        for _ in range(REGION_LINES):
            if header <= 0:
                break
            header = text.rfind("\n", 0, header - 1) + 1
    header = text.rfind("\n", 0, header) + 1
    for _ in range(HEADER_LINES):  # what the process logged just before its traceback ("Error initializing: ...")
        if header <= 0:
            break
        header = text.rfind("\n", 0, header - 1) + 1
    end = len(text) if cut else _line_after(text, pos + len(error[1]), 3)
    start = max(header, end - REGION_MAX)
    return start, end, msg_end, cut


def _import_chain(text: str, hit: Hit, end: int, cut: bool) -> bool:
    """A ``<module>`` frame that is the innermost of a cut-off traceback and follows another
    ``<module>`` frame: one module importing the next, cut before the ImportError. With its message
    line, or alone (a script's own top level), a ``<module>`` frame says nothing."""
    if not cut or _frame_follows(text, hit.end, end):
        return False
    before = text.rfind('File "', max(0, hit.start - 4096), hit.start)
    if before < 0:
        return False
    eol = text.find("\n", before)
    return text[before:eol if eol >= 0 else hit.start].rstrip().endswith("in <module>")


def _frame_follows(text: str, pos: int, end: int) -> bool:
    """Another traceback frame comes after ``pos`` (so a ``<module>`` frame is not the innermost:
    the traceback is not an import chain)."""
    nxt = text.find('File "', pos, end)
    if nxt < 0 or text.rfind("Traceback (most recent call last)", pos, nxt) >= 0:
        return False
    eol = text.find("\n", nxt)
    return '", line ' in text[nxt:eol if eol >= 0 else len(text)]  # a frame line cut mid-path does not count


# a shell prompt and the command typed after it ("~/llama-box$ ./llama-box -m x.gguf", "(venv) user@host:~/x$ pip ..."):
# the user's words, no evidence of what failed
_SHELL_COMMAND = re.compile(r"(?:\([\w.-]{1,60}\) )?(?:[\w.@-]{1,80}:)?[~/][^\n$#]{0,200}[$#] \S|[$#] \S")
# pip's report of what it fetched or installed ("Successfully installed torch-2.9.0 torchvision-0.24.0 ..."): a package
# named there is no evidence of what failed later
_PIP_REPORT = re.compile(r"\s{0,8}(?:Successfully installed|Requirement already satisfied|Collecting|Downloading|Using cached"
                         r"|Installing collected packages|Attempting uninstall|Found existing installation|Successfully uninstalled) ")
_STATED = re.compile(r"\w(?:Error|Exception): \S")  # an exception line with its message
_SHM_MESSAGE = re.compile(r"(?i)shared[ -]memory|\bshm\b(?!/)|bus error|shm[-_]size")
_NCCL_INIT_STEP = re.compile(r"init_device|init_distributed_environment|ensure_model_parallel_initialized|init_process_group")


def _not_evidence(line: str) -> bool:
    """A command the user typed or pip's install report: the words on it do not say what failed."""
    return bool(_SHELL_COMMAND.match(line) or _PIP_REPORT.match(line))


def _line_of(text: str, pos: int) -> str:
    return text[slice(*_line_bounds(text, pos))]


# Python's frame ('File "/x/y.py", line 3'), also with its start cut off by the copy ('/x/y.py", line 3, in f'),
# pytest's ('/x/y.py:285: in forward'), and IPython 7's header with the function's signature, whose parameter names
# (disable_custom_all_reduce, ...) are code, not what failed ('/x/llm.py in __init__(self, model, ...)')
_FRAME_PATH = re.compile(r'File "[^"\n]{0,400}(?:"|$)|[\w./~+-]{1,400}\.py(?=:\d{1,7}: in |", line \d{1,7}, in )'
                         r'|' + _IPY7_FRAME.pattern + r'[^\n]{0,4000}')


def _only_in_frame_paths(line: str, needle: str) -> bool:
    """Every occurrence of ``needle`` in ``line`` is inside a traceback frame's file path."""
    paths = [m.span() for m in _FRAME_PATH.finditer(line)]
    spots = [m.start() for m in re.finditer(re.escape(needle), line)]
    return bool(paths and spots) and all(any(a <= p and p + len(needle) <= b for a, b in paths) for p in spots)


def _path_word(text: str, hit: Hit, err_lo: int, msg_end: int) -> bool:
    """A topic word that is only part of a traceback frame's file path (``c10d`` in
    ``torch/distributed/distributed_c10d.py``) names where code runs, not what failed (``modules``
    say that); a path-like topic word (``/dev/shm``) that is only the directory of a longer file path
    (a model stored under /dev/shm/...) is no evidence of that subsystem either, unless the error's own
    lines are about it (shared memory, a bus error); nor is a word only in the logger's own file name."""
    needle = hit.pattern.needle
    if hit.pattern.engine != "topic":
        return False
    line = text[hit.start:hit.end]
    # "[custom_all_reduce_utils.py:244] reading GPU P2P access cache"; NCCL's words have their own rule (_routine_topic)
    if not _nccl_word(hit) and needle not in _strip_prefix(line)[0]:
        return True
    if not needle.startswith("/"):
        return _only_in_frame_paths(line, needle)
    inside = re.compile(re.escape(needle) + r"/[\w.-]")
    if any(not inside.match(line, m.start()) for m in re.finditer(re.escape(needle), line)):
        return False  # the word itself, not only a directory of a longer path
    message = re.sub(re.escape(needle) + r"/\S{0,400}", " ", text[err_lo:msg_end])
    return not _SHM_MESSAGE.search(message)


def _routine(line: str) -> bool:
    """An INFO/DEBUG line (vLLM's level prefix, or NCCL's own ``NCCL INFO``)."""
    return " NCCL INFO " in line or _strip_prefix(line[:2000])[1] in ("INFO", "DEBUG")


# an INFO line that reports what the run chose or was given ("Using FlashAttention-2 backend.", the engine's config
# dump with every option): that choice worked, it is not what failed ("Starting profile run" says where it was)
_SETUP_REPORT = re.compile(r"Using |[^\n]{0,200}(?:with config: |non-default args: )")


def _nccl_word(hit: Hit) -> bool:
    return "nccl" in hit.pattern.needle.lower()


def _routine_topic(text: str, hit: Hit, in_tb: list[Hit], region: str) -> bool:
    """A topic word on an INFO/DEBUG line that reports the run's set-up is no evidence of a failure. vLLM's routine
    NCCL INFO lines ("vLLM is using nccl==2.20.5", ``NCCL INFO ... Init COMPLETE``) above an unrelated cut
    traceback are no NCCL failure either: such a hit counts only when an NCCL word also stands on an error/WARN
    line or a frame of the failing traceback, or the failing step is the distributed initialisation that runs NCCL
    (``init_device``...)."""
    if hit.pattern.engine != "topic":
        return False
    own = _line_of(text, hit.start)
    if not _routine(own):
        return False
    if not _nccl_word(hit):
        return bool(_SETUP_REPORT.match(_strip_prefix(own[:2000])[0]))
    if any(_NCCL_INIT_STEP.search(line) and not _routine(line) for line in region.splitlines()):
        return False
    return not any(h is not hit and h.pattern.entry_id == hit.pattern.entry_id and _nccl_word(h)
                   and not _routine(_line_of(text, h.start)) for h in in_tb)


def _read_again(text: str, root: _Matched | None, m: _Matched) -> bool:
    """``m`` only reads lines the root reads too, and the root explains it: the same message told again with the
    general entry's fix ("unrecognized arguments" as options of another release, where the root knows them for the
    pieces of a JSON value the shell split), which would contradict the root's; it is left out."""
    if root is None or m.sig.entry.id not in root.sig.explains:
        return False
    mine = {_line_bounds(text, h.start)[0] for h in root.hits}
    return all(_line_bounds(text, h.start)[0] in mine for h in m.hits)


def _with_backtrace(text: str, starts: set[int]) -> set[int]:
    """``starts`` and the lines of a C++ backtrace right under one of them ("frame #3: c10d::TCPStore::check(...)"):
    the frames of an exception a signature explains as harmless or a warning are no evidence of another failure."""
    out = set(starts)
    for start in starts:
        pos = text.find("\n", start)
        for _ in range(200):
            if pos < 0:
                break
            nxt = text.find("\n", pos + 1)
            line = text[pos + 1:nxt if nxt >= 0 else len(text)]
            if not _CPP_FRAME.match(line):
                break
            out.add(pos + 1)
            pos = nxt
    return out


def _from_traceback(text: str, sigs: tuple[Signature, ...], base: dict[str, Any], context: dict[str, Any],
                    error: tuple[int, str], explained: Collection[int] = ()) -> tuple[_Matched | None, str]:
    """The signature the part of the log around the last error points to when no message matched.

    Evidence from the strongest to the weakest, each independent of one message's wording: an
    exception type on the error line; a subsystem's word on the error line (rope_scaling, PyAV,
    c10d...); the innermost known traceback frame or source path (vllm/multimodal/video.py...),
    which is all a cut-off excerpt has left; a subsystem's word anywhere in the traceback (a
    ``raise`` line shows the message being built); an exception type above the error. Lines a
    signature already explains as a warning or benign (``explained``: vLLM's open-file-limit warning
    quotes "Too many open files") are no evidence for another entry."""
    start, end, msg_end, cut = error_region(text, error)
    region = text[start:end]
    hints = scan(region, sigs, hints=True)
    for h in hints:
        h.start += start
        h.end += start
    err_lo = error[0]
    on_error = [h for h in hints if err_lo <= h.start <= msg_end]
    in_tb = [h for h in hints if h.start <= (end if cut else msg_end)
             and not (h.pattern.needle == "in <module>" and not _import_chain(text, h, end, cut))]
    in_tb = [h for h in in_tb if h.start not in explained and not _path_word(text, h, error[0], msg_end)
             and not _routine_topic(text, h, in_tb, region) and not _not_evidence(_line_of(text, h.start))]
    on_error = [h for h in on_error if not _path_word(text, h, error[0], msg_end)]
    if cut and _TB_FRAME.search(error[1][:2000]):  # the "error" is the last frame of a cut copy: its words are a frame's
        on_error = []
    # with the exception's message in the log, only the frame that raised it speaks for it: a known frame or word
    # further out ("init_process_group" above an AttributeError from "collective_rpc") is where the call came from
    stated = not cut and bool(_STATED.search(error[1][:2000]))
    innermost = [h for h in in_tb if not (stated and _frame_follows(text, h.end, msg_end))]
    steps = (
        ("exception", [h for h in on_error if h.pattern.engine == "exception"], "exception"),
        ("topic", [h for h in on_error if h.pattern.engine == "topic"], "topic-line"),
        ("frame", [h for h in innermost if h.pattern.engine in ("frame", "call", "module")], "frame"),
        ("topic", [h for h in innermost if h.pattern.engine == "topic"], "topic"),
        ("exception", [h for h in in_tb if h.pattern.engine == "exception"], "exception"),
    )
    for _, near, why_kind in steps:
        if why_kind == "topic-line":
            near = sorted(near, key=lambda h: (len(h.pattern.needle), -h.start), reverse=True)
        else:  # the innermost first; a frame name is more specific than its file
            near = sorted(near, key=lambda h: (h.start, h.pattern.engine == "frame", len(h.pattern.needle)), reverse=True)
        m = None
        for hit in near:
            sig = next(s for s in sigs if s.entry.id == hit.pattern.entry_id)
            cand = _Matched(sig, [hit], "cause", {**base, "log": dict(context)})
            try:  # a fix computed from the message's numbers cannot be given without them: next candidate
                make_finding(sig.entry, "fail", cand.scope, [])
            except (ExprError, TypeError, ValueError, AttributeError, KeyError, ZeroDivisionError):
                continue
            m = cand
            break
        if m is None:
            continue
        hit.line = _number_lines(text, [hit.start])[hit.start]
        hit.text = text[hit.start:min(hit.end, hit.start + EVIDENCE_CHARS * 4)]
        needle = hit.pattern.needle
        name = needle[3:] if hit.pattern.engine == "frame" else needle[:-1] if hit.pattern.engine == "call" else needle
        if hit.pattern.engine == "call":
            why = f"the traceback's innermost source line calls `{name}`, which fails this way; the copy stops before its message"
        elif hit.pattern.engine == "frame":
            why = f"the traceback was raised from `{name}`, which fails this way; the message line is missing or not recognised"
        elif hit.pattern.engine == "module":
            why = f"the innermost known frame is in `{name}`, which fails this way; the message line is missing or not recognised"
        elif hit.pattern.engine == "exception":
            why = f"the exception type `{name}` says what failed; its message is cut or not recognised"
        elif why_kind == "topic-line":
            why = f"the error names `{name}`, which belongs to this failure; no signature knows this wording"
        else:
            why = f"the traceback around the error mentions `{name}`, which belongs to this failure; the message is missing or not recognised"
        return m, why
    return None, ""


def _unknown_finding(line: str, line_no: int | None, wrapped_only: bool = False, raw: str = "") -> Finding:
    """The last error line of a log no signature explains, as a failing finding with its evidence
    (also when only a wrapper says that something failed: the error it wraps is not in the copy)."""
    url = None if wrapped_only else search_url(raw or line)
    return Finding(
        id=UNKNOWN_ID, family="other", status="fail", role="unknown",
        title=f"{'Failure reported, its cause not in this log' if wrapped_only else 'Unrecognised error'}: "
              f"{line.strip()[:120]}",
        cause=("Only a wrapper message says that something failed; the error it reports was printed elsewhere "
               "(above this copy, or in output the wrapping tool hid)." if wrapped_only else
               "The log ends in an error that no known signature, traceback frame or exception type explains."),
        fix=("Get the whole output (the wrapper's own hint, e.g. InstructLab's --enable-serving-output, or the "
             "engine and worker logs) and run 'qvdoctor diagnose --log' on it." if wrapped_only else
             "Read the lines above the last error; search its message in vLLM's issues"
             + (f" ({url})" if url else "") + " and in the tracker of the library its traceback ends in, "
             "and report it with 'qvdoctor diagnose --log FILE --format markdown'."),
        evidence=[Evidence(line, source="log", line=line_no)],
    )


def triage_file(path: str, names: dict | None = None) -> TriageResult:
    """Triage a log file (``-`` for stdin, gzip accepted); a missing file is a QvError."""
    return triage_text(read_log(path), names)


# --------------------------------------------------------------------------- docs page
