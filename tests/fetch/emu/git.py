"""git + LFS server: the real ``git http-backend`` (smart HTTP) behind a CGI bridge, the LFS
batch API (``POST {repo}.git/info/lfs/objects/batch``) and an object route with Range/206/416,
all with the same fault injection as the other emulators."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .base import EmuHandler, EmuServer, Faults
from .repo import EmuFile, EmuRepo, lfs_pointer

GIT_ENV = {
    "GIT_AUTHOR_NAME": "emu", "GIT_AUTHOR_EMAIL": "emu@127.0.0.1", "GIT_COMMITTER_NAME": "emu",
    "GIT_COMMITTER_EMAIL": "emu@127.0.0.1", "GIT_AUTHOR_DATE": "2025-01-26T09:26:37Z",
    "GIT_COMMITTER_DATE": "2025-01-26T09:26:37Z", "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
}


def make_bare_repo(root: Path, repo: EmuRepo, symlinks: dict[str, str] | None = None) -> str:
    """Write ``repo`` as a bare git repo under ``root/<owner>/<name>.git`` with LFS files as
    pointers; ``symlinks`` adds symlink entries (path -> target). Returns the commit id."""
    env = {**os.environ, **GIT_ENV, "HOME": str(root)}
    work = Path(tempfile.mkdtemp(dir=root))
    git = lambda *a, cwd=work: subprocess.run(["git", *a], cwd=cwd, env=env, check=True, capture_output=True)  # noqa: E731
    git("init", "-q", "-b", next(iter(repo.branches), "main"))
    git("config", "core.symlinks", "true")
    for f in repo.files.values():
        p = work / f.path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(lfs_pointer(f.sha256, f.size) if f.lfs else f.data())
    for path, target in (symlinks or {}).items():
        p = work / path
        p.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, p)
    git("add", "-A")
    git("commit", "-q", "-m", "emu")
    for tag in repo.tags:
        git("tag", tag)
    bare = root / f"{repo.repo_id}.git"
    bare.parent.mkdir(parents=True, exist_ok=True)
    if bare.exists():
        shutil.rmtree(bare)
    git("clone", "-q", "--bare", str(work), str(bare), cwd=root)
    git("update-server-info", cwd=bare)
    commit = git("rev-parse", "HEAD").stdout.decode().strip()
    shutil.rmtree(work)
    return commit


class GitHandler(EmuHandler):
    server: "GitServer"

    def do_POST(self):  # noqa: N802
        self.route()

    def route(self) -> None:
        if self.admin():
            return
        self.server.seen_auth.append(self.headers.get("Authorization") or "")
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        if path.startswith("/lfs-objects/"):
            f = self.server.objects.get(path.rsplit("/", 1)[-1])
            if f is None:
                return self.send_plain(404, "object not found")
            return self.send_blob(f.blob, f.size, {"Content-Type": "application/octet-stream"})
        if path.endswith("/info/lfs/objects/batch") and self.command == "POST":
            return self.batch()
        if "/info/refs" in path or path.endswith(("/git-upload-pack", "/git-receive-pack")):
            return self.cgi(path, parts.query)
        self.send_plain(404, "not emulated")

    def batch(self) -> None:
        with self.server.stats_lock:
            self.server.requests.append((self.command, urlsplit(self.path).path, ""))
        req = json.loads(self.read_body() or b"{}")
        out = []
        for obj in req.get("objects", []):
            f = self.server.objects.get(obj.get("oid", ""))
            if f is None:
                out.append({"oid": obj.get("oid"), "size": obj.get("size"),
                            "error": {"code": 404, "message": "Object does not exist"}})
                continue
            out.append({"oid": f.sha256, "size": f.size, "authenticated": True,
                        "actions": {"download": {"href": f"{self.server.url}/lfs-objects/{f.sha256}", "expires_in": 3600}}})
        body = json.dumps({"transfer": "basic", "objects": out}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.git-lfs+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def cgi(self, path: str, query: str) -> None:
        repo_path = path
        if ".git/" not in repo_path:  # like Hugging Face, accept the URL without ".git"
            for suffix in ("/info/refs", "/git-upload-pack", "/git-receive-pack"):
                if repo_path.endswith(suffix):
                    repo_path = repo_path[: -len(suffix)] + ".git" + suffix
        if not (self.server.root / repo_path.split(".git/")[0].lstrip("/")).with_suffix(".git").exists():
            return self.send_plain(404, "Repository not found")
        body = self.read_body()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": repo_path, "QUERY_STRING": query,
            "REQUEST_METHOD": self.command, "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "127.0.0.1", "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": str(self.server.root),
        }
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        r = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
        head, _, payload = r.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = r.stdout.partition(b"\n\n")
        status = 200
        headers = []
        for line in head.decode("latin-1").splitlines():
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.strip().split()[0])
            elif k:
                headers.append((k, v.strip()))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class GitServer(EmuServer):
    """``root`` holds bare repos as ``<owner>/<name>.git``; LFS objects are served from memory
    or blob files by sha256."""

    def __init__(self, root: Path, repos: list[EmuRepo] = (), port: int = 0, faults: Faults | None = None):
        super().__init__(GitHandler, port, faults)
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.objects: dict[str, EmuFile] = {}
        self.seen_auth: list[str] = []
        self.commits: dict[str, str] = {}
        for r in repos:
            self.add(r)

    def add(self, repo: EmuRepo, symlinks: dict[str, str] | None = None) -> str:
        commit = make_bare_repo(self.root, repo, symlinks)
        self.commits[repo.repo_id] = commit
        for f in repo.files.values():
            if f.lfs:
                self.objects[f.sha256] = f
        return commit
