"""One Spark session per process: starting one costs ~7-9 s, so every caller shares it."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

_session: SparkSession | None = None

# A local session over a small input spends more time preparing work than doing it: its driver JVM is also its
# only executor, C2 compiles code that runs a few times for the whole of a short curation, and adaptive query
# execution re-plans every query for sizes that do not matter. C1 alone and no AQE make it faster; on longer runs
# C2's code and AQE pay for themselves, so larger inputs keep Spark's defaults (measurements: components/curate/README.md).
SMALL_INPUT_CONF = {"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1", "spark.sql.adaptive.enabled": "false"}
SMALL_INPUT_MAX_BYTES = 64 << 20


def is_small_input(input_bytes: int | None) -> bool:
    """Whether `input_bytes` of input (None: unknown, e.g. remote) gets a local session with SMALL_INPUT_CONF."""
    return input_bytes is not None and input_bytes <= SMALL_INPUT_MAX_BYTES


def get_spark(
    master: str | None = None,
    shuffle_partitions: int | None = None,
    conf: dict[str, str] | None = None,
    small_input: bool = False,
) -> SparkSession:
    """The process's Spark session, created on first use with `master` (default local[*]) and `conf`.

    `small_input` gives a local session `SMALL_INPUT_CONF` (C1 only, no adaptive execution): for short local
    jobs. It applies only when this call creates the session, and never to a cluster's driver or executors.

    On a cluster, the caller passes the master and the conf it needs (components.curate.k8s builds the
    k8s:// client-mode conf); nothing here reads cluster settings from the environment. Under spark-submit (a
    SparkApplication driver) the master spark-submit chose is kept.
    """
    global _session
    if _session is not None and not _session.sparkContext._jsc.sc().isStopped():
        return _session
    launched_by_spark_submit = "PYSPARK_GATEWAY_PORT" in os.environ and not master
    if not launched_by_spark_submit:
        master = master or "local[*]"
    local = bool(master and master.startswith("local"))
    if local:
        # Local mode only: on a cluster, executors must reach the driver on the pod's address.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Python workers must run the interpreter that has greenfm installed, not whatever `python3` is on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    partitions = shuffle_partitions or max(2, 2 * (os.cpu_count() or 1))
    settings = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": str(partitions),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.driver.memory": "4g",
        "spark.sql.session.timeZone": "UTC",
        **(SMALL_INPUT_CONF if small_input and local else {}),
        **(conf or {}),
    }
    builder = SparkSession.builder.master(master) if master else SparkSession.builder
    for key, value in settings.items():
        builder = builder.config(key, value)
    _session = builder.appName("greenfm-curate").getOrCreate()
    _session.sparkContext.setLogLevel("ERROR")
    return _session
