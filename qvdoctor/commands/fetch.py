"""``qvdoctor fetch`` and ``qvdoctor verify``. Implementation lives in ``qvdoctor.fetch``."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator, List, Optional

import typer


@contextmanager
def interrupted_line(reporter) -> Iterator[None]:
    """Ctrl-C: stop the bars, then one line saying what is kept; exit 130."""
    try:
        yield
    except KeyboardInterrupt:
        close = getattr(reporter, "close", None)
        if close:
            close()
        kept = getattr(reporter, "done", 0)
        print(f"interrupted: {kept / 1e6:.1f} MB kept, re-run the same command to resume", file=sys.stderr, flush=True)
        raise SystemExit(130) from None
    finally:
        close = getattr(reporter, "close", None)
        if close:
            close()


def register(app: typer.Typer) -> None:
    @app.command("fetch")
    def fetch_cmd(
        repo_id: str = typer.Argument(..., help="owner/name, e.g. Qwen/Qwen2.5-VL-7B-Instruct"),
        source: str = typer.Option("auto", "--source", help="auto | hf | hf-mirror | modelscope | git-lfs"),
        revision: Optional[str] = typer.Option(None, "--revision", help="branch, tag or commit (default: the source's default branch)"),
        local_dir: Optional[str] = typer.Option(None, "--local-dir", help="target directory (default: ./<name>)"),
        include: List[str] = typer.Option([], "--include", help="glob of files to fetch (repeatable)"),
        exclude: List[str] = typer.Option([], "--exclude", help="glob of files to skip (repeatable)"),
        connections: Optional[int] = typer.Option(None, "--connections", help="connections per file, used as given (default: all opened at once, 40 shared by the files in flight, at most 20 per file)"),
        dry_run: bool = typer.Option(False, "--dry-run", help="list what would be fetched, transfer nothing"),
        verify_all: bool = typer.Option(False, "--verify-all", help="re-hash every file present, even those the manifest proves unchanged"),
        cache: bool = typer.Option(False, "--cache", help="write into the Hugging Face cache (snapshots/<commit> of the repo), where vLLM and transformers find it by id"),
        json_out: bool = typer.Option(False, "--json", help="emit JSON-lines events on stdout"),
    ) -> None:
        """Download a model repo, resumable and verified (sha256), from the fastest source.

        Example: qvdoctor fetch Qwen/Qwen2.5-VL-3B-Instruct --cache. Exit codes: 0 all verified,
        2 some files failed (re-run resumes), 3 could not start (no reachable source, bad id...),
        130 interrupted (re-run resumes)."""
        import json
        import sys

        from qvdoctor.fetch.progress import make_reporter
        from qvdoctor.fetch.run import fetch

        reporter = make_reporter(json_out)
        with interrupted_line(reporter):
            summary = fetch(repo_id, source=source, revision=revision, local_dir=local_dir, include=include,
                            exclude=exclude, connections=connections, dry_run=dry_run, verify_all=verify_all,
                            cache=cache, reporter=reporter)
        if dry_run:
            if json_out:
                print(json.dumps({"event": "dry_run", **summary}, sort_keys=True))
            else:
                print(f"{summary['repo_id']} @ {summary['commit']} ({summary['source']}, {summary['endpoint']}): "
                      f"{summary['files']} files, {summary['bytes'] / 1e6:.1f} MB -> {summary['local_dir']}")
                for f in summary["listing"]:
                    print(f"  {f['size']:>14,d}  {f['path']}")
            sys.stdout.flush()

    @app.command("verify")
    def verify_cmd(
        directory: str = typer.Argument(..., help="a directory made by 'qvdoctor fetch'"),
        repair: bool = typer.Option(False, "--repair", help="re-fetch exactly the missing and changed files (from the manifest's source and commit)"),
        json_out: bool = typer.Option(False, "--json", help="print the report as JSON"),
    ) -> None:
        """Re-hash a fetched directory against its manifest (exit 2 on any missing or changed file).

        Example: qvdoctor verify ./Qwen2.5-VL-3B-Instruct --repair. Exit codes: 0 all files match
        (after --repair: all repaired), 2 missing or changed files remain, 3 no manifest."""
        import glob
        import json
        from pathlib import Path

        from qvdoctor.errors import EXIT_FAIL
        from qvdoctor.fetch.manifest import verify_dir

        rep = verify_dir(Path(directory))
        m = rep.manifest
        repaired: list[str] = []
        if repair and (rep.missing or rep.bad):
            from qvdoctor.fetch.progress import Reporter, make_reporter
            from qvdoctor.fetch.run import fetch

            todo = rep.missing + [p for p, _ in rep.bad]
            reporter = Reporter() if json_out else make_reporter(False)
            with interrupted_line(reporter):
                fetch(m["repo_id"], source=m.get("source") or "auto", revision=m.get("commit"),
                      local_dir=directory, include=[glob.escape(p) for p in todo], verify_all=True, reporter=reporter)
            repaired = todo
            rep = verify_dir(Path(directory))
        if json_out:
            print(json.dumps({"ok": rep.ok, "missing": rep.missing, "bad": [{"path": p, "why": w} for p, w in rep.bad],
                              "extra": rep.extra, "repo_id": m.get("repo_id"), "commit": m.get("commit"),
                              "repaired": repaired}, sort_keys=True))
        else:
            print(f"{m.get('repo_id')} @ {str(m.get('commit'))[:12]} ({m.get('source')}): "
                  f"{len(rep.ok)} ok, {len(rep.missing)} missing, {len(rep.bad)} changed, {len(rep.extra)} not in the manifest")
            for p in rep.missing:
                print(f"  missing  {p}")
            for p, why in rep.bad:
                print(f"  changed  {p}: {why}")
            for p in rep.extra:
                print(f"  extra    {p}")
            for p in repaired:
                print(f"  repaired {p}")
        if rep.missing or rep.bad:
            raise typer.Exit(EXIT_FAIL)
