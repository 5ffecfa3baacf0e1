# CPU image for curation, validation, evaluation and the carbon statement: greenfm + Java 17 for Spark.
FROM python:3.11.7-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 SPARK_LOCAL_IP=127.0.0.1
WORKDIR /opt/greenfm
COPY pyproject.toml README.md ./
COPY components ./components
COPY pipelines ./pipelines
# CPU torch keeps this image small; the trainer image carries the CUDA build.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && pip install . \
 && pip check
RUN useradd --uid 10001 --create-home greenfm
USER 10001
