"""Can a hub be asked at all? One cheap request per source, all at once, each bounded by a
deadline, and the reason in words when it cannot: offline mode, DNS, refused, no route, no
answer, TLS, or an HTTP 403 with the text the server gave (hf-mirror states its rule there).
Runs before any hub client is imported, so an unreachable network fails in about a second."""

from __future__ import annotations

import errno
import os
import socket
import ssl
import threading
import time
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from qvdoctor.fetch.http import HttpClient, HttpError, redact_url
from qvdoctor.fetch.sources import SOURCES

DEADLINE = float(os.environ.get("QVDOCTOR_REACH_TIMEOUT", "1.0"))


@dataclass
class Reach:
    source: str
    endpoint: str  # redacted
    ok: bool
    reason: str = ""  # why not, in words ("" when ok)
    seconds: float = 0.0
    pending: bool = False  # no answer yet: slow, not refused; the listing may still come

    def line(self) -> str:
        state = f"reachable ({self.seconds * 1000:.0f} ms)" if self.ok else self.reason
        return f"{self.source} ({self.endpoint}): {state}"


def _classify(exc: BaseException, host: str, port: int) -> str:
    if isinstance(exc, socket.gaierror):
        return f"DNS: cannot resolve {host} ({exc.strerror or exc})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake with {host}:{port} failed ({getattr(exc, 'reason', None) or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {host}:{port}"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return f"no answer from {host}:{port} within {DEADLINE:g} s yet"
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return f"no route to {host}:{port} ({exc.strerror})"
    if isinstance(exc, ConnectionResetError):
        return f"{host}:{port} reset the connection"
    return f"{type(exc).__name__}: {exc}"


def _probe_one(name: str, repo_id: str, revision: str | None, out: dict[str, Reach], stage: dict[str, str]) -> None:
    src = SOURCES[name]
    endpoint = src.endpoint()
    url = src.probe_url(endpoint, repo_id, revision)
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    t0 = time.monotonic()
    shown = redact_url(endpoint)
    proxied = bool(urllib.request.getproxies().get(parts.scheme)) and not urllib.request.proxy_bypass(host)
    try:
        if not proxied:  # through a proxy the proxy resolves the name
            stage[name] = "dns"
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        stage[name] = "connect"
        http = HttpClient(timeout=DEADLINE)
        try:
            resp = http.request("GET", url, {"Accept": "application/json"})
            body = resp.read(2048)
            resp.release()
        finally:
            http.close()
    except HttpError as exc:
        cause = exc.cause or exc.__context__
        out[name] = Reach(name, shown, False, _classify(cause, host, port) if cause else exc.reason, time.monotonic() - t0)
        return
    except Exception as exc:  # noqa: BLE001 - DNS and the like, described below
        out[name] = Reach(name, shown, False, _classify(exc, host, port), time.monotonic() - t0)
        return
    took = time.monotonic() - t0
    # 403 without the Hub's X-Error-Code is a rule of the server or a proxy (hf-mirror states its
    # rule in the body). 401 asks for credentials: the hub answered, the listing sends the token.
    if resp.status == 403 and not resp.headers.get("x-error-code"):
        text = body.decode("utf-8", "replace").strip().replace("\n", " ")[:200]
        out[name] = Reach(name, shown, False, f"HTTP {resp.status} from {host}" + (f": {text}" if text else ""), took)
        return
    if resp.status >= 500:
        out[name] = Reach(name, shown, False, f"HTTP {resp.status} from {host} (the hub is failing)", took)
        return
    out[name] = Reach(name, shown, True, "", took)


def probe(names: list[str], repo_id: str, revision: str | None) -> dict[str, Reach]:
    """Probe ``names`` in parallel; every answer within ``DEADLINE`` (plus a little)."""
    out: dict[str, Reach] = {}
    stage: dict[str, str] = {}
    threads = []
    for name in names:
        src = SOURCES[name]
        why = src.offline()
        if why:
            out[name] = Reach(name, redact_url(src.endpoint()), False, f"offline mode ({why})")
            continue
        t = threading.Thread(target=_probe_one, args=(name, repo_id, revision, out, stage), daemon=True)
        t.start()
        threads.append((name, t))
    deadline = time.monotonic() + DEADLINE + 0.2
    for name, t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
        if name not in out:
            src = SOURCES[name]
            host = urlsplit(src.endpoint()).hostname or ""
            what = "DNS: no answer for" if stage.get(name) == "dns" else "no answer from"
            out[name] = Reach(name, redact_url(src.endpoint()), False, f"{what} {host} within {DEADLINE:g} s yet", DEADLINE)
    for r in out.values():
        r.pending = not r.ok and r.reason.endswith(" yet")
    return {n: out[n] for n in names}


def summary(results: dict[str, Reach]) -> str:
    return "; ".join(r.line() for r in results.values())
