"""``qvdoctor fetch`` and ``qvdoctor verify``. Implementation lives in ``qvdoctor.fetch``."""

from __future__ import annotations

from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("fetch")
    def fetch_cmd(
        repo_id: str = typer.Argument(..., help="owner/name, e.g. Qwen/Qwen2.5-VL-7B-Instruct"),
        source: str = typer.Option("auto", "--source", help="auto | hf | hf-mirror | modelscope | git-lfs"),
        revision: Optional[str] = typer.Option(None, "--revision", help="branch, tag or commit (default: the source's default branch)"),
        local_dir: Optional[str] = typer.Option(None, "--local-dir", help="target directory (default: ./<name>)"),
        include: List[str] = typer.Option([], "--include", help="glob of files to fetch (repeatable)"),
        exclude: List[str] = typer.Option([], "--exclude", help="glob of files to skip (repeatable)"),
        connections: Optional[int] = typer.Option(None, "--connections", help="connections per large file (default: 8, widened to 10 on throttled links)"),
        dry_run: bool = typer.Option(False, "--dry-run", help="list what would be fetched, transfer nothing"),
        json_out: bool = typer.Option(False, "--json", help="emit JSON-lines events on stdout"),
    ) -> None:
        """Download a model repo, resumable and verified (sha256), from the fastest source."""
        import json
        import sys

        from qvdoctor.fetch.progress import make_reporter
        from qvdoctor.fetch.run import fetch

        reporter = make_reporter(json_out)
        try:
            summary = fetch(repo_id, source=source, revision=revision, local_dir=local_dir, include=include,
                            exclude=exclude, connections=connections, dry_run=dry_run, reporter=reporter)
        finally:
            close = getattr(reporter, "close", None)
            if close:
                close()
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
        json_out: bool = typer.Option(False, "--json", help="print the report as JSON"),
    ) -> None:
        """Re-hash a fetched directory against its manifest (exit 2 on any missing or changed file)."""
        import json
        from pathlib import Path

        from qvdoctor.errors import EXIT_FAIL
        from qvdoctor.fetch.manifest import verify_dir

        rep = verify_dir(Path(directory))
        m = rep.manifest
        if json_out:
            print(json.dumps({"ok": rep.ok, "missing": rep.missing, "bad": [{"path": p, "why": w} for p, w in rep.bad],
                              "extra": rep.extra, "repo_id": m.get("repo_id"), "commit": m.get("commit")}, sort_keys=True))
        else:
            print(f"{m.get('repo_id')} @ {str(m.get('commit'))[:12]} ({m.get('source')}): "
                  f"{len(rep.ok)} ok, {len(rep.missing)} missing, {len(rep.bad)} changed, {len(rep.extra)} not in the manifest")
            for p in rep.missing:
                print(f"  missing  {p}")
            for p, why in rep.bad:
                print(f"  changed  {p}: {why}")
            for p in rep.extra:
                print(f"  extra    {p}")
        if rep.missing or rep.bad:
            raise typer.Exit(EXIT_FAIL)
