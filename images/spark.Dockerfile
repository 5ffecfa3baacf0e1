# syntax=docker/dockerfile:1
# Spark executor image (and SparkApplication driver) for curation on Kubernetes. Spark's version must match
# the driver's pyspark (pyproject.toml pins it; tests/test_k8s_images.py checks the two agree), and the
# Python and greenfm here must match the driver's, because the curation steps run Python UDFs.
ARG SPARK_VERSION=4.3.0
FROM apache/spark:${SPARK_VERSION}-scala2.13-java17-python3-ubuntu
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYSPARK_PYTHON=/opt/venv/bin/python PYSPARK_DRIVER_PYTHON=/opt/venv/bin/python \
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /opt/greenfm
COPY pyproject.toml README.md* ./
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
# The SparkApplication runs local:///opt/greenfm/components/curate/k8s.py: keep the sources at that path.
COPY components ./components
COPY pipelines ./pipelines
RUN pip install . && pip check
# 185 is the apache/spark images' non-root spark user, which their entrypoint expects.
USER 185
