"""Hugging Face Hub emulator: ``/api/models`` (info, tree with Link pagination), ``/resolve/``
(X-Repo-Commit on every answer, ETag = git sha1 for regular files, a 302 carrying
X-Linked-Etag/X-Linked-Size to a CDN on a second port for LFS files), Range/206/416, the
X-Error-Code errors, gated repos. No xet headers or fields, so every client uses plain HTTP."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qs, quote, unquote, urlsplit

from .base import EmuHandler, EmuServer, Faults
from .repo import EmuFile, EmuRepo


class HubHandler(EmuHandler):
    server: "HubServer"

    # -- routing ---------------------------------------------------------------------------
    def route(self) -> None:
        if self.admin():
            return
        hub = self.server
        hub.seen_auth.append(self.headers.get("Authorization") or "")
        parts = urlsplit(self.path)
        segs = parts.path.split("/")[1:]  # still percent-encoded
        query = parse_qs(parts.query)
        if segs[:2] == ["api", "models"] and len(segs) >= 4:
            repo_id = f"{unquote(segs[2])}/{unquote(segs[3])}"
            rest = segs[4:]
            if not rest or rest == [""]:
                return self.model_info(repo_id, None, query)
            if rest[0] == "revision" and len(rest) >= 2:
                return self.model_info(repo_id, unquote(rest[1]), query)
            if rest[0] == "tree" and len(rest) >= 2:
                prefix = "/".join(unquote(s) for s in rest[2:]).strip("/")
                return self.tree(repo_id, unquote(rest[1]), prefix, query)
        if segs[:2] == ["api", "resolve-cache"] and len(segs) >= 7:
            repo_id = f"{unquote(segs[3])}/{unquote(segs[4])}"
            return self.resolve(repo_id, unquote(segs[5]), unquote("/".join(segs[6:])), cache_hop=True)
        if len(segs) >= 5 and segs[2] == "resolve":
            repo_id = f"{unquote(segs[0])}/{unquote(segs[1])}"
            return self.resolve(repo_id, unquote(segs[3]), unquote("/".join(segs[4:])))
        self.send_plain(404, "not emulated")

    def _authorized(self, repo: EmuRepo) -> bool:
        if not repo.gated:
            return True
        auth = self.headers.get("Authorization") or ""
        return auth.startswith("Bearer ") and auth[7:] in self.server.tokens

    def _repo(self, repo_id: str) -> EmuRepo | None:
        repo = self.server.repos.get(repo_id)
        if repo is None:
            self.send_json(401, {"error": "Repository not found"},
                           {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"})
        return repo

    def _commit(self, repo: EmuRepo, rev: str) -> str | None:
        commit = repo.resolve(rev)
        if commit is None:
            self.send_json(404, {"error": f"Invalid rev id: {rev}"},
                           {"X-Error-Code": "RevisionNotFound", "X-Error-Message": f"Invalid rev id: {rev}"})
        return commit

    def _repo_at(self, repo_id: str, rev: str) -> tuple[EmuRepo, str] | None:
        """The repo and the commit ``rev`` names, or None after answering the hub's error."""
        repo = self._repo(repo_id)
        if repo is None:
            return None
        commit = self._commit(repo, rev)
        return None if commit is None else (repo, commit)

    # -- API -------------------------------------------------------------------------------
    def model_info(self, repo_id: str, rev: str | None, query: dict) -> None:
        found = self._repo_at(repo_id, rev or "main")
        if found is None:
            return
        repo, commit = found
        blobs = query.get("blobs", ["false"])[0].lower() == "true"
        siblings = []
        for f in repo.files.values():
            s = {"rfilename": f.path}
            if blobs:
                s.update(blobId=f.git_oid, size=f.size)
                if f.lfs:
                    s["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": 134}
            siblings.append(s)
        self.send_json(200, {
            "_id": hashlib.md5(repo_id.encode()).hexdigest()[:24], "id": repo_id, "modelId": repo_id,
            "author": repo_id.split("/")[0], "sha": commit, "lastModified": "2025-04-06T16:23:01.000Z",
            "private": False, "gated": "manual" if repo.gated else False, "disabled": False,
            "downloads": 0, "likes": 0, "library_name": "transformers", "tags": [], "siblings": siblings,
            "createdAt": "2025-01-26T09:26:37.000Z",
        })

    def tree(self, repo_id: str, rev: str, prefix: str, query: dict) -> None:
        found = self._repo_at(repo_id, rev)
        if found is None:
            return
        repo, commit = found
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        key = (repo_id, commit, prefix, recursive, len(repo.files), len(repo.hostile))
        entries = self.server.tree_cache.get(key)
        if entries is None:
            entries = self._tree_entries(repo, prefix, recursive)
            self.server.tree_cache[key] = entries
        page = self.server.page_size
        start = int(query.get("cursor", ["0"])[0] or 0)
        chunk = entries[start : start + page]
        headers = {}
        if start + page < len(entries):
            base = f"{self.server.url}{urlsplit(self.path).path}"
            headers["Link"] = f'<{base}?recursive={str(recursive).lower()}&expand=false&cursor={start + page}>; rel="next"'
        self.send_json(200, chunk, headers)

    def _tree_entries(self, repo: EmuRepo, prefix: str, recursive: bool) -> list[dict]:
        entries: list[dict] = []
        dirs: set[str] = set()
        for f in repo.files.values():
            if prefix and not f.path.startswith(prefix + "/"):
                continue
            rel = f.path[len(prefix) + 1:] if prefix else f.path
            if not recursive and "/" in rel:
                dirs.add((prefix + "/" if prefix else "") + rel.split("/")[0])
                continue
            parts = f.path.split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if not prefix or d.startswith(prefix + "/"):
                    dirs.add(d)
            e = {"type": "file", "oid": f.git_oid, "size": f.size, "path": f.path}
            if f.lfs:
                e["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": 134}
            entries.append(e)
        entries = [{"type": "directory", "oid": "0" * 40, "size": 0, "path": d} for d in sorted(dirs)] + entries
        return entries + repo.hostile

    # -- files -----------------------------------------------------------------------------
    def resolve(self, repo_id: str, rev: str, path: str, cache_hop: bool = False) -> None:
        found = self._repo_at(repo_id, rev)
        if found is None:
            return
        repo, commit = found
        base = {"X-Repo-Commit": commit}
        if not self._authorized(repo):
            msg = f"Access to model {repo_id} is restricted. You must have access to it and be authenticated to access it. Please log in."
            self.send_json(401, {"error": msg}, {**base, "X-Error-Code": "GatedRepo", "X-Error-Message": msg})
            return
        f = repo.files.get(path)
        if f is None:
            raise_entry = {**base, "X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found"}
            self.send_json(404, {"error": "Entry not found"}, raise_entry)
            return
        if f.lfs:
            cdn = self.server.cdn
            loc = f"{cdn.url}/repos/{f.sha256[:2]}/{f.sha256[2:4]}/{f.sha256}?Expires=9999999999&Signature=emu"
            self.send_plain(302, "Found. Redirecting", {
                **base, "Location": loc, "X-Linked-Etag": f'"{f.sha256}"', "X-Linked-Size": str(f.size),
                "ETag": '"redirect-body"',
            })
            return
        if self.server.resolve_cache and not cache_hop:
            loc = f"/api/resolve-cache/models/{quote(repo_id)}/{commit}/{quote(path)}?etag=%22{f.git_oid}%22"
            self.send_plain(307, "Temporary Redirect", {**base, "Location": loc, "ETag": f'"{f.git_oid}"',
                                                          "X-Linked-Size": str(f.size)})
            return
        self.send_blob(f.blob, f.size, {**base, "ETag": f'"{f.git_oid}"', "Content-Type": "application/octet-stream"})


