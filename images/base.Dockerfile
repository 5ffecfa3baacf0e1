# syntax=docker/dockerfile:1
# CPU image for curation (Spark driver, local[*] or k8s:// client mode), validation, evaluation, the carbon
# statement and the data-change watcher: greenfm installed + Java 17 for Spark. Nothing is pip-installed at
# run time (components set base_image to this and install_kfp_package=False).

# ---- build: resolve and install into a venv, so the runtime stage copies one directory, no pip caches.
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first (cached while only the code changes); CPU torch keeps this image small.
COPY pyproject.toml README.md* ./
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY components ./components
COPY pipelines ./pipelines
RUN pip install . && pip check

# ---- runtime
FROM python:3.11.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps tini \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 HOME=/tmp
# Numeric non-root user: Kubernetes runAsNonRoot can only verify a numeric USER.
RUN useradd --uid 10001 --gid 0 --no-create-home --shell /usr/sbin/nologin greenfm
USER 10001
WORKDIR /tmp
ENTRYPOINT ["tini", "--"]
CMD ["greenfm", "--help"]
