"""``<local-dir>/.qvdoctor/manifest.json``: source, commit, and size + sha256 of every file that
landed verified, with the stat record (size, mtime, ctime, inode) taken when it was hashed, and a
sha256 of the file table itself. A later fetch trusts an entry without re-hashing only when the
table's own hash is intact and the file's stat record is unchanged: an edit that keeps the size
and restores the mtime still moves the ctime (no call sets it), so it is hashed again.
``verify_dir`` re-reads a directory against it."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

from qvdoctor.errors import QvError

FORMAT = "qvdoctor-fetch-manifest/1"


def manifest_path(root: Path) -> Path:
    return root / ".qvdoctor" / "manifest.json"


def sha256_file(path: Path, block: int = 4 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(block)
        view = memoryview(buf)
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(view[:n])
    return h.hexdigest()


def table_digest(files: dict) -> str:
    """sha256 of the file table in canonical JSON: proves the manifest was not edited or torn."""
    return hashlib.sha256(json.dumps(files, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def load(root: Path, strict: bool = True) -> dict | None:
    """The manifest, or None when there is none. ``strict=False``: an unreadable one is None too
    (fetch then re-hashes whatever is present)."""
    try:
        data = json.loads(manifest_path(root).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        if not strict:
            return {"format": FORMAT, "files": {}, "_untrusted": f"{manifest_path(root)} is unreadable ({exc})"}
        raise QvError(f"cannot read {manifest_path(root)}: {exc}", hint="delete it and run fetch again") from None
    if data.get("format") != FORMAT or not isinstance(data.get("files"), dict):
        if not strict:
            return {"format": FORMAT, "files": {}, "_untrusted": f"{manifest_path(root)} is not a qvdoctor fetch manifest"}
        raise QvError(f"{manifest_path(root)} is not a qvdoctor fetch manifest")
    return data


def _stat_record(st: os.stat_result) -> dict:
    return {"mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "ino": st.st_ino, "dev": st.st_dev}


class Manifest:
    """The manifest being written by one fetch; saved atomically (temp name, then rename)."""

    def __init__(self, root: Path, header: dict, previous: dict | None):
        self.root = root
        self.lock = threading.Lock()
        self.header = header
        same = previous and previous.get("repo_id") == header["repo_id"]
        self.files: dict[str, dict] = dict(previous.get("files", {})) if same else {}
        #: why no entry may be trusted without hashing ("" when the table is intact)
        self.untrusted = ""
        if previous and previous.get("_untrusted"):
            self.untrusted = previous["_untrusted"]
        elif same and previous.get("files_sha256") != table_digest(previous.get("files", {})):
            self.untrusted = "the file table does not match its recorded sha256 (edited, torn or an older format)"
        if self.untrusted:
            self.files = {}  # nothing from it is carried over: every entry is re-made from a hash

    def known(self, path: str, size: int, sha256: str | None, git_oid: str | None) -> bool:
        """True when ``path`` is recorded with this content, the table is intact, and the file's
        size, mtime, ctime and inode are as they were when it was hashed."""
        rec = self.files.get(path)
        if self.untrusted or not rec or rec.get("size") != size:
            return False
        if (sha256 and rec.get("sha256") != sha256) or (git_oid and not sha256 and rec.get("git_oid") != git_oid):
            return False
        try:
            st = os.lstat(self.root / path)
        except OSError:
            return False
        if not stat.S_ISREG(st.st_mode) or st.st_size != size:
            return False
        now = _stat_record(st)
        return all(rec.get(k) == v for k, v in now.items())

    def forget(self, path: str) -> None:
        with self.lock:
            self.files.pop(path, None)

    def add(self, path: str, size: int, sha256: str, git_oid: str | None, sources: list[str]) -> None:
        st = os.lstat(self.root / path)
        rec = {"size": size, "sha256": sha256, "sources": sources, **_stat_record(st)}
        if git_oid:
            rec["git_oid"] = git_oid
        with self.lock:
            self.files[path] = rec

    def save(self) -> None:
        with self.lock:
            data = dict(self.header)
            data["format"] = FORMAT
            data["updated"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            data["files"] = dict(sorted(self.files.items()))
            data["files_sha256"] = table_digest(data["files"])
            text = json.dumps(data, indent=1, sort_keys=True)
        path = manifest_path(self.root)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"manifest.json.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)


@dataclass
class VerifyReport:
    ok: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    extra: list[str] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)


def verify_dir(root: Path, progress=None) -> VerifyReport:
    """Re-hash every file listed in the manifest; list missing, changed and unlisted files."""
    data = load(root)
    if data is None:
        raise QvError(f"no qvdoctor manifest in {root}", hint=f"expected {manifest_path(root)}; was this directory made by 'qvdoctor fetch'?")
    rep = VerifyReport(manifest=data)
    for path, rec in sorted(data.get("files", {}).items()):
        target = root / path
        if not target.is_file() or target.is_symlink():
            rep.missing.append(path)
            continue
        size = target.stat().st_size
        if size != rec["size"]:
            rep.bad.append((path, f"size {size}, manifest says {rec['size']}"))
            continue
        digest = sha256_file(target)
        if digest != rec["sha256"]:
            rep.bad.append((path, f"sha256 {digest[:16]}…, manifest says {rec['sha256'][:16]}…"))
        else:
            rep.ok.append(path)
        if progress:
            progress(path)
    listed = set(data.get("files", {}))
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel == ".":
            dirnames[:] = [d for d in dirnames if d != ".qvdoctor"]
        for name in filenames:
            p = name if rel == "." else f"{rel}/{name}".replace(os.sep, "/")
            if p not in listed:
                rep.extra.append(p)
    return rep
