# syntax=docker/dockerfile:1
{{HEADER}}
# Source-build path: the published wheels carry no kernels for the target compute capability,
# so vLLM (and xformers when needed) are compiled here with TORCH_CUDA_ARCH_LIST set to it.
ARG BUILD_BASE_IMAGE={{BUILD_BASE_IMAGE}}
ARG BASE_IMAGE={{BASE_IMAGE}}

# ---- build: torch from its wheel, then vLLM / xformers wheels for exactly this cc.
FROM ${BUILD_BASE_IMAGE} AS build
# @include parts/python.Dockerfile
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends git build-essential \
    && rm -rf /var/lib/apt/lists/*
ARG PIP_INDEX_ARGS="{{PIP_INDEX_ARGS}}"
ARG TORCH_SPEC="{{TORCH_SPEC}}"
COPY wheelhouse/ /opt/wheelhouse/
# hadolint ignore=SC2086,DL3013
RUN pip install --no-cache-dir ${PIP_INDEX_ARGS} --find-links /opt/wheelhouse "${TORCH_SPEC}" \
        ninja "cmake>=3.26" "setuptools>=77" setuptools-scm wheel packaging jinja2
ARG TORCH_CUDA_ARCH_LIST="{{ARCH_LIST}}"
ARG MAX_JOBS={{MAX_JOBS}}
ARG NVCC_THREADS={{NVCC_THREADS}}
ENV TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST} MAX_JOBS=${MAX_JOBS} NVCC_THREADS=${NVCC_THREADS}
ARG VLLM_VERSION={{VLLM_VERSION}}
ARG VLLM_REPO={{VLLM_REPO}}
WORKDIR /src
RUN git clone --depth 1 --branch "v${VLLM_VERSION}" "${VLLM_REPO}" vllm
WORKDIR /src/vllm
# use_existing_torch.py keeps the torch installed above (vLLM's build pins would replace it).
# hadolint ignore=DL3013
RUN python use_existing_torch.py \
    && if [ -f requirements/build.txt ]; then req=requirements/build.txt; else req=requirements-build.txt; fi \
    && pip install --no-cache-dir -r "$req" \
    && pip wheel --no-cache-dir --no-build-isolation --no-deps -w /dist .
ARG XFORMERS_FROM_SOURCE={{XFORMERS_FROM_SOURCE}}
ARG XFORMERS_VERSION={{XFORMERS_VERSION}}
RUN if [ "${XFORMERS_FROM_SOURCE}" = 1 ]; then \
        XFORMERS_DISABLE_FLASH_ATTN=1 pip wheel --no-cache-dir --no-build-isolation --no-deps \
            --no-binary xformers -w /dist "xformers==${XFORMERS_VERSION}"; \
    fi

# ---- runtime: the wheels built above plus the pinned rest.
FROM ${BASE_IMAGE} AS runtime
# @include parts/python.Dockerfile
ARG PIP_INDEX_ARGS="{{PIP_INDEX_ARGS}}"
ARG TORCH_SPEC="{{TORCH_SPEC}}"
ARG EXTRA_SPECS="{{EXTRA_SPECS}}"
COPY wheelhouse/ /opt/wheelhouse/
COPY --from=build /dist/ /opt/dist/
# hadolint ignore=SC2086,DL3013
RUN pip install --no-cache-dir ${PIP_INDEX_ARGS} --find-links /opt/wheelhouse \
        /opt/dist/*.whl "${TORCH_SPEC}" ${EXTRA_SPECS}
# @include parts/verify.Dockerfile
