"""Accuracy of ``diagnose --log`` on real thread excerpts it was not written for.

tests/logs/threads/cases.toml holds real log excerpts quoted in public GitHub threads, each with the
root-cause family, the fix the thread confirmed, how the run ended, and its split. The split was
fixed before any signature was grown from the dev cases; this script reports each split separately,
and the held-out third is the number that counts. The peer in the same run is the catalogue as it
was before the thread work (``--baseline REV``: the checks/ tree of a git revision), so the gain is
measured on the same cases and the same machine.

Usage: python bench/triage_accuracy.py [--split held-out|dev|all] [--baseline REV] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qvdoctor.doctor.triage.evaluation import TARGETS, evaluate, load_cases, summary  # noqa: E402


def _signatures_at(rev: str):
    """The log signatures of the catalogue at git revision ``rev`` (checks/ only; today's code)."""
    from qvdoctor.doctor.catalog import load_catalog
    from qvdoctor.doctor.triage.schema import signature_of

    tmp = Path(tempfile.mkdtemp(prefix="qvdoctor-checks-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "checks"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    entries = load_catalog(tmp / "checks")
    return tuple(s for s in (signature_of(e) for e in entries) if s is not None)


def _by_part(verdicts) -> dict[str, list]:
    """Verdicts of cases collected in parts (``r31a-...``, ``r31b-...``), grouped by that prefix."""
    parts: dict[str, list] = {}
    for v in verdicts:
        m = re.match(r"(r\d{1,3}[a-z])-", v.case.id)
        if m:
            parts.setdefault(m.group(1), []).append(v)
    return dict(sorted(parts.items()))


def _report(name: str, verdicts) -> dict:
    s = summary(verdicts)
    print(f"{name}: {s['cases']} cases; family right {s['family_right']}/{s['family_scored']} "
          f"({100 * s['family_rate']:.0f} %), fix matches the thread's {s['fix_right']}/{s['fix_scored']} "
          f"({100 * s['fix_rate']:.0f} %), all-clears on failing logs {len(s['all_clear_on_failing'])}, "
          f"failing findings on logs that end in success {len(s['failing_on_success'])}; "
          f"family right on excerpts that keep their error message {s['family_right_whole']}/{s['family_scored_whole']}")
    return s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", default="held-out", choices=["held-out", "dev", "all"])
    ap.add_argument("--baseline", default=None, help="git revision whose checks/ is the peer (e.g. d659316)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    cases = load_cases(None if args.split == "all" else args.split)
    verdicts = evaluate(cases)
    now = _report(f"catalogue now ({args.split})", verdicts)
    out = {"split": args.split, "now": now, "verdicts": [v.to_dict() for v in verdicts]}
    if args.baseline:
        base = evaluate(cases, signatures=_signatures_at(args.baseline))
        out["baseline"] = _report(f"catalogue at {args.baseline}, same code ({args.split})", base)
    for part, group in _by_part(verdicts).items():  # each collector's share (ids r31a-..., r31b-...)
        s = summary(group)
        whole, scored = s["family_right_whole"], s["family_scored_whole"]
        print(f"  part {part}: {s['family_right']}/{s['family_scored']}; whole {whole}/{scored}, "
              f"cut {s['family_right'] - whole}/{s['family_scored'] - scored}; fixes {s['fix_right']}/{s['fix_scored']}; "
              f"all-clears {len(s['all_clear_on_failing'])}")
    for v in verdicts:
        if v.miss:
            print(f"  miss {v.case.id}: {v.miss}  [{v.case.url}]")
    ok = (now["family_rate"] >= TARGETS["family"] and now["fix_rate"] >= TARGETS["fix"]
          and not now["all_clear_on_failing"] and not now["failing_on_success"])
    print(f"targets (>= {TARGETS['family']:.0%} family, >= {TARGETS['fix']:.0%} fix, 0 all-clears, "
          f"0 failing on success): {'met' if ok else 'NOT met'}")
    if args.json:
        print(json.dumps(out, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
