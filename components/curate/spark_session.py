"""One Spark session per process: starting one costs ~7-9 s, so every caller shares it."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

_session: SparkSession | None = None

# A local session's driver JVM is also its only executor, and HotSpot's tiered JIT spends the first minute of a
# curation compiling: JFR counted 30,000 compilations and 62 s of compiler-thread CPU in a 59 s curation of the
# built-in corpus on 2 cores, most of it C2 optimizing code that runs a few times. C1 alone compiles cheaply and
# runs somewhat slower: curating that corpus (2.2 MB) took 40 s instead of 50 on a 2-core EPYC, an 18 MB input 71
# instead of 75; on longer runs C2's faster code pays for itself, so larger inputs keep the default JIT.
QUICK_JIT_OPTION = "-XX:TieredStopAtLevel=1"
QUICK_JIT_MAX_INPUT_BYTES = 64 << 20


def quick_jit_suits(input_bytes: int | None) -> bool:
    """Whether a local session over `input_bytes` of input (None: unknown, e.g. remote) starts with C1 only."""
    return input_bytes is not None and input_bytes <= QUICK_JIT_MAX_INPUT_BYTES


def get_spark(
    master: str | None = None,
    shuffle_partitions: int | None = None,
    conf: dict[str, str] | None = None,
    quick_jit: bool = False,
) -> SparkSession:
    """The process's Spark session, created on first use with `master` (default local[*]) and `conf`.

    `quick_jit` starts a local session's JVM with C1 only (`QUICK_JIT_OPTION`): for short local jobs. It only
    applies when this call creates the session, and never to a cluster's driver or executors.

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
        **({"spark.driver.extraJavaOptions": QUICK_JIT_OPTION} if quick_jit and local else {}),
        **(conf or {}),
    }
    builder = SparkSession.builder.master(master) if master else SparkSession.builder
    for key, value in settings.items():
        builder = builder.config(key, value)
    _session = builder.appName("greenfm-curate").getOrCreate()
    _session.sparkContext.setLogLevel("ERROR")
    return _session
