"""``qvdoctor build-image`` / ``inspect-image``: vLLM images that carry kernels for one GPU.

- ``matrix``: the build matrix (``qvdoctor/data/matrix.toml``) as typed rows.
- ``resolve``: picks a consistent toolkit / torch / vLLM / xformers set for a compute
  capability and explains the choice, or refuses with the reason.
- ``render``: turns a plan into a Dockerfile (templates under ``dockerfiles/``) and a build context.
- ``build``: builds through the Docker SDK with streamed progress.
- ``verify``: the stdlib-only check run inside the image's verify stage.
- ``inspect``: reads an image's layers through the SDK and lists the archs of its libraries.

This package imports only the standard library at import time; ``verify`` runs inside images
that carry nothing but Python.
"""
