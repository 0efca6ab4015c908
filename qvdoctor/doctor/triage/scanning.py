"""Scanning a log for signature patterns (linear on 100 MB logs), and the numbers a log states."""

from __future__ import annotations

import bisect
import gzip
import io
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Collection, Iterable

from qvdoctor.doctor.triage.schema import (
    _CONTEXT,
    _FLOAT,
    _NUMBER,
    AFTER,
    BEFORE,
    MAX_HITS,
    MAX_TRIES,
    Pattern,
    Signature,
)
from qvdoctor.errors import QvError


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
    text = decode_log(data, "stdin" if path == "-" else path)
    if "\r\n" in text[:65536]:
        text = text.replace("\r\n", "\n")
    return text


_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
         (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def _utf16_without_bom(head: bytes) -> str | None:
    """'utf-16-le'/'utf-16-be' when every other byte of mostly-ASCII text is NUL."""
    if len(head) < 4:
        return None
    even, odd = head[0::2], head[1::2]
    if odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


def decode_log(data: bytes, name: str = "log") -> str:
    """Log bytes as text: UTF-8 (with or without BOM), UTF-16/32 with a BOM, UTF-16 without one
    (what PowerShell's ``>`` and ``Out-File`` write). An empty or binary file is a QvError."""
    if not data.strip():
        raise QvError(f"{name} is empty", "pass the file vLLM's output was saved to (e.g. vllm serve ... 2>&1 | tee vllm.log)")
    head = data[:65536]
    encoding = next((enc for bom, enc in _BOMS if head.startswith(bom)), None) or _utf16_without_bom(head[:4096])
    text = data.decode(encoding or "utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    sample = text[:65536]
    controls = sum(1 for ch in sample if ch < " " and ch not in "\n\r\t\x1b\x0c\x08") + sample.count("\ufffd")
    if "\x00" in sample or controls > 0.05 * len(sample):
        raise QvError(f"{name} is not a text log (binary data)", "pass the text log vLLM wrote, not an archive, image or core dump")
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


def scan(text: str, signatures: Iterable[Signature], hints: bool | None = None) -> list[Hit]:
    """Every hit of every pattern (at most MAX_HITS per pattern), in log order.

    Each needle is one linear ``str.find`` pass. On big logs ``grep -F`` first keeps the lines
    that contain any needle (one C pass for all needles) and the needles are searched there.
    ``hints`` False scans the message patterns only, True the fallback ladder's frame, module,
    topic and exception hints only (triage runs those on the region around the last error)."""
    by_needle: dict[str, list[Pattern]] = {}
    for sig in signatures:
        for pattern in sig.patterns:
            if hints is None or hints == (pattern.role == "hint"):
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


CONTEXT_SPAN = 16 << 20  # the engine configuration is printed at start-up: look at the head and the tail


def context_numbers(text: str) -> dict[str, Any]:
    """The engine configuration the log printed (first occurrence of each value). In a log over
    32 MB only the first and the last 16 MB are searched (a start-up, or the restart before the
    failure), so a clean 100 MB log does not pay a full pass per configuration key."""
    if len(text) > 2 * CONTEXT_SPAN:
        head = context_numbers(text[:CONTEXT_SPAN])
        for k, v in context_numbers(text[-CONTEXT_SPAN:]).items():
            head.setdefault(k, v)
        return head
    found: dict[str, Any] = {}
    pos = text.find("non-default args: ")  # vLLM >= 0.8 prints the serve arguments the user gave, as a dict
    args = _literal_after(text, pos + len("non-default args: ")) if pos >= 0 else None
    if isinstance(args, dict):
        found["args"] = args
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

_ERROR_MARKERS = ("Error", "Exception", "ERROR", "CRITICAL", "Fatal Python error", "Segmentation fault", "Killed", "SIGSEGV",
                  "terminate called after throwing",
                  "NCCL WARN", "CUDA error", "NCCL error", "Watchdog caught collective operation timeout",
                  # glog: [E1206 12:00:00.1 socket.cpp:1011] / E1206 12:00:00.1 123 f.py:7]; Ray's with a full date:
                  # [2024-06-13 16:11:51,588 E 13261 13261]
                  "[E", "[F", "E0", "E1", "F0", "F1", " E ", " C ", " F ",
                  "'object': 'error'", '"object": "error"', '"object":"error"',  # an OpenAI error body, JSON or Python repr
                  "'error': {", '"error": {', '"error":{',
                  '{"code":4', '{"code":5', '{"code": 4', '{"code": 5',  # llama.cpp's server: {"code":500,"message":...}
                  "Value error, ",  # pydantic's validation error: "  Value error, Tensor parallel size (16) cannot be ..."
                  "Assertion `", "Assertion '",  # a C/C++ assert: "python: ../lib/Analysis/Allocation.cpp:47: ... Assertion `x' failed."
                  "GGML_ASSERT(", "GGML_ABORT",  # llama.cpp / ollama abort on a failed check
                  "Invalid argument: ",  # a C++ server's own option parser: "Invalid argument: --chat-template, ..."
                  "curl: (", "失败",
                  ": error: ",  # argparse: "vllm serve: error: argument --dtype: invalid choice: ..."
                  "BLAS error",  # "rocBLAS error: Cannot read ...", "CUBLAS error"
                  "nvcc fatal", "ptxas fatal",  # "nvcc fatal   : Unsupported gpu architecture 'compute_120'" (a JIT build)
                  "error: ",  # a builtin exception retyped in lower case: "valueerror: there is no module ..."
                  "error loading model",  # llama.cpp: "llama_model_load: error loading model: unknown model architecture"
                  "CMake Error", "ninja: build stopped", "FAILED: ",  # a C/C++ build: "CMake Error at x.cmake:231 (message):"
                  "[error]",  # a lower-case level in brackets (RunPod's worker log): "[error]Please install vllm[audio] ..."
                  "‘error’", "“error”",  # an error body whose quotes a word processor curled: “object": ‘error’
                  "mpirun detected",  # Open MPI's end of a job one of whose processes exited non-zero
                  "× ", '"finish_reason":"error"', '"finish_reason": "error"',  # pip's and uv's error box; a failed generation
                  "Failed to load resource", "error_type", "Run failed: ",  # a browser console; a plugin's JSON; Dify
                  '"status": 5', '"status": 4',  # a web framework's JSON error with its status
                  "panic: ", "panic serving ", " : failed to ",  # Go's panics (Ollama); llama.cpp's "fn : failed to eval"
                  "✘ ", "Missing ", "' object has no attribute '",  # docker compose; MLX's load_weights; "Failed to x: 'A' object ..."
                  '"level": "ERROR"', '"level":"ERROR"', "[error] ", "EXHAUSTED: ")  # JSON logging; nginx; XLA
_TRACEBACK = "Traceback (most recent call last)"  # only when no exception line is found (a cut-off log)
_HTTP_MARKERS = ('HTTP/1.1" ', 'HTTP/1.0" ', 'HTTP/2" ', 'HTTP/2.0" ')  # an access-log line, only when nothing else looks like an error
# a client's bare status line: "400 As of transformers v4.44, default chat template is no longer allowed ..."
# (a status code, then a message of its own); also only when nothing else looks like an error
_STATUS_MARKERS = tuple(f"{code} " for code in (400, 401, 403, 404, 405, 408, 413, 415, 422, 429, 500, 501, 502, 503, 504))
_STATUS_LINE = re.compile(r"(?:[>▎][ \t]?){0,3}[ \t]{0,4}[45]\d\d \"?[A-Z][\w'-]{1,40}[ ,:][^\n]{8,}")  # also 404 "Model ..."
_PREFIX = re.compile(
    r"(?:[>▎`][ \t]?){0,3}"  # a thread's quote marks, or the backtick of a line quoted as `code`
    # a CloudWatch export's epoch milliseconds: 1756144012376,"(EngineCore_0 pid=75) ERROR ..., or a CSV export's quote
    r"(?:\d{13},)?\"?"
    # docker build's (BuildKit) step and elapsed seconds: "#12 291.9 ERROR: ...", or copied as "291.9   ERROR: ..."
    r"(?:(?:#\d{1,4} )?\d{1,5}\.\d\s{1,4}(?=\S))?"
    # a timestamp in front (docker logs --timestamps, journald, Python logging): 2026-04-28T14:17:50.089230833+08:00
    r"(?P<ts>\[?\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?\]?\s{1,3})?"
    # a process tag, also in the colour vLLM gives it on a terminal, its escape lost or spelt out ("[1;36m(APIServer
    # pid=670293)[0;0m", CloudWatch's "#033[1;36m", a copy that turned the escape into U+FFFD)
    r"(?:\s{0,8}(?:(?:\x1b|#033|\ufffd)?\[[\d;]{1,12}m)?(?:\([\w.-]{1,60}(?: rank=\d{1,5})? pid=\d{1,10}(?:, ip=[\d.:]{1,40})?\)"
    r"(?:(?:\x1b|#033|\ufffd)?\[[\d;]{1,12}m)?|\[rank\d{1,5}\]:|[\w.-]{1,60}\s{1,4}\|)\s?){0,3}"
    r"(?:(?P<level>INFO|WARNING|ERROR|DEBUG|CRITICAL)\s{1,3}\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,6})?\s{1,3}"
    r"(?:\[[\w./]{1,80}:\d{1,6}\]|[\w./]{1,80}:\d{1,6}\])\s?"  # newer releases: "[renderers/hf.py:128]"
    # the same prefix with its level and time cut off by the copy: "[core.py:393] RuntimeError: ..."
    r"|\[[\w./]{1,80}\.py:\d{1,6}\]\s"
    # after a timestamp, Python logging's own level: 2024-06-13 16:11:50,396 ERROR worker.py:1752 -- ...
    r"|(?(ts)(?P<level2>INFO|WARNING|ERROR|DEBUG|CRITICAL)(?::|\s{1,3}(?:[\w.]{1,80}:\d{1,6}\s{1,3}--\s)?)\s?))?"
)
# an exception line indented or behind a markdown bullet / list number (a thread's list quoting the error):
# only the strict form "SomeError: message" counts, never a source line of a traceback
# or quoted as `code` or in **bold**, or behind a zh_CN label ("报错：AttributeError: ...")
_BULLET = re.compile(r"[ \t]{0,12}(?:\*\*|[-*+\u2022|]\s{1,3}|\d{1,2}[.)]\s{1,3}|`|(?:报错|错误|异常)[:：]\s{0,3})?")
# IPython's header, also as a thread quotes it in a code span: "`RuntimeError      Traceback (most recent call last)"
_IPY_HEADER = re.compile(r"[\w.]{1,120}(?:Error|Exception)[ \t]{2,120}Traceback \(most recent call last\)")
_STRICT_EXCEPTION = re.compile(r"[\w.]{0,120}(?:Error|Exception)(?:\[[\w.]{1,40}\])?:`? \S")  # also `RuntimeError:` message
_EXCEPTION = re.compile(r"[\w.]{0,120}(?:Error|Exception|Exit|Interrupt)\b:?|Fatal Python error|Segmentation fault|Killed\s{0,8}$"
                        r"|Traceback \(most recent call last\)")  # a cut-off traceback still is an error
# vLLM's ERROR/CRITICAL prefix with nothing after it: the copy stops inside it ("ERROR 06-11 02:07:59 [serving_chat.p")
_CUT_PREFIX = (r"^(?:\([\w.-]{1,60}(?: rank=\d{1,5})? pid=\d{1,10}\)\s?)?(?:ERROR|CRITICAL) \d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,6})?"
               r"(?:\s{1,3}\[?[\w.]{0,80})?\s?$")
# the same cut inside the time ("(EngineCore pid=20856) ERROR 05"): only as the log's last line, when nothing else is an error
_CUT_TIME = re.compile(r"(?:\([\w.-]{1,60}(?: rank=\d{1,5})? pid=\d{1,10}\)\s?)?(?:ERROR|CRITICAL) \d[\d:. -]{0,17}$")
_LOW_LEVEL = re.compile(r"NCCL WARN [^\n]{0,300}?(?:fail|Fail|error|Error|refused|closed|abort|timed out|(?:ret|rc|err|errno|code)\s?[=:]?\s?-?[1-9])"
                        r"|^(?:[>▎][ \t]?){0,3}\s{0,8}(?:\[[\w.-]{1,40}\]:\s?)?\[?[EF](?:1[0-2]|0?[1-9])[0-3]\d \d\d:\d\d:\d\d[.\d]{0,12}[ \]]|(?i:cuda error): |NCCL error"
                        r"|^\(autoscaler[^)\n]{0,40}\) Error: |^[\w.]{1,120}\.[A-Z]\w{2,60}(?:IsEnabled|NotFound|Failed): "
                        r"|nccl(?:Remote|System|Internal|UnhandledCuda|InvalidUsage)Error|[\"'“”‘’]object[\"'“”‘’]: ?[\"'“”‘’]error[\"'“”‘’]|Error code: [45]\d\d|^(?:(?:#\d{1,4} )?\d{1,5}\.\d\s{1,4})?ERROR: (?!pip's dependency resolver)"
                        r"|Watchdog caught collective operation timeout"
                        # the shell's report of a child a signal ended: "/bin/bash: line 1:   263 Segmentation fault  (core dumped) cmd"
                        r"|: line \d{1,7}:\s{1,8}\d{1,10} (?:Segmentation fault|Killed|Aborted|Bus error|Illegal instruction|Floating point exception)\b"
                        # an exception quoted in backticks inside a sentence: "... it fails with `KeyError: 'x'`"
                        r"|`{1,3}(?:\[rank\d{1,5}\]:\s?)?[\w.]{1,120}(?:Error|Exception)(?:\[[\w.]{1,40}\])?: \S"
                        # the OpenAI-compatible server's error body: {'error': {'message': ..., 'code': 500}}, or compact JSON
                        r"|[\"']error[\"']: ?\{ ?[\"']message[\"']: ?|\{\"code\": ?[45]\d\d, ?\"message\": ?\""
                        # vLLM's ERROR/CRITICAL prefix even when the copy stops inside it
                        r"|" + _CUT_PREFIX +
                        r"|^\s{0,12}Value error, \S"
                        r"|Assertion [`'][^\n]{1,300}[`'] failed|GGML_ASSERT\(|GGML_ABORT\b|^Invalid argument: -{0,2}\S|\w{0,10}BLAS error|(?:nvcc|ptxas) fatal\s{0,4}: |error loading model: "
                        r"|^\s{0,8}(?:value|runtime|type|key|attribute|import|modulenotfound|assertion|index|os)error: \S|^[\w./-]{1,60}(?: [\w-]{1,30})?: error: "
                        r"|\w: error: (?:argument |unrecognized arguments|the following arguments are required)"
                        # pip's resolver quoted inside a sentence: "...怎么解决： ERROR: Could not find a version that satisfies ..."
                        r"|ERROR: (?:Could not find a version that satisfies|No matching distribution found|Cannot install |ResolutionImpossible)"
                        # an exception alone in a table cell (a log viewer's export): "> 2024-07-09 13:06:08.540 | NotImplementedError |"
                        r"|\|[ \t]{1,4}[\w.]{0,80}\w(?:Error|Exception)(?:: [^|\n]{1,400})?[ \t]{0,4}\|"
                        # Go's runtime (ollama's runner) crashing
                        r"|^SIGSEGV: segmentation violation"
                        # curl's own error ("curl: (7) Failed to connect to 127.0.0.1 port 6066 ... Connection refused"),
                        # a zh_CN "failed:" label ("apply_chat_template 失败: can only concatenate str ..."), and Python
                        # logging's "%(asctime)s - %(name)s - %(levelname)s - %(message)s" form
                        r"|curl: \(\d{1,2}\) \S|失败[:：]\s{0,3}\S|\d\d:\d\d:\d\d(?:[,.]\d{1,6})? - [\w.]{1,120} - (?:ERROR|CRITICAL)(?: - |: )"
                        # a traceback flattened onto one line (a form field): '...video.py", line 174, in load_bytes | assert i == n | | AssertionError'
                        r"|\", line \d{1,7}, in \w[^\n]{0,400}?[ |]\w{0,60}(?:Error|Exception)(?:: [^\n]{0,400})?[ \t]{0,4}$"
                        # Ray's glog with a full date: [2024-06-13 16:11:51,588 E 13261 13261] core_worker.cc:228: (C: a check failure)
                        r"|\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[,.]\d{1,9} [ECF] \d{1,10} \d{1,10}\]"
                        # the level behind a bracketed stamp or between pipes (loguru): "[2026-08-27|00:42:09|api] ERROR  ...",
                        # "2025-08-15 11:38:23.728 | ERROR    | __main__:lifespan:107 - ..."
                        r"|^\[[^\]\n]{1,80}\][ \t]{1,4}(?:ERROR|CRITICAL)[ \t]|\|[ \t](?:ERROR|CRITICAL)[ \t]{1,8}\|"
                        # the level in brackets at the start (Ascend CANN's log, also behind vLLM's process tag) or
                        # after a time: "(APIServer pid=9702) [ERROR] 2026-03-14-17:57:31 (PID:9702, ...) ERR99999 ...",
                        # "2026-05-08 11:50:25.739 [Error] (Router) Retry also failed: ..."
                        r"|(?:^|pid=\d{1,10}\) |\d\d:\d\d:\d\d[.,]\d{1,6} )\[(?:ERROR|CRITICAL|Error|Critical|error|critical)\] \S"
                        # a CUDA runtime error by its enum name ("cudaErrorLaunchFailure: unspecified launch failure"), a
                        # C++ exception that ended the process, and pytest's "E   RuntimeError: ..." lines
                        r"|\bcudaError[A-Z]\w{2,60}: \S|^terminate called after throwing an instance of "
                        r"|(?:^|Z?\]\s)E {3,16}[\w.]{1,120}(?:Error|Exception): \S"
                        # ptxas' per-line error and setuptools' failed compiler command
                        r"|\bptxas [^\n]{0,300}?; error\s{0,4}: |^error: command '[^'\n]{1,300}' failed with exit code \d{1,4}"
                        # a C/C++ build's failure, also indented under pip's output: CMake's error, ninja's stop
                        r"|^\s{0,12}CMake Error(?: at [^\n]{1,400})?:|^\s{0,12}ninja: build stopped: |^\s{0,12}FAILED: [\w/.-]{1,400}\.o\s*$"
                        # llama.cpp's server failing a request: "task 1 - error: internal_error"
                        r"|^task \d{1,9} - error: \S"
                        # a tool's own lower-case error line (tritonserver's "error: creating server: Internal - failed to
                        # load all models"), a lower-case level in brackets (RunPod's "[error]..."), Open MPI's job end,
                        # and KServe's "%(asctime)s %(process)d %(name)s %(levelname)s" form
                        r"|^error: \S|^\[(?:error|fatal|critical)\] ?\S|^mpirun detected that one or more processes exited with non-zero status"
                        r"|^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[.,]\d{1,6} \d{1,10} [\w.-]{1,60} (?:ERROR|CRITICAL) \S"
                        # uv's error chain ("  × Failed to download and build `vllm @ git+...`"), and an OpenAI-style
                        # response whose generation failed ("finish_reason":"error")
                        r"|^\s{0,4}× \S|\"finish_reason\": ?\"error\""
                        # a browser console's failed request (a web UI in front of the server), an error type in a
                        # plugin's JSON error ("error_type":"ServiceUnavailableError"), and Rust's tracing format
                        # (text-generation-inference, vllm.rs): "2026-02-09T14:33:30.985766Z ERROR runner: ..."
                        r"|Failed to load resource: the server responded with a status of [45]\d\d"
                        r"|[\"']error_type[\"']: ?[\"'][\w.]{1,80}(?:Error|Exception)[\"']"
                        # a workflow's failed run (Dify: "Run failed: Invalid context structure: ..."), and a web
                        # framework's JSON error with its status ({"code": "internal_server_error", ..., "status": 500})
                        r"|^`?Run failed: \S|\{\"code\": ?\"\w{3,60}\", ?\"message\": ?\"[^\n]{0,600}\"status\": ?[45]\d\d\b"
                        r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z\s{1,3}(?:ERROR|CRITICAL)\s\S"
                        # Go's runtime panic and net/http's recovered one (Ollama: "http: panic serving 127.0.0.1:5: ..."),
                        # and llama.cpp's "function : failed to ..." ("llava_eval_image_embed : failed to eval")
                        r"|^panic: \S|\bhttp: panic serving \S|^\s{0,4}[a-z_][a-z0-9_]{2,60} : failed to \w"
                        # docker compose's failed step (" ✘ Image vllm/vllm-openai:x Error failed to resolve ..."), MLX's
                        # load_weights without its exception type ("Missing 393 parameters: "), and a Python error's
                        # text behind a tool's "Failed to save /m: 'OPTConfig' object has no attribute 'x'"
                        r"|^\s{0,4}✘ (?:Image|Container|Network|Volume|Service) \S{1,300} Error\b|^Missing \d{1,7} parameters: ?$"
                        r"|\bFailed to \w{2,30} [^\n]{0,300}: '[\w.]{1,80}' object has no attribute '\w{1,80}'"
                        # a JSON log line's level (RunPod's worker: {"message": "...", "level": "ERROR"}), nginx's error
                        # log ("2022/06/15 21:08:37 [error] 19#19: *1 js: failed ping"), and XLA's resource errors
                        # ("EXHAUSTED: Ran out of memory in memory space vmem", "RESOURCE_EXHAUSTED: ...")
                        r"|\"level(?:name)?\": ?\"(?:ERROR|CRITICAL|FATAL|error|critical|fatal)\""
                        r"|^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(?:error|crit|alert|emerg)\] \d{1,10}#\d{1,10}: "
                        r"|^(?:RESOURCE_)?EXHAUSTED: \S")
# an access-log line with a 4xx/5xx status: "POST /v1/completions HTTP/1.1" 400 Bad Request
_HTTP_ERROR = re.compile(r'"(?:GET|POST|PUT|PATCH|DELETE) /[^"\n]{0,300} HTTP/[12](?:\.[01])?" [45]\d\d\b')
_FRAME = re.compile(r"\s|File \"|During handling of the above|The above exception")


def _strip_prefix(line: str) -> tuple[str, str | None]:
    """A log line without vLLM's worker tag and level/time/file prefix, and its level."""
    match = _PREFIX.match(line)
    return (line[match.end():], match.group("level") or match.group("level2")) if match else (line, None)


def _error_like(line: str) -> bool:
    """An exception line (``ValueError: ...``) or an ERROR/CRITICAL message; never a traceback frame."""
    msg, level = _strip_prefix(line[:2000])
    if _LOW_LEVEL.search(line[:2000]):  # NCCL's own failure lines and CUDA errors, whatever their prefix
        return True
    if not msg or level in ("DEBUG", "INFO"):  # an exception vLLM logged at DEBUG/INFO level was handled
        return False
    bullet = _BULLET.match(msg) if level is None else None
    if bullet and bullet.end() and msg.startswith(_TRACEBACK, bullet.end()):  # a header quoted indented
        return True
    if bullet and bullet.end():  # indented or a list item: the strict "XError: message" form only
        return bool(_STRICT_EXCEPTION.match(msg, bullet.end()) or _IPY_HEADER.match(msg, bullet.end()))
    if level in ("ERROR", "CRITICAL") and _STRICT_EXCEPTION.match(msg.lstrip()):  # "...:597]  ValueError: x"
        return True
    if _FRAME.match(msg):
        return False
    return bool(_EXCEPTION.match(msg)) or level in ("ERROR", "CRITICAL")


def last_error(text: str, skip: set[int]) -> tuple[int, str] | None:
    """Offset and text of the last error-looking line whose start is not in ``skip``.

    Found with ``rfind`` from the end of the log, so a clean 100 MB log costs little. A bare
    traceback header counts only when no exception line is found (the log was cut off)."""
    best = _last_of(text, skip, _ERROR_MARKERS)
    if best is not None:
        return best
    best = _last_of(text, skip, (_TRACEBACK,)) or _last_frame(text, skip)
    if best is not None and not _handled_below(text, best[0]):
        return best
    return (_last_of(text, skip, _HTTP_MARKERS, _http_error) or _last_of(text, skip, _STATUS_MARKERS, _status_line)
            or _cut_in_time(text, skip) or _cut_header(text, skip))


def _handled_below(text: str, pos: int) -> bool:
    """The traceback at ``pos`` ends in an exception line vLLM logged at DEBUG/INFO level: it was handled
    (e.g. a chat template it could not load before taking its fallback), so it is no failure."""
    for line in text[pos:pos + CUT_TAIL].splitlines()[1:]:
        msg, level = _strip_prefix(line[:2000])
        if level in ("DEBUG", "INFO") and _STRICT_EXCEPTION.match(msg):
            return True
    return False


def _last_line(text: str) -> tuple[int, str]:
    """Offset and text of the log's last non-blank line (where a cut copy stops)."""
    tail = text.rstrip()
    start = tail.rfind("\n") + 1
    return start, tail[start:]


# a traceback header the copy stops inside: "Traceback (most", "...?it/s][rank2]: Traceback (mo"
_CUT_HEADER = re.compile(r"Traceback \((?:m[a-z ]{0,25})?\s?$")


def _cut_header(text: str, skip: set[int]) -> tuple[int, str] | None:
    """The log's last line when the copy stops inside a traceback's header."""
    start, line = _last_line(text)
    return (start, line) if start not in skip and _CUT_HEADER.search(line[-60:]) else None


def _cut_in_time(text: str, skip: set[int]) -> tuple[int, str] | None:
    """The log's last line when the copy stops inside an ERROR/CRITICAL prefix's time."""
    start, line = _last_line(text)
    return (start, line) if start not in skip and _CUT_TIME.fullmatch(line) else None


def _http_error(line: str) -> bool:
    return bool(_HTTP_ERROR.search(line[:2000]))


def _status_line(line: str) -> bool:
    return bool(_STATUS_LINE.match(line[:2000]))


# ", in f" may be wrapped onto the next line by the terminal the log was copied from
# (a copy may have lost the opening quote: 'File /envs/x/lib/python3.11/site-packages/pydantic/v1/main.py", line 341')
_TB_FRAME = re.compile(r'File (?:""?[^"\n]{1,400}|/[^"\n]{1,400}\.py)""?, line \d{1,7}(?:, in | in |,?[ \t]*$)')  # " in ": faulthandler's; ""x"": a CSV export's quoting


# IPython / Jupyter: "File ~/x/llm.py:177, in LLM.__init__(self, ...)", in a notebook as a link
# "File [/opt/.../module.py:1562](http://host:8888/...), in Module._call_impl"
_IPY_FRAME = re.compile(r"[ \t]{0,8}File \[?[~/.\w][^\n]{0,400}?\.py:\d{1,7}(?:\]\([^)\n]{0,400}\))?, in ")


# IPython 7 (Colab's notebooks): "/usr/lib/python3.11/dist-packages/vllm/entrypoints/llm.py in __init__(self, model, ...)",
# in Colab as a link: "[/usr/local/lib/python3.11/dist-packages/vllm/engine/llm_engine.py](https://localhost:8080/#) in f(cls)"
_IPY7_FRAME = re.compile(r"\[?(?:/|~/)[^\n\]]{0,400}?\.py(?:\]\([^)\n]{0,400}\))? in [\w.<>]{1,120}\(")


# a frame line the copy cuts inside its path, as the log's last line: '  File "/usr/lib/python3.11/site-pa'
_CUT_FRAME = re.compile(r'[ \t]{0,8}File "[/~<.\w][^"\n]{0,400}$')


_LOGGED_FRAME = re.compile(r'[ \t]{0,8}File "[/~<.\w]')


# rich's traceback box (typer, diffusers' scripts): "│ /usr/lib/python3.10/site-packages/x/y.py:193 in forward  │"
_RICH_FRAME = re.compile(r"│ {1,3}(?:[A-Za-z]:\\|[~/.\w])[^\n│]{0,400}?\.py:\d{1,7} in\b")


# a C++ backtrace's frame (c10::Error, a fatal signal): "[rank0]: frame #49: _PyEval_EvalFrameDefault + 0x53d6 (0x4f34c6 in
# /usr/bin/python)"; what remains of an exception's report when the copy starts after its message
_CPP_FRAME = re.compile(r"[^\n]{0,80}?\bframe #\d{1,4}: [\w/.:<>~(\[]")
# a numbered native backtrace (glibc's backtrace_symbols as TensorRT-LLM prints it, UCX's handler):
# "7       0x75134403cb62 /opt/tritonserver/backends/tensorrtllm/libtriton_tensorrtllm.so(+0x18b62) [0x75134403cb62]"
_NATIVE_FRAME = re.compile(r"[ \t]{0,4}\d{1,3}[ \t]{1,8}0x[0-9a-fA-F]{6,16}[ \t]{1,4}[\w/?.:<>~(\[]")


def _logged_frame(text: str, start: int, end: int) -> bool:
    """A frame vLLM logged at ERROR/CRITICAL level, even one the terminal wrapped inside its path."""
    msg, level = _strip_prefix(text[start:min(end, start + 2000)])
    return level in ("ERROR", "CRITICAL") and bool(_LOGGED_FRAME.match(msg))


def _last_frame(text: str, skip: Collection[int] = ()) -> tuple[int, str] | None:
    """The last traceback frame line (Python's or IPython's, one logged behind an ERROR prefix, one
    cut mid-path at the end of the log, or a C++ backtrace's) not on a ``skip`` line: a traceback cut
    before its header and its message is still one."""
    found = [f for f in (_last_matching(text, '", line ', _TB_FRAME.search, skip),
                         _last_matching(text, ".py:", _IPY_FRAME.match, skip),
                         _last_matching(text, ".py:", _RICH_FRAME.match, skip),
                         _last_matching(text, ".py in ", _IPY7_FRAME.match, skip),
                         _last_matching(text, ".py](", _IPY7_FRAME.match, skip),
                         _last_matching(text, 'File "', _logged_frame, skip),
                         _last_matching(text, "frame #", _CPP_FRAME.match, skip),
                         _last_matching(text, " 0x", _NATIVE_FRAME.match, skip)) if f is not None]
    start, line = _last_line(text)
    if start not in skip and _CUT_FRAME.match(line):
        found.append((start, line))
    return max(found) if found else None


# what may follow a traceback's last frame before its exception line: the frame's source line and Python
# 3.11's carets (indented), IPython's numbered source lines ("--> 177 x = f()"), a closing code fence, and a
# logged line the copy cuts inside its prefix ("(Worker_TP0 pid=2263963) ERROR 10-18 03:20:36 [m")
_AFTER_FRAME = re.compile(r"\s|│|-*> ?\d|\d{1,6} |`{3}|$")
_CUT_PREFIX_LINE = re.compile(_CUT_PREFIX)
CUT_TAIL = 64 * 1024  # a copy ends where it ends: only the tail is read
# Python's frame, IPython's, and rich's ("x.py:193 in forward", the name may be wrapped onto the next line)
_FRAME_FUNCTION = re.compile(r'", line \d{1,7}, in ([\w.<>]{1,120})|\.py:\d{1,7}(?:\]\([^)\n]{0,400}\))?,? in ([\w.<>]{1,120})'
                             r'|\.py(?:\]\([^)\n]{0,400}\))? in ([\w.<>]{1,120})\(')  # and IPython 7's


def _in_traceback_body(line: str) -> bool:
    """A frame, a source line or caret under it, a blank line or a cut prefix: no exception line."""
    if _CUT_PREFIX_LINE.match(line) or _TB_FRAME.search(line):
        return True
    msg, _ = _strip_prefix(line)
    return bool(_AFTER_FRAME.match(msg)) and not _STRICT_EXCEPTION.search(line)


_PROCESS_HEADER = re.compile(r"(?:\([\w.-]{1,60} pid=\d{1,10}\)\s?)?Process [\w.:-]{1,60}:\s*$")
_GLOG_WARNING = re.compile(r"(?:\[rank\d{1,5}\]:)?\[W\d{3,4} \d\d:\d\d:\d\d")
_EXCEPTION_NAME = re.compile(r"[\w.]{0,120}\w(?:Error|Exception)(?:\(|:|$)")  # "AssertionError()", never "Error in ..."


def cut_in_traceback(text: str) -> tuple[int, str] | None:
    """Offset and text of the last traceback frame when the log ends inside the traceback, after its
    frames and before the exception line that names the error (a copy cut short; or the header line
    when the copy stops inside it), else None. Not
    when the exception was named above the frames (vLLM 0.8 logs it before the traceback; a log
    viewer that lists the newest line first)."""
    header = _cut_header(text, set())  # the copy stops inside the header itself: no frame at all
    if header is not None:
        return header
    offset = max(0, len(text) - CUT_TAIL)
    tail = text[offset:]
    frame = _last_frame(tail)
    if frame is None:
        return None
    end = tail.find("\n", frame[0])
    after = [frame[1], *(tail[end + 1:].rstrip().splitlines() if end >= 0 else [])]
    if len(after) > 1 and after[-2].startswith(after[-1]):  # the copy stops inside the next line's prefix: "[rank0"
        after.pop()
    if not all(_in_traceback_body(line) for line in after[1:]):
        return None
    above = tail[:frame[0]].splitlines()[::-1][:400]
    rest = iter(line for line in above if not _in_traceback_body(line))
    first = next(rest, "")
    if _TRACEBACK in first:  # the header: what the line above it says
        first = next(rest, "")
        # multiprocessing's "Process EngineCore_0:" header and PyTorch's exit warnings come between an exception
        # vLLM logged and the traceback of its re-raise (run_engine_core's "raise e"): that exception is the error
        while _PROCESS_HEADER.match(first) or _GLOG_WARNING.match(first):
            first = next(rest, "")
    msg, _ = _strip_prefix(first)
    if _STRICT_EXCEPTION.search(first) or _EXCEPTION_NAME.match(msg.strip()):
        return None
    return offset + frame[0], frame[1]


def traceback_functions(text: str, end: int) -> list[str]:
    """The function names of the traceback frames before ``end``, innermost first (from the last header on)."""
    start = max(0, end - CUT_TAIL)
    head = text.rfind(_TRACEBACK, start, end)
    stop = text.find("\n", end)
    span = text[head if head >= 0 else start:stop if stop >= 0 else len(text)]
    return [a or b or c for a, b, c in _FRAME_FUNCTION.findall(span)][::-1]


def _last_matching(text: str, marker: str, test: Callable[..., Any], skip: Collection[int] = ()) -> tuple[int, str] | None:
    pos = len(text)
    for _ in range(200):
        pos = text.rfind(marker, 0, pos)
        if pos < 0:
            return None
        start, end = _line_bounds(text, pos)
        if start not in skip and test(text, start, end):
            return start, text[start:end]
        pos = start
    return None


def _last_of(text: str, skip: set[int], markers: tuple[str, ...],
             is_error: Callable[[str], bool] | None = None) -> tuple[int, str] | None:
    best: tuple[int, str] | None = None
    for marker in markers:
        pos = len(text)
        for _ in range(2000):
            # only after the best line so far: a marker absent from the log's tail costs a tail scan, not a full one
            pos = text.rfind(marker, best[0] + 1 if best else 0, pos)
            if pos < 0:
                break
            start, end = _line_bounds(text, pos)
            line = text[start:end]
            if start not in skip and (is_error or _error_like)(line):
                best = (start, line)
                break
            pos = start
    return best


# --------------------------------------------------------------------------- ranking
