"""ModelScope emulator: the legacy ``/api/v1`` routes the SDK downloads through (model info,
revisions, recursive file list with Sha256, file download that 302s LFS files to an "OSS" port),
with ModelScope's answer to a Range on OSS: 200 plus a correct Content-Range."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

from .base import EmuHandler, EmuServer, Faults
from .repo import EmuFile, EmuRepo


def _envelope(data, code: int = 200, message: str = "success") -> dict:
    return {"Code": code, "Success": code == 200, "Data": data, "Message": message, "RequestId": "emu"}


class MsHandler(EmuHandler):
    server: "MsServer"

    def route(self) -> None:
        if self.admin():
            return
        ms = self.server
        ms.seen_auth.append((self.headers.get("Authorization") or "") + "|" + (self.headers.get("Cookie") or ""))
        parts = urlsplit(self.path)
        segs = [unquote(s) for s in parts.path.split("/")[1:]]
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if segs[:4] == ["api", "v1", "repos", "internalAccelerationInfo"]:
            return self.send_json(404, _envelope(None, 404, "not found"))
        if len(segs) >= 5 and segs[:3] in (["api", "v1", "models"], ["openapi", "v1", "models"]):
            repo = ms.repos.get(f"{segs[3]}/{segs[4]}")
            if repo is None:
                return self.send_json(404, _envelope(None, 10010205001, f"model {segs[3]}/{segs[4]} does not exist"))
            rest = segs[5:]
            if not rest:
                return self.info(repo, openapi=segs[0] == "openapi")
            if rest == ["revisions"]:
                return self.revisions(repo)
            if rest == ["repo", "files"]:
                return self.files(repo, q)
            if rest == ["repo"]:
                return self.download(repo, q)
        if segs[:1] == ["oss"] and len(segs) == 2:
            f = ms.blobs.get(segs[1])
            if f is None:
                return self.send_plain(403, "AccessDenied")
            return self.send_blob(f.blob, f.size, {"Content-Type": "application/octet-stream",
                                                   "ETag": f'"{f.sha256[:32].upper()}"'})
        self.send_plain(404, "not emulated")

    def _commit(self, repo: EmuRepo, rev: str | None) -> str | None:
        commit = repo.resolve(rev or "master")
        if commit is None:
            self.send_json(404, _envelope(None, 10010205001, f"revision {rev} does not exist"))
        return commit

    def info(self, repo: EmuRepo, openapi: bool) -> None:
        owner, name = repo.repo_id.split("/")
        data = {"Id": 1, "Name": name, "Path": owner, "ChineseName": name, "Revision": "master",
                "Visibility": 5, "IsPublished": 1}
        if openapi:
            return self.send_json(200, {"success": True, "data": {"id": repo.repo_id, "name": name, "owner": owner},
                                        "request_id": "emu"})
        self.send_json(200, _envelope(data))

    def revisions(self, repo: EmuRepo) -> None:
        self.send_json(200, _envelope({"RevisionMap": {
            "Branches": [{"Revision": b, "CreatedAt": 1737878400} for b in repo.branches],
            "Tags": [{"Revision": t, "CreatedAt": 1737964800} for t in repo.tags],
        }}))

    def files(self, repo: EmuRepo, q: dict) -> None:
        commit = self._commit(repo, q.get("Revision"))
        if commit is None:
            return
        root = (q.get("Root") or "").strip("/")
        recursive = q.get("Recursive", "False").lower() == "true"
        out, dirs = [], set()
        for f in repo.files.values():
            if root and not f.path.startswith(root + "/"):
                continue
            rel = f.path[len(root) + 1:] if root else f.path
            if not recursive and "/" in rel:
                dirs.add((root + "/" if root else "") + rel.split("/")[0])
                continue
            out.append({"CommitMessage": "upload", "CommittedDate": 1737878400, "CommitterName": "emu",
                        "InCheck": False, "IsLFS": f.lfs, "Mode": "33188", "Name": f.path.rsplit("/", 1)[-1],
                        "Path": f.path, "Revision": commit, "Sha256": f.sha256, "Size": f.size, "Type": "blob"})
        out = [{"Name": d.rsplit("/", 1)[-1], "Path": d, "Type": "tree", "Size": 0, "Revision": commit}
               for d in sorted(dirs)] + out
        for h in repo.hostile:
            out.append({"Path": h["path"], "Name": h["path"], "Type": "blob", "Size": h.get("size", 1),
                        "Sha256": h.get("sha256", "0" * 64), "IsLFS": False, "Revision": commit})
        self.send_json(200, _envelope({"Files": out}))

    def download(self, repo: EmuRepo, q: dict) -> None:
        commit = self._commit(repo, q.get("Revision"))
        if commit is None:
            return
        f = repo.files.get(q.get("FilePath", ""))
        if f is None:
            return self.send_json(404, _envelope(None, 10010205001, "file does not exist"))
        if f.lfs:
            return self.send_plain(302, "", {"Location": f"{self.server.oss.url}/oss/{f.sha256}?Expires=9999999999"})
        self.send_blob(f.blob, f.size, {"Content-Type": "application/octet-stream"})


class MsServer(EmuServer):
    """ModelScope API; ``.oss`` is the object store on a second port (same handler, /oss/ route).
    The OSS answers ranges with 200 + Content-Range unless ``oss_quirk=False``."""

    def __init__(self, repos: list[EmuRepo] = (), port: int = 0, faults: Faults | None = None, oss_quirk: bool = True):
        faults = faults or Faults()
        super().__init__(MsHandler, port, faults)
        self.oss = EmuServer(MsHandler, 0, Faults(range_200=oss_quirk))
        self.oss.repos, self.oss.blobs, self.oss.seen_auth = {}, {}, []  # type: ignore[attr-defined]
        self.repos: dict[str, EmuRepo] = {}
        self.blobs: dict[str, EmuFile] = {}
        self.seen_auth: list[str] = []
        for r in repos:
            self.add(r)

    def add(self, repo: EmuRepo) -> None:
        self.repos[repo.repo_id] = repo
        for f in repo.files.values():
            if f.lfs:
                self.oss.blobs[f.sha256] = f  # type: ignore[attr-defined]

    def set_faults(self, **kw) -> None:
        """Faults on the API and the OSS (the OSS keeps its range quirk)."""
        self.faults.update(**kw)
        quirk = self.oss.faults.range_200
        self.oss.faults.update(**kw)
        if "range_200" not in kw:
            self.oss.faults.update(range_200=quirk)

    def start(self) -> "MsServer":
        self.oss.start()
        super().start()
        return self

    def stop(self) -> None:
        self.oss.stop()
        super().stop()

    @property
    def body_bytes_total(self) -> int:
        return self.body_bytes + self.oss.body_bytes
