"""Hugging Face Hub and hf-mirror.com: listing through ``huggingface_hub.HfApi`` (model info for
the commit, then the recursive tree pinned to it); bytes from ``/{repo}/resolve/{commit}/{path}``,
which redirects large files to the CDN."""

from __future__ import annotations

import json
import os
import re
from urllib.parse import quote, urljoin

from qvdoctor.errors import QvError
from qvdoctor.fetch.listing import Listing, Origin, RemoteFile
from qvdoctor.fetch.paths import check_repo_path

TOKEN_HINT = "set HF_TOKEN or run 'hf auth login' with an account that has accepted the model's terms"


def hf_token() -> str | None:
    """HF_TOKEN, else the token `hf auth login` stored (HF_TOKEN_PATH, else $HF_HOME/token), read
    the way huggingface_hub reads it, without importing it."""
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if token:
        return token.strip()
    path = os.environ.get("HF_TOKEN_PATH")
    if not path:
        home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface")
        path = os.path.join(os.path.expanduser(home), "token")
    try:
        with open(os.path.expanduser(path)) as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def _next_link(header: str) -> str | None:
    for part in header.split(","):
        m = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', part)
        if m:
            return m.group(1)
    return None


def list_hf(source: str, endpoint: str, repo_id: str, revision: str | None) -> Listing:
    """The Hub's REST API through qvdoctor's own HTTP client (the same calls HfApi makes:
    model info at the revision for the commit, then the recursive tree pinned to it, following
    ``Link: rel=next`` pages). No hub SDK is imported, which saves most of a second per run."""
    from qvdoctor.fetch.http import HttpClient, HttpError

    token = hf_token()
    where = f"{source} ({endpoint})"
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    http = HttpClient(timeout=30.0)

    def get(url: str) -> tuple[object, dict[str, str]]:
        try:
            resp = http.request("GET", url, {**auth, "Accept": "application/json"})
            body = resp.read()
            resp.release()
        except HttpError as exc:
            raise QvError(f"cannot reach {where}: {exc.reason.split(':')[0]}",
                          hint="check the network/proxy or pick another --source") from None
        code = resp.headers.get("x-error-code", "")
        if resp.status == 200:
            try:
                return json.loads(body), resp.headers
            except ValueError:
                raise QvError(f"{where} answered something that is not JSON listing {repo_id}",
                              hint="is this endpoint a Hugging Face hub or mirror?") from None
        if code == "GatedRepo":
            raise QvError(f"{repo_id} on {where} is gated and this token has no access", hint=TOKEN_HINT)
        if code == "RevisionNotFound":
            raise QvError(f"revision {revision!r} not found in {repo_id} on {where}",
                          hint="use a branch, a tag or a full commit id that exists in the repo")
        if code == "RepoNotFound" or resp.status in (401, 404):
            raise QvError(f"repository {repo_id} not found on {where}",
                          hint="check the id (owner/name, case-sensitive); a private repo needs HF_TOKEN")
        raise QvError(f"{where} answered HTTP {resp.status} listing {repo_id}", hint="try again later or another --source")

    try:
        rev = quote(revision or "main", safe="")
        info, _ = get(f"{endpoint}/api/models/{repo_id}/revision/{rev}")
        commit = info.get("sha") if isinstance(info, dict) else None
        if not commit:
            raise QvError(f"{where} did not resolve {revision or 'main'} of {repo_id} to a commit")
        files = []
        url: str | None = f"{endpoint}/api/models/{repo_id}/tree/{commit}?recursive=true&expand=false"
        while url:
            page, headers = get(url)
            for entry in page if isinstance(page, list) else []:
                if entry.get("type") != "file":
                    continue
                check_repo_path(entry["path"])
                lfs = entry.get("lfs") or None
                files.append(RemoteFile(path=entry["path"], size=int(entry["size"]),
                                        sha256=(lfs.get("oid") or lfs.get("sha256")) if lfs else None,
                                        git_oid=entry.get("oid"), lfs=bool(lfs)))
            nxt = _next_link(headers.get("link", ""))
            url = urljoin(url, nxt) if nxt else None
    finally:
        http.close()
    gated = bool(info.get("gated"))
    if gated and not token:
        raise QvError(f"{repo_id} is gated on {where} and no token is set", hint=TOKEN_HINT)
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def origin_for(f: RemoteFile) -> Origin:
        url = f"{endpoint}/{repo_id}/resolve/{commit}/{quote(f.path)}"
        return Origin(source, url, headers)

    return Listing(source, endpoint, repo_id, revision or "main", commit, files, origin_for, gated)
