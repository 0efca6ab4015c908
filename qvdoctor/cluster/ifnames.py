"""How NCCL and Gloo pick a socket interface from ``NCCL_SOCKET_IFNAME`` / ``GLOO_SOCKET_IFNAME``.

NCCL (src/misc/socket.cc, ``ncclFindInterfaces``): a comma-separated list of name *prefixes*;
a leading ``^`` turns it into an exclusion list; a leading ``=`` (after ``^`` if both) makes the
names exact. Unset, NCCL uses any interface except ``lo`` and ``docker*`` (``ib*`` first).
Gloo (torch ``ProcessGroupGloo``): a comma-separated list of *exact* interface names, each one
must exist; unset, Gloo binds to the address the hostname resolves to (loopback when
/etc/hosts maps the hostname to 127.0.1.1: "Using the loopback address as fallback")."""

from __future__ import annotations

NCCL_DEFAULT_EXCLUDE = ("lo", "docker")


def nccl_matches(spec: str | None, names: list[str]) -> list[str]:
    """The interfaces of ``names`` that NCCL_SOCKET_IFNAME=``spec`` selects, in order."""
    if not spec:
        return [n for n in names if not n.startswith(NCCL_DEFAULT_EXCLUDE)]
    exclude = spec.startswith("^")
    body = spec[1:] if exclude else spec
    exact = body.startswith("=")
    body = body[1:] if exact else body
    wanted = [w.strip() for w in body.split(",") if w.strip()]

    def hit(name: str) -> bool:
        return any(name == w if exact else name.startswith(w) for w in wanted)

    return [n for n in names if hit(n) != exclude]


def gloo_names(spec: str | None) -> list[str]:
    return [w.strip() for w in (spec or "").split(",") if w.strip()]


def nccl_exact_value(nics: list[str]) -> str:
    """One NCCL_SOCKET_IFNAME that selects exactly these names on every node."""
    return "=" + ",".join(sorted(set(nics)))
