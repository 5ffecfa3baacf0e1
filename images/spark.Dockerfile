# syntax=docker/dockerfile:1
# Spark image for curation on Kubernetes: executor pods (k8s:// client mode) and SparkApplication drivers. It is
# the base image plus Spark's container entrypoint, so executors run exactly the driver's Python, greenfm and
# Spark (the pyspark distribution, with its Kubernetes jars): the curation steps' Python UDFs behave the same
# on every executor, and pyspark and Spark can never disagree on a version.
#
# Build argument: GREENFM_BASE_IMAGE, the base image built from images/base.Dockerfile (`greenfm images build`
# builds it first and passes its tag).
ARG GREENFM_BASE_IMAGE=ghcr.io/greenfm/greenfm-base:0.1.0
FROM ${GREENFM_BASE_IMAGE}
# Spark's own home inside pyspark; the SparkApplication runs local:///opt/greenfm/components/curate/k8s.py.
USER root
RUN ln -s "$(python3 -c 'import pathlib, components; print(pathlib.Path(components.__file__).parent.parent)')" \
      /opt/greenfm \
 && ln -s "$(python3 -c 'import pathlib, pyspark; print(pathlib.Path(pyspark.__file__).parent)')" /opt/spark
COPY images/spark-entrypoint.sh /opt/entrypoint.sh
ENV SPARK_HOME=/opt/spark PYSPARK_PYTHON=/opt/venv/bin/python3 PYSPARK_DRIVER_PYTHON=/opt/venv/bin/python3
# The base image's uid 10001, not the apache/spark images' 185: the driver (the curate step, base image) and the
# executors write into the same output folder on the shared volume, and the driver's job commit renames the
# files the executors' tasks wrote; with two uids it may not (permission denied).
USER 10001
WORKDIR /tmp
ENTRYPOINT ["tini", "--", "/opt/entrypoint.sh"]
CMD ["python3", "-c", "import pyspark; print(pyspark.__version__)"]
