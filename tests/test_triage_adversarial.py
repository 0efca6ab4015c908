"""Hostile input cannot blow up triage: every regex is free of nested and unbounded repeats, and
1 MB lines made of near-matches are handled quickly (a generous bound against catastrophic
backtracking, not a benchmark: bench/triage_speed.py measures speed)."""

from __future__ import annotations

import re
import time

import pytest

try:  # Python >= 3.11
    from re import _constants as sre_constants, _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_constants, sre_parse  # type: ignore[no-redef]

from qvdoctor.doctor.triage import _CONTEXT, load_signatures, scan, triage_text

SIGS = load_signatures()
PATTERNS = [p for s in SIGS for p in s.patterns]
REPEATS = (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, getattr(sre_constants, "POSSESSIVE_REPEAT", None))
GENEROUS_SECONDS = 2.0  # catastrophic backtracking on 1 MB takes minutes; linear work takes milliseconds


def all_regexes() -> list[tuple[str, re.Pattern[str]]]:
    out = []
    for p in PATTERNS:
        if p.regex is not None:
            out.append((f"{p.entry_id}#{p.index}", p.regex))
        out += [(f"{p.entry_id}#{p.index}-extra", x.regex) for x in p.extras]
    out += [(f"context:{needle}", rx) for needle, rx in _CONTEXT]
    return out


def repeat_problems(tree, inside_repeat: bool = False) -> list[str]:
    problems = []
    for op, av in tree:
        if op in REPEATS:
            lo, hi, sub = av
            if hi == sre_constants.MAXREPEAT:
                problems.append("unbounded repeat")
            if inside_repeat and hi > 1:
                problems.append("nested repeat")
            problems += repeat_problems(sub, inside_repeat or hi > 1)
        elif op == sre_constants.SUBPATTERN:
            problems += repeat_problems(av[-1], inside_repeat)
        elif op == sre_constants.BRANCH:
            for branch in av[1]:
                problems += repeat_problems(branch, inside_repeat)
    return problems


@pytest.mark.parametrize("name,regex", all_regexes(), ids=[n for n, _ in all_regexes()])
def test_regex_has_no_nested_or_unbounded_repeats(name, regex):
    assert repeat_problems(sre_parse.parse(regex.pattern)) == []


def hostile_line(needle: str, size: int = 1_000_000) -> str:
    """A 1 MB line: the needle repeated between near-matches, digits, dots, brackets and spaces."""
    near = needle[:-1] + "\u00a7"  # the needle with its last character wrong
    chunk = f"{near} ({'9' * 40}.{'1' * 20}) [{'a' * 30}] {needle} {'x=' * 20}'{'q' * 30}' "
    return (chunk * (size // len(chunk) + 1))[:size]


@pytest.mark.parametrize("pattern", PATTERNS, ids=[f"{p.entry_id}#{p.index}" for p in PATTERNS])
def test_pattern_stays_fast_on_a_hostile_1mb_line(pattern):
    sig = next(s for s in SIGS if s.entry.id == pattern.entry_id)
    text = "INFO start\n" + hostile_line(pattern.needle) + "\n" + hostile_line(pattern.needle, 200_000) + "\nend\n"
    t0 = time.perf_counter()
    scan(text, [sig])
    assert time.perf_counter() - t0 < GENEROUS_SECONDS


def test_every_needle_in_one_hostile_megabyte():
    """All needles at once, on one line and on many short lines, through the full triage."""
    needles = " ".join(p.needle for p in PATTERNS)
    one_line = (needles + " ") * (1_000_000 // (len(needles) + 1))
    many_lines = "\n".join([needles] * 400)
    for text in (one_line, many_lines, "\n" * 1_000_000, "Error: " * 150_000, "(" * 1_000_000):
        t0 = time.perf_counter()
        result = triage_text(text)
        assert time.perf_counter() - t0 < 10 * GENEROUS_SECONDS
        assert result.exit_code in (0, 1, 2)
