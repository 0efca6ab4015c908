"""``fetch()``: list, select, skip what is already verified, transfer the rest, write the manifest."""

from __future__ import annotations

import errno
import os
import shutil
import time
from pathlib import Path
from typing import Sequence

from qvdoctor.errors import EXIT_FAIL, QvError
from qvdoctor.fetch.http import redact_url
from qvdoctor.fetch.listing import Listing, Origin, RemoteFile, select
from qvdoctor.fetch.partfile import disk_full
from qvdoctor.fetch.paths import check_repo_path, dir_lock, target_path


def _preflight_space(root: Path, todo: list[RemoteFile]) -> None:
    from qvdoctor.fetch.partfile import part_key

    partial = root / ".qvdoctor" / "partial"
    need = 0
    for f in todo:
        p = partial / f"{part_key(f.path, f.size, f.sha256 or f.git_oid or '')}.part"
        have = p.stat().st_size if p.exists() else 0
        need += max(0, f.size - have)
    free = shutil.disk_usage(root).free
    if need > free:
        raise QvError(
            f"not enough disk space in {root}: {need / 1e9:.2f} GB still to download, {free / 1e9:.2f} GB free",
            hint="free space, pick another --local-dir, or narrow the files with --include/--exclude",
        )


def fetch(
    repo_id: str,
    *,
    source: str = "auto",
    revision: str | None = None,
    local_dir: str | os.PathLike | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    connections: int | None = None,
    dry_run: bool = False,
    reporter=None,
) -> dict:
    """Download ``repo_id`` verified into ``local_dir``; returns a summary dict."""
    from qvdoctor.fetch.engine import Engine, Result, Settings
    from qvdoctor.fetch.manifest import Manifest, load, sha256_file
    from qvdoctor.fetch.progress import Reporter
    from qvdoctor.fetch.sources import ALL_SOURCES, check_repo_id, list_repo

    reporter = reporter or Reporter()
    check_repo_id(repo_id)
    if source not in ALL_SOURCES:
        raise QvError(f"unknown source {source!r}", hint="one of: " + ", ".join(ALL_SOURCES))
    if connections is not None and not 1 <= connections <= 64:
        raise QvError(f"--connections must be between 1 and 64, not {connections}")
    root = Path(local_dir or repo_id.split("/")[-1]).absolute()
    if source == "git-lfs":
        from qvdoctor.fetch.sources.gitlfs import fetch_git_lfs

        return fetch_git_lfs(repo_id, revision, root, include, exclude, dry_run, reporter)

    fallbacks: dict[str, list[Origin]] = {}
    if source == "auto":
        from qvdoctor.fetch.probe import choose

        listing, fallbacks = choose(repo_id, revision, reporter)
    else:
        listing = list_repo(source, repo_id, revision)
    files = select(listing.files, include, exclude)
    for f in files:
        check_repo_path(f.path)
    if not files:
        raise QvError(f"no file of {repo_id} matches the --include/--exclude patterns",
                      hint=f"the repo has {len(listing.files)} files; try 'qvdoctor fetch {repo_id} --dry-run'")
    summary = {
        "repo_id": repo_id, "source": listing.source, "endpoint": redact_url(listing.endpoint),
        "revision": listing.revision, "commit": listing.commit, "local_dir": str(root),
        "files": len(files), "bytes": sum(f.size for f in files),
    }
    if dry_run:
        summary["listing"] = [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in files]
        return summary

    root.mkdir(parents=True, exist_ok=True)
    with dir_lock(root, reporter):
        header = {k: summary[k] for k in ("repo_id", "source", "endpoint", "revision", "commit")}
        manifest = Manifest(root, header, load(root))
        todo: list[tuple[RemoteFile, list[Origin]]] = []
        present = 0
        for f in files:
            target = target_path(root, f.path)
            if manifest.known(f.path, f.size, f.sha256, f.git_oid):
                present += 1
                continue
            if target.is_file() and not target.is_symlink() and target.stat().st_size == f.size:
                digest = sha256_file(target)
                git_ok = f.sha256 is None and f.git_oid and _git_oid_file(target, f.size) == f.git_oid
                if digest == f.sha256 or git_ok:
                    manifest.add(f.path, f.size, digest, f.git_oid, [listing.source])
                    present += 1
                    continue
            assert listing.origin_for is not None
            todo.append((f, [listing.origin_for(f), *fallbacks.get(f.path, [])]))
        _preflight_space(root, [f for f, _ in todo])
        reporter.start(len(files), sum(f.size for f in files), repo_id=repo_id, commit=listing.commit,
                       source=listing.source, present=present)
        last_save = [time.monotonic()]

        def on_verified(r: Result) -> None:
            manifest.add(r.path, r.size, r.sha256, r.git_oid, r.sources)
            if time.monotonic() - last_save[0] > 1.0:
                last_save[0] = time.monotonic()
                manifest.save()

        engine = Engine(root, todo, Settings.from_env(connections), reporter, on_verified)
        try:
            jobs = engine.run()
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise disk_full(root, exc) from None
            raise
        finally:
            try:
                manifest.save()
            except OSError as exc:
                if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
    failed = [j for j in jobs if j.state == "failed"]
    summary.update(
        verified=len(files) - len(failed), present=present,
        transferred=sum(j.transferred for j in jobs), failed=[{"path": j.file.path, "reason": j.error} for j in failed],
    )
    reporter.finish(**{k: v for k, v in summary.items() if k != "listing"})
    if failed:
        first = failed[0]
        raise QvError(
            f"{len(failed)} of {len(files)} files could not be fetched verified; first: {first.file.path}: {first.error}",
            hint="run the same command again: verified files are kept and partial ones resume",
            exit_code=EXIT_FAIL,
        )
    return summary


def _git_oid_file(path: Path, size: int) -> str:
    import hashlib

    h = hashlib.sha1(b"blob %d\0" % size)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
