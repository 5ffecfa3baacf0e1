"""One Spark session per process: starting one costs ~9 s, so every caller shares it."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

_session: SparkSession | None = None


def get_spark(master: str | None = None, shuffle_partitions: int | None = None) -> SparkSession:
    """The process's Spark session, created on first use.

    `master` defaults to $GREENFM_SPARK_MASTER or local[*]; on a cluster it is any Spark master URL. A
    k8s://https://... master runs this process as the driver and executors as pods (components.curate.k8s).
    Under spark-submit (a SparkApplication driver) the master spark-submit chose is kept.
    """
    global _session
    if _session is not None and not _session.sparkContext._jsc.sc().isStopped():
        return _session
    master = master or os.environ.get("GREENFM_SPARK_MASTER", "")
    launched_by_spark_submit = "PYSPARK_GATEWAY_PORT" in os.environ and not master
    if not launched_by_spark_submit:
        master = master or "local[*]"
    cluster_conf: dict[str, str] = {}
    if master.startswith("k8s://"):
        from components.curate.k8s import SparkK8sConfig, client_mode_conf

        cluster_conf = client_mode_conf(SparkK8sConfig.from_env({**os.environ, "GREENFM_SPARK_MASTER": master}))
    elif master.startswith("local"):
        # Local mode only: on a cluster, executors must reach the driver on the pod's address.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Python workers must run the interpreter that has greenfm installed, not whatever `python3` is on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    partitions = shuffle_partitions or max(2, 2 * (os.cpu_count() or 1))
    builder = SparkSession.builder.master(master) if master else SparkSession.builder
    for key, value in cluster_conf.items():
        builder = builder.config(key, value)
    _session = (
        builder.appName("greenfm-curate")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(partitions))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", os.environ.get("GREENFM_SPARK_DRIVER_MEMORY", "4g"))
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    _session.sparkContext.setLogLevel("ERROR")
    return _session
