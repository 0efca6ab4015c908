"""The image's verify stage: do the installed CUDA libraries carry kernels for the target cc?

Runs inside the image being built with nothing but Python (3.9+) and a copy of
``qvdoctor/kernels`` and this file: ``PYTHONPATH=DIR python -m qvdoctor.image.verify
--policy DIR/policy.json --report DIR/kernel-report.json``. Exit 0 when every library the
serving path needs has a kernel image for the cc, 2 when one does not (the reason is printed),
3 when the check itself cannot run. ``inspect-image`` applies the same judgement (``judge``)."""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
import sysconfig
from dataclasses import asdict, dataclass, field
from typing import Iterable, List, Optional


@dataclass
class Library:
    """One CUDA-bearing library and the verdict for the cc."""

    package: str
    path: str  # relative to site-packages, "vllm/_C.abi3.so"
    size: int
    sass: List[str] = field(default_factory=list)
    ptx: List[str] = field(default_factory=list)
    error: Optional[str] = None
    runs: Optional[bool] = None  # None: not judged (no cc) or unreadable
    reason: Optional[str] = None  # why nothing here loads on the cc
    optional: Optional[str] = None  # why a failure here does not matter on this cc


def package_of(relpath: str, packages: Iterable[str]) -> Optional[str]:
    """'vllm/_C.abi3.so' -> 'vllm'; 'flash_attn_2_cuda.cpython-310-x86_64-linux-gnu.so' -> 'flash_attn'."""
    head = relpath.replace("\\", "/").split("/")[0]
    stem = head.split(".")[0]
    for name in packages:
        if stem == name or stem.startswith(name + "_"):
            return name
    return None


def _cc_key(text: str):
    major, minor = text.split(".")
    return int(major), int(minor)


def judge(libraries: List[Library], cc: Optional[str], policy: dict) -> List[str]:
    """Fill in each library's verdict for ``cc``; return the failures, one line each."""
    from qvdoctor.kernels.rules import missing_reason

    failures = []
    for lib in libraries:
        if lib.error:
            failures.append(f"{lib.path}: cannot be read ({lib.error})")
            continue
        if not cc:
            continue
        lib.reason = missing_reason(lib.sass, lib.ptx, cc)
        lib.runs = lib.reason is None
        if lib.runs:
            continue
        for rule in policy.get("optional", []):
            if fnmatch.fnmatch(lib.path, rule["glob"]) and _cc_key(cc) < _cc_key(rule["below_cc"]):
                lib.optional = rule["reason"]
                break
        if not lib.optional:
            failures.append(f"{lib.path}: {lib.reason}")
    for name in policy.get("must_have_kernels", []) if cc else []:
        if not any(lib.package == name and (lib.sass or lib.ptx) for lib in libraries):
            failures.append(f"{name}: no library with CUDA kernels found (a CPU-only build, or not installed)")
    return failures


def scan_site(roots: List[str], packages: List[str]) -> List[Library]:
    """Every shared library of ``packages`` under the site-packages ``roots`` that has device code or cannot be read."""
    from qvdoctor.kernels import scan_file

    found, seen = [], set()
    for root in roots:
        if not os.path.isdir(root):
            continue
        for entry in sorted(os.listdir(root)):
            if package_of(entry, packages) is None:
                continue
            top = os.path.join(root, entry)
            files = [top] if os.path.isfile(top) else [os.path.join(d, f) for d, _, names in os.walk(top) for f in names]
            for path in sorted(files):
                name = os.path.basename(path)
                if not (name.endswith(".so") or ".so." in name) or os.path.islink(path) or path in seen:
                    continue
                seen.add(path)
                archs = scan_file(path)
                if archs.error == "not an ELF file" or not (archs.sass or archs.ptx or archs.error):
                    continue
                rel = os.path.relpath(path, root).replace(os.sep, "/")
                found.append(Library(package_of(rel, packages) or entry, rel, archs.size, list(archs.sass), list(archs.ptx), archs.error))
    return found


def render(libraries: List[Library], cc: Optional[str], failures: List[str], out=sys.stdout) -> None:
    for lib in libraries:
        kernels = " ".join(lib.sass + lib.ptx) or "-"
        verdict = "" if lib.runs is None else ("runs" if lib.runs else ("unused here" if lib.optional else "NO KERNEL IMAGE"))
        print(f"  {lib.path:<60} {kernels:<40} {verdict}", file=out)
    for lib in libraries:
        if lib.optional:
            print(f"  note: {lib.path}: {lib.reason}; fine: {lib.optional}", file=out)
    if cc:
        if failures:
            for line in failures:
                print(f"qvdoctor verify: FAIL for cc {cc}: {line}", file=out)
        else:
            print(f"qvdoctor verify: OK: {len(libraries)} CUDA libraries carry kernels for cc {cc}", file=out)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qvdoctor.image.verify", description=__doc__.splitlines()[0])
    parser.add_argument("--policy", required=True, help="policy.json written by build-image (cc, packages, optional libraries)")
    parser.add_argument("--cc", help="compute capability to check, e.g. 7.5 (default: the policy's)")
    parser.add_argument("--report", help="write the verdicts here as JSON")
    parser.add_argument("roots", nargs="*", help="site-packages directories (default: this Python's)")
    args = parser.parse_args(argv)
    try:
        with open(args.policy) as fh:
            policy = json.load(fh)
    except (OSError, ValueError) as exc:
        print(f"qvdoctor verify: error: cannot read policy {args.policy}: {exc}", file=sys.stderr)
        return 3
    roots = args.roots or sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    cc = args.cc or policy.get("cc")
    libraries = scan_site(roots, policy["packages"])
    failures = judge(libraries, cc, policy)
    print(f"qvdoctor verify: kernel images under {', '.join(roots)} for cc {cc}:")
    render(libraries, cc, failures)
    if args.report:
        tmp = args.report + ".part"
        with open(tmp, "w") as fh:
            json.dump({"cc": cc, "ok": not failures, "failures": failures, "libraries": [asdict(lib) for lib in libraries]}, fh, indent=2)
        os.replace(tmp, args.report)
    return 2 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
