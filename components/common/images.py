"""Container images the components run in on a cluster (built from images/). Everything greenfm needs is
installed in them, so nothing is pip-installed at run time. Override with environment variables."""

import os

VERSION = "0.1.0"
BASE_IMAGE = os.environ.get("GREENFM_BASE_IMAGE", f"ghcr.io/greenfm/greenfm-base:{VERSION}")
TRAINER_IMAGE = os.environ.get("GREENFM_TRAINER_IMAGE", f"ghcr.io/greenfm/greenfm-trainer:{VERSION}")
# Spark executors (and SparkApplication drivers) on Kubernetes: the same Python and greenfm as the curate step.
SPARK_IMAGE = os.environ.get("GREENFM_SPARK_IMAGE", f"ghcr.io/greenfm/greenfm-spark:{VERSION}")