class CdnHandler(EmuHandler):
    server: "CdnServer"

    def route(self) -> None:
        if self.admin():
            return
        self.server.seen_auth.append(self.headers.get("Authorization") or "")
        sha = urlsplit(self.path).path.rsplit("/", 1)[-1]
        f = self.server.blobs.get(sha)
        if f is None:
            self.send_plain(403, "AccessDenied")
            return
        # Like xet's bridge: the CDN's ETag is not the sha256.
        self.send_blob(f.blob, f.size, {"ETag": f'"{hashlib.sha1(sha.encode()).hexdigest()}"',
                                        "Content-Type": "application/octet-stream"})


class CdnServer(EmuServer):
    def __init__(self, port: int = 0, faults: Faults | None = None):
        super().__init__(CdnHandler, port, faults)
        self.blobs: dict[str, EmuFile] = {}
        self.seen_auth: list[str] = []


class HubServer(EmuServer):
    """The hub; ``.cdn`` is its CDN on another port. ``faults`` applies to both."""

    def __init__(self, repos: list[EmuRepo] = (), port: int = 0, cdn_port: int = 0, faults: Faults | None = None,
                 tokens: set[str] | None = None, page_size: int = 1000, resolve_cache: bool = False):
        faults = faults or Faults()
        super().__init__(HubHandler, port, faults)
        self.cdn = CdnServer(cdn_port, faults)
        self.repos: dict[str, EmuRepo] = {}
        self.tokens = set(tokens or ())
        self.page_size = page_size
        self.resolve_cache = resolve_cache
        self.seen_auth: list[str] = []
        self.tree_cache: dict = {}
        for r in repos:
            self.add(r)

    def add(self, repo: EmuRepo) -> None:
        self.repos[repo.repo_id] = repo
        self.tree_cache.clear()
        for f in repo.files.values():
            if f.lfs:
                self.cdn.blobs[f.sha256] = f

    def start(self) -> "HubServer":
        self.cdn.start()
        super().start()
        return self

    def stop(self) -> None:
        self.cdn.stop()
        super().stop()

    @property
    def body_bytes_total(self) -> int:
        return self.body_bytes + self.cdn.body_bytes
