# Spark executor image for curation on Kubernetes: the same Python and greenfm as the driver.
FROM apache/spark:4.0.1-scala2.13-java17-python3-ubuntu
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-pip \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/greenfm
COPY pyproject.toml README.md ./
COPY components ./components
COPY pipelines ./pipelines
RUN pip install --break-system-packages --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && pip install --break-system-packages .
USER 185
