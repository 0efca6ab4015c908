ARG PYTHON_VERSION={{PYTHON_VERSION}}
ENV DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
# Python from Ubuntu (3.10, 3.11) or the deadsnakes PPA (3.12+), in a venv at /opt/venv.
# Skipped when the base image already has python${PYTHON_VERSION}.
# hadolint ignore=DL3008
RUN if ! command -v "python${PYTHON_VERSION}" >/dev/null 2>&1; then \
        apt-get update; \
        if ! apt-cache show "python${PYTHON_VERSION}-venv" >/dev/null 2>&1; then \
            apt-get install -y --no-install-recommends software-properties-common gpg-agent; \
            add-apt-repository -y ppa:deadsnakes/ppa; \
            apt-get update; \
        fi; \
        apt-get install -y --no-install-recommends ca-certificates "python${PYTHON_VERSION}" "python${PYTHON_VERSION}-venv"; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    "python${PYTHON_VERSION}" -m venv /opt/venv
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
