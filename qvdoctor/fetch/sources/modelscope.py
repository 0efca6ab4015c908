"""ModelScope: listing through the modelscope SDK (``modelscope_hub``: revisions, then the
recursive file list with Sha256 per file); bytes from ``/api/v1/models/{repo}/repo?FilePath=``,
which redirects large files to OSS and may answer a Range with 200 + Content-Range."""

from __future__ import annotations

import re
from urllib.parse import quote_plus

from qvdoctor.errors import QvError
from qvdoctor.fetch.listing import Listing, Origin, RemoteFile
from qvdoctor.fetch.paths import check_repo_path

_HEX40 = re.compile(r"^[0-9a-f]{40}$")


def list_modelscope(endpoint: str, repo_id: str, revision: str | None) -> Listing:
    from modelscope_hub import HubApi
    from modelscope_hub import errors as mserr

    api = HubApi(endpoint=endpoint)
    token = api._config.token or None  # MODELSCOPE_API_TOKEN or the SDK's stored login
    rev = revision or "master"
    where = f"modelscope ({endpoint})"
    try:
        branches, tags = api.legacy.list_revisions_detail(repo_id, "model")
        names = {b.get("Revision") for b in branches} | {t.get("Revision") for t in tags}
        if rev not in names and not _HEX40.match(rev):
            raise QvError(f"revision {rev!r} not found in {repo_id} on {where}",
                          hint="known: " + ", ".join(sorted(n for n in names if n)) if names else None)
        raw = api.legacy.list_repo_files(repo_id=repo_id, repo_type="model", revision=rev, recursive=True)
    except QvError:
        raise
    except mserr.NotExistError:
        raise QvError(f"repository {repo_id} not found on {where}",
                      hint="check the id (owner/name); ModelScope ids can differ from Hugging Face ones") from None
    except (mserr.AuthenticationError, mserr.PermissionDeniedError):
        raise QvError(f"{repo_id} on {where} needs a token with access",
                      hint="set MODELSCOPE_API_TOKEN (or run 'modelscope login')") from None
    except mserr.NetworkError as exc:
        raise QvError(f"cannot reach {where}: {type(exc).__name__}", hint="check the network/proxy or pick another --source") from None
    except mserr.HubError as exc:
        raise QvError(f"{where} refused listing {repo_id}: {type(exc).__name__}", hint="try again later or another --source") from None
    files = []
    newest = (-1, "")
    for item in raw:
        if (item.get("Type") or "blob") != "blob":
            continue
        path = item.get("Path") or item.get("Name") or ""
        check_repo_path(path)
        sha = (item.get("Sha256") or "").lower() or None
        files.append(RemoteFile(path=path, size=int(item.get("Size") or 0), sha256=sha, lfs=bool(item.get("IsLFS"))))
        try:
            when = int(item.get("CommittedDate") or 0)
        except (TypeError, ValueError):
            when = 0
        if when >= newest[0] and item.get("Revision"):
            newest = (when, str(item["Revision"]))
    # ModelScope has no "resolve branch" call: every commit touches a file, so the newest
    # per-file commit is the branch head. Downloads are pinned to it.
    commit = rev if _HEX40.match(rev) else (newest[1] if _HEX40.match(newest[1]) else rev)
    headers = {}
    if token:
        headers = {"Authorization": f"Bearer {token}", "Cookie": f"m_session_id={token}"}

    def origin_for(f: RemoteFile) -> Origin:
        url = f"{endpoint}/api/v1/models/{repo_id}/repo?Revision={quote_plus(commit)}&FilePath={quote_plus(f.path)}"
        return Origin("modelscope", url, headers)

    return Listing("modelscope", endpoint, repo_id, rev, commit, files, origin_for)
