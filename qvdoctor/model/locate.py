"""Which model a smoke run loads: ``--model PATH|REPO_ID|tiny-random``, or a local Qwen2.5-VL."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qvdoctor.errors import QvError

TINY = "tiny-random"
FETCH_HINT = "download one with 'qvdoctor fetch Qwen/Qwen2.5-VL-3B-Instruct', pass --model PATH, or try --model tiny-random"


@dataclass
class ModelChoice:
    directory: Path  # where the weights are
    name: str  # what the serve command names: the repo id or the directory the user gave
    where: str = ""  # for a repo id: where it was found locally (registry, Hugging Face cache)


def _has_weights(directory: Path) -> bool:
    return any(directory.glob("*.safetensors")) or any(directory.glob("*.bin"))


def _cached_qwen_vl() -> list[Path]:
    """Qwen2.5-VL snapshots with weights in the local Hugging Face cache."""
    from qvdoctor.model.registry import hf_cache_roots

    found = []
    for root in hf_cache_roots():
        for repo in sorted(Path(root).glob("models--*--Qwen2.5-VL-*")):
            for snap in sorted((repo / "snapshots").glob("*")):
                if (snap / "config.json").is_file() and _has_weights(snap):
                    found.append(snap)
    return found


def resolve(spec: str | None, need_weights: bool = True) -> ModelChoice:
    """The model directory for ``spec``; ``need_weights=False`` (``--load-format dummy``) accepts a
    directory with only config.json, preprocessor_config.json and a tokenizer."""
    if spec == TINY:
        from qvdoctor.tinymodel import build_tiny_model

        path = build_tiny_model()
        return ModelChoice(path, str(path))
    if spec is None:
        cached = _cached_qwen_vl()
        if not cached:
            raise QvError("no --model given and no Qwen2.5-VL model found locally", hint=FETCH_HINT)
        snap = cached[0]
        repo = snap.parent.parent.name.removeprefix("models--").replace("--", "/", 1)
        return ModelChoice(snap, repo)
    from qvdoctor.model.info import resolve_model_dir, serve_name, where_found
    from qvdoctor.model.registry import find

    is_dir = Path(spec).expanduser().is_dir()
    # A repo id: a whole fetched copy first (the registry may also hold a small-files-only one).
    found = find(spec, need_weights=need_weights) if not is_dir and spec.count("/") == 1 else None
    if found is not None and (_has_weights(found.directory) or not need_weights):
        directory, where = found.directory, found.describe()
    else:
        try:
            directory = resolve_model_dir(spec)
        except QvError as exc:
            raise QvError(exc.message, hint=f"smoke needs the whole model: {FETCH_HINT}") from None
        where = "" if is_dir else (where_found(spec, directory) or "")
    if need_weights and not _has_weights(directory):
        raise QvError(f"{directory} has a config.json but no weights (*.safetensors)", hint=f"smoke needs the whole model: {FETCH_HINT}")
    if is_dir:
        return ModelChoice(directory, str(directory))
    return ModelChoice(directory, serve_name(spec, directory), where)
