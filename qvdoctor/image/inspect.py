"""Which GPUs an image runs on, read from its layers through the Docker SDK (no container runs).

The image is streamed with ``image.save()``; every layer tar is read in turn and only the
shared libraries of torch / vLLM / xformers / flash-attn / flashinfer under a
site-packages or dist-packages directory are extracted (to a temporary file, one at a time)
and scanned with qvdoctor's kernel reader. Whiteouts are applied in layer order, so the
result is the image's final filesystem."""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import tempfile
from dataclasses import dataclass, field
from typing import Any, Iterator

from qvdoctor.errors import QvError
from qvdoctor.image.build import connect
from qvdoctor.image.matrix import load
from qvdoctor.image.render import LABEL_PREFIX, verify_policy
from qvdoctor.image.verify import Library, judge, package_of

_SITE = re.compile(r"(?:^|/)(?:site|dist)-packages/(.+)$")


@dataclass
class ImageReport:
    ref: str
    image_id: str
    labels: dict[str, str]
    libraries: list[Library]  # .path relative to site-packages; full path in .image_path
    cc: str | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def built_for(self) -> str | None:
        return self.labels.get(LABEL_PREFIX + "cc")


@dataclass
class _Found(Library):
    image_path: str = ""


def inspect_image(image_ref: str, docker_client: Any = None) -> list:
    """The CUDA-bearing libraries of ``image_ref`` as ``qvdoctor.facts.snapshot.LibraryFacts``
    (``path`` is the absolute path inside the image). For ``qvdoctor diagnose --image``."""
    from qvdoctor.facts.snapshot import LibraryFacts

    report = inspect_image_report(image_ref, docker_client)
    return [LibraryFacts(lib.package, lib.image_path, lib.size, list(lib.sass), list(lib.ptx), lib.error) for lib in report.libraries]


def inspect_image_report(image_ref: str, docker_client: Any = None, cc: str | None = None) -> ImageReport:
    """Libraries, labels and (with ``cc``) the verdict for one local image."""
    client = connect(docker_client)
    try:
        import docker

        image = client.images.get(image_ref)
    except docker.errors.ImageNotFound:
        raise QvError(f"no image {image_ref!r} in the local Docker engine", hint=f"pull it first: docker pull {image_ref}")
    except docker.errors.APIError as exc:
        raise QvError(f"cannot look up image {image_ref!r}: {exc.explanation or exc}")
    packages = list(load().verify_packages)
    try:
        libraries = _scan_saved(image.save(chunk_size=1 << 20), packages)
    except (tarfile.TarError, OSError, ValueError) as exc:
        raise QvError(f"cannot read the layers of {image_ref!r}: {exc}")
    report = ImageReport(image_ref, image.id, dict(image.labels or {}), libraries, cc)
    report.failures = judge(libraries, cc, verify_policy())
    return report


class _ChunkReader(io.RawIOBase):
    """A file object over an iterator of byte chunks (docker-py's image.save())."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks, self._buf = iter(chunks), b""

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while not self._buf:
            try:
                self._buf = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(target), len(self._buf))
        target[:n], self._buf = self._buf[:n], self._buf[n:]
        return n


def _scan_saved(chunks: Iterator[bytes], packages: list[str]) -> list[_Found]:
    """Walk a `docker save` stream (legacy and OCI layouts) and overlay its layers."""
    layers: dict[str, tuple[dict[str, _Found | None], list[str]]] = {}
    aliases: dict[str, str] = {}
    manifest = None
    with tempfile.TemporaryDirectory(prefix="qvdoctor-inspect-") as tmp:
        outer = tarfile.open(fileobj=io.BufferedReader(_ChunkReader(chunks), 1 << 20), mode="r|")
        for member in outer:
            name = member.name.lstrip("./")
            if name == "manifest.json":
                manifest = json.load(outer.extractfile(member))
            elif member.issym() or member.islnk():
                target = member.linkname if member.islnk() else os.path.normpath(os.path.join(os.path.dirname(name), member.linkname))
                aliases[name] = target.lstrip("./")
            elif member.isfile() and (name.endswith("layer.tar") or name.startswith("blobs/")):
                scanned = _scan_layer(outer.extractfile(member), packages, tmp)
                if scanned is not None:
                    layers[name] = scanned
    if not manifest:
        raise ValueError("no manifest.json in the saved image")
    files: dict[str, _Found] = {}
    for layer in manifest[0]["Layers"]:
        layer = aliases.get(layer, layer)
        entries, deletions = layers.get(layer, ({}, []))
        for prefix in deletions:
            for path in [p for p in files if p == prefix or p.startswith(prefix + "/")]:
                del files[path]
        for path, found in entries.items():
            if found is None:
                files.pop(path, None)
            else:
                files[path] = found
    return [files[p] for p in sorted(files)]


def _scan_layer(fileobj, packages: list[str], tmp: str):
    """Libraries added by one layer (None: replaced by a non-library) and the paths it deletes."""
    from qvdoctor.kernels import scan_file

    try:
        inner = tarfile.open(fileobj=fileobj, mode="r|*")
    except tarfile.ReadError:
        return None  # a config blob, not a layer
    entries: dict[str, _Found | None] = {}
    deletions: list[str] = []
    for member in inner:
        path = member.name.lstrip("./")
        base = os.path.basename(path)
        if base.startswith(".wh."):
            parent = os.path.dirname(path)
            deletions.append(parent if base == ".wh..wh..opq" else os.path.join(parent, base[4:]))
            continue
        match = _SITE.search(path)
        if not match:
            continue
        rel = match.group(1)
        package = package_of(rel, packages)
        if package is None or not (base.endswith(".so") or ".so." in base):
            continue
        if not member.isfile():
            entries[path] = None  # a symlink or directory hides an earlier library of that name
            continue
        local = os.path.join(tmp, "lib.so")
        with open(local, "wb") as out:
            src = inner.extractfile(member)
            while block := src.read(1 << 20):
                out.write(block)
        archs = scan_file(local)
        os.unlink(local)
        if archs.error == "not an ELF file" or not (archs.sass or archs.ptx or archs.error):
            entries[path] = None
            continue
        entries[path] = _Found(package, rel, member.size, list(archs.sass), list(archs.ptx), archs.error, image_path="/" + path)
    return entries, deletions
