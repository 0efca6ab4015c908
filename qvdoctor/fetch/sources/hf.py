"""Hugging Face Hub and hf-mirror.com: listing through ``huggingface_hub.HfApi`` (model info for
the commit, then the recursive tree pinned to it); bytes from ``/{repo}/resolve/{commit}/{path}``,
which redirects large files to the CDN."""

from __future__ import annotations

import os
from urllib.parse import quote

from qvdoctor.errors import QvError
from qvdoctor.fetch.listing import Listing, Origin, RemoteFile
from qvdoctor.fetch.paths import check_repo_path

TOKEN_HINT = "set HF_TOKEN or run 'hf auth login' with an account that has accepted the model's terms"


def hf_token() -> str | None:
    """HF_TOKEN, else the huggingface_hub login (HF_TOKEN_PATH or the stored token)."""
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if token:
        return token.strip()
    try:
        from huggingface_hub import get_token

        return get_token()
    except Exception:  # noqa: BLE001 - no login is not an error
        return None


def list_hf(source: str, endpoint: str, repo_id: str, revision: str | None) -> Listing:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from huggingface_hub.hf_api import RepoFile

    token = hf_token()
    api = HfApi(endpoint=endpoint, token=token or False)
    where = f"{source} ({endpoint})"
    try:
        info = api.model_info(repo_id, revision=revision)
        commit = info.sha
        if not commit:
            raise QvError(f"{where} did not resolve {revision or 'main'} of {repo_id} to a commit")
        files = []
        for entry in api.list_repo_tree(repo_id, revision=commit, recursive=True):
            if not isinstance(entry, RepoFile):
                continue
            check_repo_path(entry.path)
            lfs = entry.lfs
            files.append(RemoteFile(
                path=entry.path,
                size=int(entry.size),
                sha256=(lfs.sha256 if lfs else None),
                git_oid=entry.blob_id,
                lfs=bool(lfs),
            ))
    except GatedRepoError:
        raise QvError(f"{repo_id} on {where} is gated and this token has no access", hint=TOKEN_HINT) from None
    except RevisionNotFoundError:
        raise QvError(f"revision {revision!r} not found in {repo_id} on {where}",
                      hint="use a branch, a tag or a full commit id that exists in the repo") from None
    except RepositoryNotFoundError:
        raise QvError(f"repository {repo_id} not found on {where}",
                      hint="check the id (owner/name, case-sensitive); a private repo needs HF_TOKEN") from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise QvError(f"{where} answered HTTP {status} listing {repo_id}", hint="try again later or another --source") from None
    except (OSError, ConnectionError) as exc:
        raise QvError(f"cannot reach {where}: {type(exc).__name__}", hint="check the network/proxy or pick another --source") from None
    except Exception as exc:  # httpx transport errors and the like
        if type(exc).__name__.endswith(("ConnectError", "TimeoutException", "ConnectTimeout", "ReadTimeout", "NetworkError")):
            raise QvError(f"cannot reach {where}: {type(exc).__name__}", hint="check the network/proxy or pick another --source") from None
        raise
    gated = bool(getattr(info, "gated", False))
    if gated and not token:
        raise QvError(f"{repo_id} is gated on {where} and no token is set", hint=TOKEN_HINT)
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def origin_for(f: RemoteFile) -> Origin:
        url = f"{endpoint}/{repo_id}/resolve/{commit}/{quote(f.path)}"
        return Origin(source, url, headers)

    return Listing(source, endpoint, repo_id, revision or "main", commit, files, origin_for, gated)
