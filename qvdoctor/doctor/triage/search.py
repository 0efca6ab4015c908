"""What to search for when no signature explains an error: the longest run of plain words in its
message (numbers, paths, shapes and quoted values dropped, since they differ from one log to the
next), as a link to an issue search in vLLM's tracker."""

from __future__ import annotations

import re
from urllib.parse import quote_plus

from qvdoctor.doctor.triage.scanning import _strip_prefix

ISSUES = "https://github.com/vllm-project/vllm/issues?q="
MIN_WORDS = 3  # fewer plain words than this say too little to search for
MAX_WORDS = 16
_EXCEPTION_PREFIX = re.compile(r"[\w.]{0,120}(?:Error|Exception)(?:\[[\w.]{1,40}\])?:\s")
# what differs between two logs of the same failure: quoted values, bracketed shapes and lists, any word
# holding a digit, a path or an operator, and any word too long to be one (a token, a hash)
_VARIABLE = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"|`[^`\n]*`|\([^)\n]*\)|\[[^\]\n]*\]|\{[^}\n]*\}"
                       r"|\S*[\d/\\=<>@#$%^&*|~]\S*|\S{24,}")


def search_phrase(line: str) -> str | None:
    """The longest run of plain words of an error line's message, or None when it has too few."""
    msg = _strip_prefix(line)[0].strip().lstrip("`>*-|× ").rstrip("`")
    named = _EXCEPTION_PREFIX.search(msg)
    if named:
        msg = msg[named.end():]
    runs = [run.split() for run in _VARIABLE.split(msg)]
    best = max(runs, key=len, default=[])
    words = " ".join(best[:MAX_WORDS]).strip(" ,;:.!?-")
    return words if len(words.split()) >= MIN_WORDS else None


def search_url(line: str) -> str | None:
    """A link to vLLM's issues that quote the phrase, or None."""
    phrase = search_phrase(line)
    return ISSUES + quote_plus(f'is:issue "{phrase}"') if phrase else None
