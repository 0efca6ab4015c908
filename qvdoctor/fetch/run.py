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
from qvdoctor.fetch.listing import Origin, RemoteFile, select
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


def hf_hub_cache() -> Path:
    """The Hugging Face cache root, as huggingface_hub computes it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface")
    return Path(home).expanduser() / "hub"


def cache_snapshot_dir(repo_id: str, commit: str) -> Path:
    """``<hub cache>/models--Owner--Name/snapshots/<commit>``: where vLLM and transformers look."""
    return hf_hub_cache() / ("models--" + repo_id.replace("/", "--")) / "snapshots" / commit


def _write_cache_ref(repo_id: str, revision: str | None, commit: str) -> None:
    ref = hf_hub_cache() / ("models--" + repo_id.replace("/", "--")) / "refs" / (revision or "main")
    if revision == commit:
        return  # a commit needs no ref
    ref.parent.mkdir(parents=True, exist_ok=True)
    tmp = ref.with_name(ref.name + f".{os.getpid()}.tmp")
    tmp.write_text(commit)
    os.replace(tmp, ref)


def _reachable(names: list[str], repo_id: str, revision: str | None, reporter, auto: bool) -> tuple[list[str], dict[str, str]]:
    """Probe every source at once and report each (within about a second); raise at once when every
    source failed for good (DNS, refused, TLS, 403, offline). Sources with no answer yet stay in
    the running: a slow link is not a dead one. Returns (names to list, {failed name: why})."""
    from qvdoctor.fetch.reach import probe, summary

    results = probe(names, repo_id, revision)
    for r in results.values():
        if r.pending:
            r.reason += f"; waiting up to {_list_timeout():g} s"
    reporter.event("reach", sources={n: {"endpoint": r.endpoint, "ok": r.ok, "reason": r.reason, "pending": r.pending,
                                         "ms": round(r.seconds * 1000)} for n, r in results.items()})
    alive = [n for n, r in results.items() if r.ok or r.pending]
    if not alive:
        offline = all(r.reason.startswith("offline mode") for r in results.values())
        hint = ("unset the offline setting to download, or use a model that is already local"
                if offline else "check the network, DNS and proxy (https_proxy), or name a reachable hub with --source")
        if not auto:
            raise QvError(f"cannot reach {summary(results)}", hint=hint)
        raise QvError(f"no source could be asked for {repo_id}: {summary(results)}", hint=hint)
    return alive, {n: r.reason for n, r in results.items() if not (r.ok or r.pending)}


def _list_timeout() -> float:
    from qvdoctor.fetch.probe import list_timeout

    return list_timeout()


class _Background:
    """Run ``fn`` in a daemon thread; ``result()`` waits and returns or raises what it did."""

    def __init__(self, fn):
        import threading

        self._out: tuple[bool, object] | None = None

        def run() -> None:
            try:
                self._out = (True, fn())
            except BaseException as exc:  # noqa: BLE001 - handed to result()
                self._out = (False, exc)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def result(self, timeout: float, message: str):
        deadline = time.monotonic() + timeout
        while self._thread.is_alive() and time.monotonic() < deadline:
            self._thread.join(0.2)  # short joins: Ctrl-C stays responsive
        if self._out is None:
            raise QvError(message, hint="check the network, DNS and proxy (https_proxy), or name a reachable hub with --source")
        ok, value = self._out
        if not ok:
            raise value  # type: ignore[misc]
        return value


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
    verify_all: bool = False,
    cache: bool = False,
    reporter=None,
) -> dict:
    """Download ``repo_id`` verified into ``local_dir`` (or the Hugging Face cache with ``cache``);
    returns a summary dict. A file counts as verified only when its bytes were hashed in this run
    or its manifest entry proves it unchanged (``verify_all`` re-hashes every file)."""
    from qvdoctor.fetch.engine import Engine, Result, Settings
    from qvdoctor.fetch.manifest import Manifest, load, sha256_file
    from qvdoctor.fetch.progress import Reporter
    from qvdoctor.fetch.sources import ALL_SOURCES, HTTP_SOURCES, SOURCES, check_repo_id, endpoint_for, list_repo

    reporter = reporter or Reporter()
    check_repo_id(repo_id)
    if source not in ALL_SOURCES:
        raise QvError(f"unknown source {source!r}", hint="one of: " + ", ".join(ALL_SOURCES))
    if connections is not None and not 1 <= connections <= 64:
        raise QvError(f"--connections must be between 1 and 64, not {connections}")
    if cache and local_dir is not None:
        raise QvError("--cache and --local-dir both name where files go", hint="pick one")
    if cache and source == "git-lfs":
        raise QvError("--cache works with the HTTP sources (hf, hf-mirror, modelscope), not git-lfs",
                      hint="use --local-dir with git-lfs, or another --source")
    root = Path(local_dir or repo_id.split("/")[-1]).absolute()

    if source == "auto":
        names, seen = [], set()
        for s in HTTP_SOURCES:
            if endpoint_for(s) not in seen:
                seen.add(endpoint_for(s))
                names.append(s)
    else:
        names = [source]
    adapter = SOURCES.get(source)
    early = None
    if adapter is not None and adapter.list is not None and adapter.offline() is None:
        # One named HTTP source: list it while the reachability probe runs (the probe's answer
        # only matters when it fails, and then it is the error), so the probe costs no time.
        early = _Background(lambda: list_repo(source, repo_id, revision))
    names, unreachable = _reachable(names, repo_id, revision, reporter, source == "auto")

    if adapter is not None and adapter.transfer is not None:
        summary = adapter.transfer(repo_id, revision, root, include, exclude, dry_run, reporter, verify_all=verify_all)
        if not dry_run:
            _record(summary, root, complete=not include and not exclude)
        return summary

    fallbacks: dict[str, list[Origin]] = {}
    if source == "auto":
        from qvdoctor.fetch.probe import choose

        listing, fallbacks = choose(names, repo_id, revision, reporter, unreachable)
    else:
        assert early is not None
        listing = early.result(_list_timeout(), f"cannot reach {source} ({redact_url(endpoint_for(source))}): "
                                                f"no listing within {_list_timeout():g} s")
    if cache:
        root = cache_snapshot_dir(repo_id, listing.commit)
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
    jobs = []
    with dir_lock(root, reporter):
        header = {k: summary[k] for k in ("repo_id", "source", "endpoint", "revision", "commit")}
        manifest = Manifest(root, header, load(root, strict=False))
        if manifest.untrusted and not verify_all:
            reporter.event("note", message=f"manifest: {manifest.untrusted}; every file present is hashed again")
        todo: list[tuple[RemoteFile, list[Origin]]] = []
        unchanged = hashed = 0
        for f in files:
            target = target_path(root, f.path)
            if not verify_all and manifest.known(f.path, f.size, f.sha256, f.git_oid):
                unchanged += 1
                continue
            if target.is_file() and not target.is_symlink() and target.stat().st_size == f.size:
                digest = sha256_file(target)
                git_ok = f.sha256 is None and f.git_oid and _git_oid_file(target, f.size) == f.git_oid
                if digest == f.sha256 or git_ok:
                    manifest.add(f.path, f.size, digest, f.git_oid, [listing.source])
                    hashed += 1
                    continue
                manifest.forget(f.path)
                reporter.event("note", message=f"{f.path}: the bytes on disk do not match sha256 of the listing; fetching it again")
            assert listing.origin_for is not None
            todo.append((f, [listing.origin_for(f), *fallbacks.get(f.path, [])]))
        _preflight_space(root, [f for f, _ in todo])
        reporter.start(len(files), sum(f.size for f in files), repo_id=repo_id, commit=listing.commit,
                       source=listing.source, present=unchanged + hashed)
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
        verified=len(files) - len(failed), present=unchanged + hashed, unchanged=unchanged,
        hashed=hashed + len(jobs) - len(failed),
        transferred=sum(j.transferred for j in jobs), failed=[{"path": j.file.path, "reason": j.error} for j in failed],
    )
    if not failed:
        if cache:
            _write_cache_ref(repo_id, revision, listing.commit)
        _record(summary, root, complete=not include and not exclude)
    reporter.finish(**{k: v for k, v in summary.items() if k != "listing"})
    if failed:
        first = failed[0]
        raise QvError(
            f"{len(failed)} of {len(files)} files could not be fetched verified; first: {first.file.path}: {first.error}",
            hint="run the same command again: verified files are kept and partial ones resume",
            exit_code=EXIT_FAIL,
        )
    return summary


def _record(summary: dict, root: Path, complete: bool) -> None:
    """Tell the local model registry what landed where (plan/diagnose/smoke find it by id)."""
    from qvdoctor.fetch.manifest import manifest_path
    from qvdoctor.model.registry import record

    record(summary["repo_id"], revision=summary.get("revision"), commit=summary.get("commit"),
           source=summary.get("source"), directory=root, manifest=manifest_path(root), complete=complete)


def _git_oid_file(path: Path, size: int) -> str:
    import hashlib

    h = hashlib.sha1(b"blob %d\0" % size)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
