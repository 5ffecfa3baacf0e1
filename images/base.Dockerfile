# syntax=docker/dockerfile:1
# CPU image for curation (Spark driver, local[*] or k8s:// client mode; also a Spark standalone master or worker),
# validation, evaluation, the carbon statement and the data-change watcher: greenfm + Java 17 for Spark.
# Nothing is pip-installed at run time (components set base_image to this and install_kfp_package=False).
#
# Build arguments (defaults: public sources, so `docker build -f images/base.Dockerfile .` works unchanged):
#   BASE_IMAGE       a Python 3.11 Debian bookworm image (bookworm: Java 17 is one of its packages)
#   TORCH            torch requirement, or a wheel under /wheels (the build context's images/wheels/)
#   TORCH_INDEX_URL  where TORCH and its dependencies come from (CPU wheels keep this image small)
ARG BASE_IMAGE=python:3.11-slim-bookworm
ARG TORCH=torch==2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

# ---- requirements: the dependency list alone, so its install layer is reused until the list itself changes.
FROM ${BASE_IMAGE} AS requirements
COPY pyproject.toml /src/
RUN python3 -c "import tomllib; print(*tomllib.load(open('/src/pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" \
      > /src/requirements.txt

# ---- build: the dependencies in a venv, so the runtime stage copies one directory, no pip caches.
FROM ${BASE_IMAGE} AS build
ARG TORCH
ARG TORCH_INDEX_URL
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY images/wheels/ /wheels/
RUN pip install --index-url "$TORCH_INDEX_URL" --find-links /wheels "$TORCH"
COPY --from=requirements /src/requirements.txt ./
RUN pip install --find-links /wheels -r requirements.txt

# ---- wheel: greenfm itself, built apart so a code change rebuilds only its small layers, not the venv's.
FROM build AS wheel
COPY pyproject.toml README.md ./
COPY components ./components
COPY pipelines ./pipelines
RUN pip wheel --no-deps --wheel-dir /dist .

# ---- runtime
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps tini \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
COPY --from=build /opt/venv /opt/venv
COPY --from=wheel /dist /tmp/dist
RUN PIP_NO_CACHE_DIR=1 /opt/venv/bin/pip install --no-deps /tmp/dist/*.whl && rm -rf /tmp/dist \
 && /opt/venv/bin/pip check
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 HOME=/tmp
# Numeric non-root user (Kubernetes runAsNonRoot can only verify a numeric USER); group 0 so that volumes
# made group-writable for an arbitrary uid (OpenShift-style) are writable too.
RUN useradd --uid 10001 --gid 0 --no-create-home --shell /usr/sbin/nologin greenfm
USER 10001
WORKDIR /tmp
ENTRYPOINT ["tini", "--"]
CMD ["greenfm", "--help"]
