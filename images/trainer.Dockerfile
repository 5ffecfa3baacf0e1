# syntax=docker/dockerfile:1
# Image for pretraining and adaptation (KFP steps, PyTorchJob / TrainJob replicas): torch + greenfm, and a C/C++
# compiler with the Python headers, which torch.compile needs (Triton builds its GPU launcher with them;
# Inductor's CPU backend compiles C++). CUDA, cuDNN and NCCL come from torch's own wheels (nvidia-* packages),
# so the base is plain Python: no second CUDA in a CUDA base image; the node's driver is mounted at run time.
#
# Build arguments (defaults: public sources, so `docker build -f images/trainer.Dockerfile .` works unchanged):
#   BASE_IMAGE       a Python 3.11 Debian bookworm image
#   TORCH            torch requirement, or a wheel under /wheels (the build context's images/wheels/)
#   TORCH_INDEX_URL  where TORCH and its dependencies come from (PyPI's Linux torch is the CUDA build)
ARG BASE_IMAGE=python:3.11-slim-bookworm
ARG TORCH=torch==2.13.0
ARG TORCH_INDEX_URL=https://pypi.org/simple

# ---- requirements: the dependency list alone, so its install layer is reused until the list itself changes.
FROM ${BASE_IMAGE} AS requirements
COPY pyproject.toml /src/
RUN python3 -c "import tomllib; print(*tomllib.load(open('/src/pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" \
      > /src/requirements.txt

# ---- build: the same steps as images/base.Dockerfile, so with the same arguments the layers are shared.
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

# ---- runtime: g++ (with gcc and libc headers) for torch.compile; Python.h from python3-dev only where the base
# lacks it (the official python images ship the headers, Debian's python3 does not).
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ tini \
 && if [ ! -f "$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" ]; then \
      apt-get install -y --no-install-recommends python3-dev; fi \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
COPY --from=build /opt/venv /opt/venv
COPY --from=wheel /dist /tmp/dist
RUN PIP_NO_CACHE_DIR=1 /opt/venv/bin/pip install --no-deps /tmp/dist/*.whl && rm -rf /tmp/dist \
 && /opt/venv/bin/pip check
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOME=/tmp NCCL_DEBUG=WARN
RUN useradd --uid 10001 --gid 0 --no-create-home --shell /usr/sbin/nologin greenfm
USER 10001
WORKDIR /tmp
ENTRYPOINT ["tini", "--"]
CMD ["python3", "-c", "import torch; print(torch.__version__, torch.cuda.is_available())"]
