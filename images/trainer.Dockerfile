# syntax=docker/dockerfile:1
# GPU image for pretraining and adaptation (KFP steps and PyTorchJob replicas): CUDA torch with its bundled
# NCCL, + greenfm. The CUDA runtime comes from torch's wheels, so the base only needs the driver interface.

# ---- build
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.12 python3.12-venv \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3.12 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md* ./
# The default PyPI torch wheel for Linux x86_64 is the CUDA build (with nvidia-nccl-cu12).
RUN pip install torch==2.13.0
COPY components ./components
COPY pipelines ./pipelines
RUN pip install . && pip check

# ---- runtime: same base (same glibc and CUDA user-space), no compilers or pip caches.
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.12 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOME=/tmp \
    NCCL_DEBUG=WARN
RUN useradd --uid 10001 --gid 0 --no-create-home --shell /usr/sbin/nologin greenfm
USER 10001
WORKDIR /tmp
CMD ["python", "-c", "import torch; print(torch.__version__, torch.cuda.is_available())"]
