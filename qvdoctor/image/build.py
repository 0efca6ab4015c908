"""Build (and push) an image through the Docker SDK, streaming readable progress."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from qvdoctor.errors import EXIT_FAIL, QvError

DAEMON_HINT = "start dockerd (scripts/start-dockerd.sh) or point DOCKER_HOST at a running daemon; --dry-run needs no daemon"
_NOISE = re.compile(r"^( ---> |Removing intermediate container |Successfully built |Successfully tagged )")
_VERIFY_FAIL = re.compile(r"^qvdoctor verify: FAIL for cc (\S+): (.*)$")


def connect(docker_client: Any = None, timeout: int = 600) -> Any:
    """A docker-py client for a daemon that answers; one-line QvError otherwise."""
    if docker_client is not None:
        return docker_client
    try:
        import docker
    except ImportError:
        raise QvError("the Docker SDK for Python is not installed", hint="pip install docker")
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as exc:  # docker.errors.DockerException, requests' ConnectionError, ...
        raise QvError(f"cannot reach the Docker daemon at {host}: {_first_line(exc)}", hint=DAEMON_HINT)
    return client


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    # docker-py nests the cause: "Error while fetching server API version: ('Connection aborted.', ...)"
    return text[:300]


def _step(line: str, width: int = 150) -> str:
    line = " ".join(line.split())
    return line if len(line) <= width else line[: width - 3] + "..."


@dataclass
class BuildResult:
    image_id: str
    tag: str
    verify_lines: list[str] = field(default_factory=list)


def build(
    client: Any,
    context: Path,
    tag: str,
    buildargs: dict[str, str],
    network_mode: str | None,
    emit: Callable[[str], None] | None = None,
) -> BuildResult:
    """Run the build; raise QvError (exit 2) when the verify stage rejects the image, exit 3 otherwise."""
    say = emit or (lambda line: print(line, file=sys.stderr, flush=True))
    kwargs = dict(path=str(context), tag=tag, buildargs=buildargs, rm=True, forcerm=True, decode=True, pull=False)
    if network_mode:
        kwargs["network_mode"] = network_mode
    image_id, error, verify, failures = None, None, [], []
    try:
        for chunk in client.api.build(**kwargs):
            if "stream" in chunk:
                for line in chunk["stream"].splitlines():
                    line = line.rstrip()
                    if not line or _NOISE.match(line):
                        continue
                    if line.startswith("qvdoctor verify:") or line.startswith("  "):
                        verify.append(line)
                    if m := _VERIFY_FAIL.match(line):
                        failures.append(m.group(2))
                    say(_step(line) if line.startswith("Step ") else f"    {line}")
            elif "status" in chunk:
                say(f"    {chunk['status']} {chunk.get('progress', '')}".rstrip())
            elif "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
            elif "error" in chunk:
                error = chunk["error"].strip()
                break
    except QvError:
        raise
    except Exception as exc:  # the daemon went away mid-build, a bad context, ...
        raise QvError(f"docker build failed: {_first_line(exc)}", hint=DAEMON_HINT)
    if error:
        if failures:
            cc = _VERIFY_FAIL.match(next(line for line in verify if _VERIFY_FAIL.match(line))).group(1)
            more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
            raise QvError(
                f"verification failed: the image has no kernel image for cc {cc}: {failures[0]}{more}",
                hint="the installed wheels do not carry this compute capability; see the verify output above",
                exit_code=EXIT_FAIL,
            )
        raise QvError(f"docker build failed: {error.splitlines()[0]}", hint="see the build output above")
    if image_id is None:
        image_id = client.images.get(tag).id
    return BuildResult(image_id, tag, verify)


def push(client: Any, tag: str, emit: Callable[[str], None] | None = None) -> None:
    say = emit or (lambda line: print(line, file=sys.stderr, flush=True))
    repo, _, version = tag.rpartition(":") if ":" in tag.split("/")[-1] else (tag, "", "latest")
    try:
        for chunk in client.images.push(repo, tag=version, stream=True, decode=True):
            if "error" in chunk:
                raise QvError(f"docker push {tag} failed: {chunk['error'].strip()}", hint="log in with 'docker login' and check the tag's registry")
            if "status" in chunk and "progress" not in chunk:
                say(f"    {chunk['status']}")
    except QvError:
        raise
    except Exception as exc:
        raise QvError(f"docker push {tag} failed: {_first_line(exc)}")
