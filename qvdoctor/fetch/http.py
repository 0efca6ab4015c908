"""A small HTTP/1.1 client for ranged transfers: keep-alive pools per thread, manual redirects
(credentials dropped when the origin changes), proxies from the environment (``*_proxy`` /
``no_proxy``). Built on ``http.client`` so that a body can be read straight into a buffer."""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import threading
import urllib.request
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

REDIRECTS = (301, 302, 303, 307, 308)
USER_AGENT = "qvdoctor-fetch/0.1"
_SECRET_HEADERS = ("authorization", "cookie", "proxy-authorization")


class HttpError(Exception):
    """A status the caller has to act on (4xx/5xx), or a transport failure (status 0)."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None, url: str = ""):
        super().__init__(f"HTTP {status} {reason}" if status else reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}
        self.url = url
        self.cause: BaseException | None = None


def origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, (parts.hostname or "").lower(), port


def redact_url(url: str) -> str:
    """Drop userinfo and query strings (signed URLs) so a URL can be shown or logged."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


@dataclass
class Response:
    """An open response; read the body with ``readinto`` then call ``release``."""

    status: int
    headers: dict[str, str]  # lower-cased names
    url: str
    raw: http.client.HTTPResponse
    _conn: http.client.HTTPConnection
    _pool: "_Pool"
    _key: tuple

    def readinto(self, view: memoryview) -> int:
        return self.raw.readinto(view)

    def read(self, n: int = -1) -> bytes:
        return self.raw.read() if n < 0 else self.raw.read(n)

    def release(self, reuse: bool = True) -> None:
        """Give the connection back when the body was fully read; close it otherwise."""
        if reuse and self.raw.isclosed() and not self.raw.will_close:
            self._pool.put(self._key, self._conn)
        else:
            self.raw.close()
            self._conn.close()


class _Pool(threading.local):
    def __init__(self) -> None:
        self.conns: dict[tuple, http.client.HTTPConnection] = {}

    def take(self, key: tuple) -> http.client.HTTPConnection | None:
        return self.conns.pop(key, None)

    def put(self, key: tuple, conn: http.client.HTTPConnection) -> None:
        old = self.conns.pop(key, None)
        if old is not None:
            old.close()
        self.conns[key] = conn

    def close_all(self) -> None:
        for conn in self.conns.values():
            conn.close()
        self.conns.clear()


class HttpClient:
    """Thread-safe: every thread keeps its own keep-alive connections."""

    def __init__(self, timeout: float = 30.0, user_agent: str = USER_AGENT):
        self.timeout = timeout
        self.user_agent = user_agent
        self._pool = _Pool()
        self._proxies = urllib.request.getproxies()
        self._ssl_ctx: ssl.SSLContext | None = None  # made on the first https request (loading CAs takes ~30 ms)
        self._ssl_lock = threading.Lock()

    def _ssl(self) -> ssl.SSLContext:
        with self._ssl_lock:
            if self._ssl_ctx is None:
                self._ssl_ctx = ssl.create_default_context()
            return self._ssl_ctx

    # -- connections -----------------------------------------------------------------------
    def _proxy_for(self, scheme: str, host: str) -> str | None:
        proxy = self._proxies.get(scheme)
        if not proxy or urllib.request.proxy_bypass(host):
            return None
        return proxy if "://" in proxy else f"http://{proxy}"

    def _connect(self, scheme: str, host: str, port: int) -> tuple[tuple, http.client.HTTPConnection, bool, dict]:
        """Return (pool key, connection, absolute-form request?, extra headers for the proxy)."""
        proxy = self._proxy_for(scheme, host)
        key = (scheme, host, port, proxy)
        extra: dict[str, str] = {}
        if proxy:
            p = urlsplit(proxy)
            if p.username:
                cred = f"{unquote(p.username)}:{unquote(p.password or '')}".encode()
                extra["Proxy-Authorization"] = "Basic " + base64.b64encode(cred).decode()
        conn = self._pool.take(key)
        if conn is not None:
            return key, conn, bool(proxy) and scheme == "http", extra
        if proxy:
            p = urlsplit(proxy)
            pport = p.port or (443 if p.scheme == "https" else 80)
            if scheme == "https":
                conn = http.client.HTTPSConnection(p.hostname, pport, timeout=self.timeout, context=self._ssl())
                conn.set_tunnel(host, port, headers=extra or None)
                return key, conn, False, {}
            conn = http.client.HTTPConnection(p.hostname, pport, timeout=self.timeout)
            return key, conn, True, extra
        if scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self._ssl())
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        return key, conn, False, {}

    def _send(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> Response:
        scheme, host, port = origin(url)
        if scheme not in ("http", "https"):
            raise HttpError(0, f"unsupported URL scheme {scheme!r}", url=redact_url(url))
        parts = urlsplit(url)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        last: Exception | None = None
        for attempt in range(2):  # a pooled connection may have been closed by the server
            key, conn, absolute, extra = self._connect(scheme, host, port)
            reused = conn.sock is not None
            try:
                hdrs = {"User-Agent": self.user_agent, "Accept-Encoding": "identity", **extra, **headers}
                hostval = host if port in (80, 443) else f"{host}:{port}"
                hdrs.setdefault("Host", hostval)
                conn.putrequest(method, url if absolute else target, skip_host=True, skip_accept_encoding=True)
                for k, v in hdrs.items():
                    conn.putheader(k, v)
                conn.endheaders(body)
                raw = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                last = exc
                if reused and attempt == 0:
                    continue
                err = HttpError(0, f"{type(exc).__name__}: {exc}", url=redact_url(url))
                err.cause = exc  # the transport error, for reach.py's words
                raise err from None
            headers_out = {k.lower(): v for k, v in raw.getheaders()}
            return Response(raw.status, headers_out, url, raw, conn, self._pool, key)
        raise HttpError(0, str(last), url=redact_url(url))

    def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None = None,
        *,
        body: bytes | None = None,
        follow: bool = True,
        max_redirects: int = 10,
    ) -> Response:
        """Send a request, following redirects; the final response is returned unread.

        Authorization/Cookie headers are kept only while the origin stays the one first asked."""
        headers = dict(headers or {})
        first = origin(url)
        for _ in range(max_redirects + 1):
            resp = self._send(method, url, headers, body)
            if not follow or resp.status not in REDIRECTS or "location" not in resp.headers:
                return resp
            resp.read()
            resp.release()
            url = urljoin(url, resp.headers["location"])
            if origin(url) != first:
                headers = {k: v for k, v in headers.items() if k.lower() not in _SECRET_HEADERS}
            if resp.status == 303:
                method, body = "GET", None
        raise HttpError(0, "too many redirects", url=redact_url(url))

    def get_json(self, url: str, headers: dict[str, str] | None = None):
        import json

        resp = self.request("GET", url, headers)
        data = resp.read()
        resp.release()
        if resp.status >= 400:
            raise HttpError(resp.status, data[:200].decode("utf-8", "replace"), resp.headers, redact_url(url))
        return json.loads(data)

    def close(self) -> None:
        self._pool.close_all()


def set_socket_timeout(resp: Response, seconds: float) -> None:
    """Stall detection: a read that waits longer than this raises ``TimeoutError``."""
    sock = getattr(resp._conn, "sock", None)
    if isinstance(sock, socket.socket):
        sock.settimeout(seconds)
