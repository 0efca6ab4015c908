"""git-lfs: the real ``git`` and ``git lfs``. A bare clone with smudge skipped (pointers only)
under ``<local-dir>/.qvdoctor/git/``, then ``git lfs fetch`` (resumable: git-lfs keeps partial
objects in ``lfs/incomplete/`` and continues them with a Range request), then each file is
checked (sha256 for LFS objects, git blob id for the rest) while it is placed under its final
name. Files are taken from the object store, never from a checkout, so no symlink or hook from
the repo is ever materialised."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Sequence

from qvdoctor.errors import EXIT_FAIL, QvError
from qvdoctor.fetch.http import redact_url
from qvdoctor.fetch.listing import RemoteFile, select
from qvdoctor.fetch.paths import check_repo_path, dir_lock, target_path

_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_POINTER = re.compile(rb"^version https://git-lfs\.github\.com/spec/v1\noid sha256:([0-9a-f]{64})\nsize (\d+)\n")
INSTALL_HINT = "install git and git-lfs (Debian/Ubuntu: apt-get install -y git git-lfs)"


def _git_env(token: str | None, staging: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(GIT_LFS_SKIP_SMUDGE="1", GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="true", LC_ALL="C")
    if token:  # through the environment, never on a command line (ps would show it)
        n = int(env.get("GIT_CONFIG_COUNT", "0") or 0)
        env[f"GIT_CONFIG_KEY_{n}"] = "http.extraHeader"
        env[f"GIT_CONFIG_VALUE_{n}"] = f"Authorization: Bearer {token}"
        env["GIT_CONFIG_COUNT"] = str(n + 1)
    return env


def _run(args: list[str], env: dict, cwd: Path | None = None, token: str | None = None) -> str:
    r = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise _GitFailed(_clean(r.stderr, token))
    return r.stdout


class _GitFailed(Exception):
    pass


def _clean(text: str, token: str | None) -> str:
    if token:
        text = text.replace(token, "***")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith(("Cloning", "remote: Enumerating"))]
    return (lines[-1] if lines else "git failed")[:300]


def _listing(staging: Path, env: dict, commit: str) -> list[RemoteFile]:
    out = subprocess.run(["git", "ls-tree", "-r", "-l", "-z", commit], cwd=staging, env=env, capture_output=True, check=True).stdout
    entries = []
    for rec in out.split(b"\0"):
        if not rec:
            continue
        meta, _, path_b = rec.partition(b"\t")
        mode, typ, oid, size = meta.decode().split()
        path = path_b.decode("utf-8", "surrogateescape")
        if mode == "120000":
            raise QvError(f"refusing {path!r}: the repo stores it as a symlink",
                          hint="a model repo has no reason to ship symlinks; nothing was written")
        if typ != "blob":
            continue  # submodules
        check_repo_path(path)
        entries.append((path, oid, int(size)))
    small = [e for e in entries if e[2] < 1024]
    pointers: dict[str, tuple[str, int]] = {}
    if small:
        batch = subprocess.run(["git", "cat-file", "--batch"], cwd=staging, env=env, capture_output=True, check=True,
                               input=b"".join(f"{oid}\n".encode() for _, oid, _ in small)).stdout
        pos = 0
        for _, oid, size in small:
            header_end = batch.index(b"\n", pos)
            n = int(batch[pos:header_end].split()[2])
            data = batch[header_end + 1 : header_end + 1 + n]
            pos = header_end + 1 + n + 1
            m = _POINTER.match(data)
            if m:
                pointers[oid] = (m.group(1).decode(), int(m.group(2)))
    files = []
    for path, oid, size in entries:
        if oid in pointers:
            sha, real = pointers[oid]
            files.append(RemoteFile(path, real, sha, oid, True))
        else:
            files.append(RemoteFile(path, size, None, oid, False))
    return files


def _clone(url: str, revision: str | None, staging: Path, env: dict, token: str | None, repo_id: str, where: str) -> None:
    tmp = staging.with_name(staging.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    args = ["git", "clone", "--bare", "--quiet"]
    if revision and not _HEX40.match(revision):
        args += ["--depth", "1", "--branch", revision]
    elif not revision:
        args += ["--depth", "1"]
    try:
        _run([*args, url, str(tmp)], env, token=token)
    except _GitFailed as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        msg = str(exc)
        low = msg.lower()
        if "remote branch" in low and "not found" in low:
            raise QvError(f"revision {revision!r} not found in {repo_id} on {where}",
                          hint="use a branch, a tag or a full commit id that exists in the repo") from None
        if "401" in msg or "403" in msg or "authentication" in low or "could not read username" in low:
            raise QvError(f"{repo_id} on {where} needs a token with access ({msg})",
                          hint="set HF_TOKEN or run 'hf auth login'") from None
        if "not found" in low or "404" in msg:
            raise QvError(f"repository {repo_id} not found on {where}", hint="check the id (owner/name)") from None
        raise QvError(f"git clone from {where} failed: {msg}", hint="check the network/proxy or pick another --source") from None
    os.replace(tmp, staging)


def fetch_git_lfs(repo_id: str, revision: str | None, root: Path, include: Sequence[str], exclude: Sequence[str],
                  dry_run: bool, reporter, verify_all: bool = False) -> dict:
    from qvdoctor.fetch.manifest import Manifest, load, sha256_file
    from qvdoctor.fetch.sources import endpoint_for
    from qvdoctor.fetch.sources.hf import hf_token

    if not shutil.which("git"):
        raise QvError("git is not installed", hint=INSTALL_HINT)
    if subprocess.run(["git", "lfs", "version"], capture_output=True).returncode != 0:
        raise QvError("git-lfs is not installed", hint=INSTALL_HINT)
    endpoint = endpoint_for("git-lfs")
    where = f"git-lfs ({redact_url(endpoint)})"
    url = f"{endpoint}/{repo_id}.git"
    token = hf_token()
    env = _git_env(token)
    slug = repo_id.replace("/", "--")
    staging = root / ".qvdoctor" / "git" / f"{slug}@{revision or 'HEAD'}.git"
    if dry_run:
        import tempfile

        with tempfile.TemporaryDirectory() as tmpd:
            staging = Path(tmpd) / "repo.git"
            _clone(url, revision, staging, env, token, repo_id, where)
            commit = _run(["git", "rev-parse", f"{revision or 'HEAD'}^{{commit}}"], env, staging, token).strip()
            files = select(_listing(staging, env, commit), include, exclude)
        return {"repo_id": repo_id, "source": "git-lfs", "endpoint": redact_url(endpoint), "revision": revision or "HEAD",
                "commit": commit, "local_dir": str(root), "files": len(files), "bytes": sum(f.size for f in files),
                "listing": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in files]}

    root.mkdir(parents=True, exist_ok=True)
    with dir_lock(root, reporter):
        staging.parent.mkdir(parents=True, exist_ok=True)
        if not (staging / "HEAD").exists():
            _clone(url, revision, staging, env, token, repo_id, where)
        try:
            commit = _run(["git", "rev-parse", "--verify", "--quiet", f"{revision or 'HEAD'}^{{commit}}"], env, staging, token).strip()
        except _GitFailed:
            raise QvError(f"revision {revision!r} not found in {repo_id} on {where}") from None
        files = select(_listing(staging, env, commit), include, exclude)
        if not files:
            raise QvError(f"no file of {repo_id} matches the --include/--exclude patterns")
        header = {"repo_id": repo_id, "source": "git-lfs", "endpoint": redact_url(endpoint),
                  "revision": revision or "HEAD", "commit": commit}
        manifest = Manifest(root, header, load(root, strict=False))
        todo, unchanged = [], 0
        for f in files:
            target = target_path(root, f.path)  # refuse symlinked parents before anything moves
            if not verify_all and manifest.known(f.path, f.size, f.sha256, f.git_oid):
                unchanged += 1
            elif target.is_file() and not target.is_symlink() and target.stat().st_size == f.size and _matches(target, f):
                manifest.add(f.path, f.size, sha256_file(target), f.git_oid, ["git-lfs"])
            else:
                manifest.forget(f.path)
                todo.append(f)
        reporter.start(len(files), sum(f.size for f in files), repo_id=repo_id, commit=commit, source="git-lfs",
                       present=len(files) - len(todo))
        lfs = [f for f in todo if f.lfs]
        if lfs:
            _lfs_fetch(staging, env, token, commit, lfs, reporter, where)
        for f in todo:
            _install(root, staging, env, f, manifest)
            reporter.file_done(f.path, "verified", "")
        manifest.save()
    shutil.rmtree(staging, ignore_errors=True)  # everything is in place and recorded
    summary = {**header, "local_dir": str(root), "files": len(files), "bytes": sum(f.size for f in files),
               "verified": len(files), "present": len(files) - len(todo), "unchanged": unchanged,
               "hashed": len(files) - unchanged, "transferred": sum(f.size for f in todo if f.lfs), "failed": []}
    reporter.finish(**summary)
    return summary


def _matches(path: Path, f: RemoteFile) -> bool:
    """The file on disk has the content the listing names (sha256 for LFS, git blob id otherwise)."""
    from qvdoctor.fetch.manifest import sha256_file

    if f.sha256:
        return sha256_file(path) == f.sha256
    h = hashlib.sha1(b"blob %d\0" % f.size)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest() == f.git_oid


RESUME_SUFFIX = ".part"  # git-lfs >= 3.x resumes lfs/incomplete/<oid>.part with a Range request


def _adopt_orphans(staging: Path, files: list[RemoteFile]) -> None:
    """git-lfs renames ``<oid>.part`` to a temp name while it downloads and renames it back only
    on a clean error; after kill -9 or a power cut the bytes sit in ``<oid><digits>``. Put the
    longest such file back where git-lfs looks, so the next fetch resumes instead of restarting
    (git-lfs re-hashes the prefix and checks the final sha256 itself)."""
    inc = staging / "lfs" / "incomplete"
    if not inc.is_dir():
        return
    for f in files:
        assert f.sha256
        part = inc / (f.sha256 + RESUME_SUFFIX)
        orphans = [p for p in inc.glob(f.sha256 + "*") if p != part and p.is_file()]
        if not orphans:
            continue
        best = max(orphans, key=lambda p: p.stat().st_size)
        have = part.stat().st_size if part.exists() else -1
        if best.stat().st_size > have and best.stat().st_size <= f.size:
            os.replace(best, part)
        for p in orphans:
            if p.exists() and p != part:
                p.unlink()


def _lfs_fetch(staging: Path, env: dict, token: str | None, commit: str, files: list[RemoteFile], reporter, where: str) -> None:
    _adopt_orphans(staging, files)
    progress = staging / "qvdoctor-lfs-progress"
    progress.write_text("")
    env = {**env, "GIT_LFS_PROGRESS": str(progress)}
    args = ["git", "lfs", "fetch", "origin", commit, "--include", ",".join(f.path for f in files)]
    proc = subprocess.Popen(args, cwd=staging, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: dict[str, int] = {}
    by_name = {f.path: f for f in files}
    for f in files:
        reporter.file_start(f.path, f.size, 0)

    def poll() -> None:
        # git-lfs progress lines: "download <i>/<n> <bytes so far>/<size> <name>"
        try:
            for line in progress.read_text().splitlines():
                parts = line.split(" ", 3)
                if len(parts) == 4 and parts[0] == "download":
                    done = int(parts[2].split("/")[0])
                    name = parts[3]
                    if name in by_name and done > seen.get(name, 0):
                        reporter.advance(name, done - seen.get(name, 0))
                        seen[name] = done
        except (OSError, ValueError):
            pass

    stderr = ""
    while proc.poll() is None:
        poll()
        time.sleep(0.25)
    stderr = proc.stderr.read() if proc.stderr else ""
    poll()
    if proc.returncode != 0:
        raise QvError(f"git lfs fetch from {where} failed: {_clean(stderr, token)}",
                      hint="run the same command again: git-lfs resumes partial objects", exit_code=EXIT_FAIL)


def _install(root: Path, staging: Path, env: dict, f: RemoteFile, manifest) -> None:
    """Copy one file out of the object store into a temp name while hashing it, check the
    hash, then rename it to its final name."""
    target = target_path(root, f.path)
    tmp_dir = root / ".qvdoctor" / "partial"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f"git-{hashlib.sha1(f.path.encode()).hexdigest()}.tmp"
    sha = hashlib.sha256()
    if f.lfs:
        assert f.sha256
        obj = staging / "lfs" / "objects" / f.sha256[:2] / f.sha256[2:4] / f.sha256
        if not obj.is_file():
            raise QvError(f"git-lfs did not deliver {f.path} (object {f.sha256[:12]}…)",
                          hint="run the same command again", exit_code=EXIT_FAIL)
        with open(obj, "rb") as src, open(tmp, "wb") as dst:
            for block in iter(lambda: src.read(1 << 20), b""):
                sha.update(block)
                dst.write(block)
            dst.flush()
            os.fsync(dst.fileno())
        if sha.hexdigest() != f.sha256:
            tmp.unlink()
            obj.unlink()
            raise QvError(f"{f.path}: sha256 mismatch after git-lfs", hint="run the same command again", exit_code=EXIT_FAIL)
    else:
        blob = subprocess.run(["git", "cat-file", "blob", f.git_oid or ""], cwd=staging, env=env, capture_output=True, check=True).stdout
        if hashlib.sha1(b"blob %d\0" % len(blob) + blob).hexdigest() != f.git_oid:
            raise QvError(f"{f.path}: git blob id mismatch", exit_code=EXIT_FAIL)
        sha.update(blob)
        with open(tmp, "wb") as dst:
            dst.write(blob)
            dst.flush()
            os.fsync(dst.fileno())
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, target)
    manifest.add(f.path, f.size, sha.hexdigest(), f.git_oid, ["git-lfs"])
