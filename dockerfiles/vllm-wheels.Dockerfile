# syntax=docker/dockerfile:1
{{HEADER}}
# Prebuilt-wheel path: the published torch / vLLM / xformers wheels already carry kernels for
# the target compute capability; the verify stage proves it.
ARG BASE_IMAGE={{BASE_IMAGE}}

FROM ${BASE_IMAGE} AS runtime
# @include parts/python.Dockerfile
ARG PIP_INDEX_ARGS="{{PIP_INDEX_ARGS}}"
ARG TORCH_SPEC="{{TORCH_SPEC}}"
ARG VLLM_SPEC="{{VLLM_SPEC}}"
ARG EXTRA_SPECS="{{EXTRA_SPECS}}"
# wheelhouse/ is empty unless `build-image --wheelhouse DIR` (offline builds install from it).
COPY wheelhouse/ /opt/wheelhouse/
# Versions are pinned in the ARGs above; EXTRA_SPECS is a list, so it is split on purpose.
# hadolint ignore=SC2086,DL3013
RUN pip install --no-cache-dir ${PIP_INDEX_ARGS} --find-links /opt/wheelhouse \
        "${TORCH_SPEC}" "${VLLM_SPEC}" ${EXTRA_SPECS}
# @include parts/verify.Dockerfile
