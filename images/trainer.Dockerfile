# GPU image for pretraining and adaptation: CUDA torch (NCCL bundled) + greenfm.
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv python3-pip \
 && rm -rf /var/lib/apt/lists/*
RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
WORKDIR /opt/greenfm
COPY pyproject.toml README.md ./
COPY components ./components
COPY pipelines ./pipelines
RUN pip install torch==2.13.0 && pip install . && pip check
RUN useradd --uid 10001 --create-home greenfm
USER 10001
