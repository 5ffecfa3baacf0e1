"""A Spark job on a local-cluster master (two executor JVMs, each with its own Python daemon and workers, as on
a cluster), every executor measured by its own tracker: run as a subprocess by tests/test_carbon_executors.py
(one SparkContext per process), writing what it measured as JSON to argv[1]."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

import psutil
from pyspark.sql import SparkSession

from components.carbon import spark_executors
from components.carbon.tracking import Location, StageTracker, is_spark_executor, process_tree

EXECUTORS = 2


def burn(rows):
    """CPU work in the executor's Python worker (a pure-Python loop: the tracker must see it)."""
    total = 0
    for row in rows:
        deadline = time.process_time() + 1.5
        while time.process_time() < deadline:
            total += row
        yield total


def tree_cpu_seconds(processes: list[psutil.Process]) -> float:
    seconds = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            seconds += times.user + times.system
        except psutil.Error:
            pass
    return seconds


def main(out_path: str) -> None:
    energy_dir = tempfile.mkdtemp(prefix="greenfm-executor-energy-")
    location = Location(country_iso_code="SWE")
    driver = StageTracker("curate", location, "process").start()
    cpu_at_start = tree_cpu_seconds([psutil.Process()])
    builder = SparkSession.builder.master(f"local-cluster[{EXECUTORS},1,1024]").appName("greenfm-executor-energy")
    conf = {
        **spark_executors.executor_conf(energy_dir, location, flush_s=2.0),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    sc = spark.sparkContext
    app_id = sc.applicationId

    def python_tasks(partitions: int) -> None:
        sc.parallelize(range(partitions), partitions).map(lambda x: os.getpid()).collect()

    measured = spark_executors.wait_for_trackers(energy_dir, app_id, EXECUTORS, python_tasks, timeout_s=180)
    # Work in the executors: Python (burn) and JVM (a shuffle).
    sc.parallelize(range(8), 8).mapPartitions(burn).collect()
    spark.range(2_000_000).selectExpr("id % 97 AS k").groupBy("k").count().collect()
    everything = [psutil.Process(), *psutil.Process().children(recursive=True)]
    driver_tree = {p.pid for p in process_tree(psutil.Process())}
    executors = [p for p in everything if is_spark_executor(p)]
    executor_trees = [sorted(q.pid for q in process_tree(e)) for e in executors]
    cpu_seconds = tree_cpu_seconds(everything) - cpu_at_start  # every process of the run, each once
    records = spark_executors.collect(energy_dir, app_id, timeout_s=60)
    driver_record = driver.stop()
    total = spark_executors.stage_record(driver_record, records, EXECUTORS)
    cpu = next(h for h in driver.tracker._hardware if type(h).__name__ == "CPU")
    spark.stop()
    result = {
        "measured_before_job": measured,
        "driver": driver_record.to_json(),
        "executors": [r.to_json() for r in records],
        "total": total.to_json(),
        "driver_tree": sorted(driver_tree),
        "executor_trees": executor_trees,
        "all_pids": sorted(p.pid for p in everything),
        "cpu_seconds": cpu_seconds,
        "tdp_w": cpu._tdp,
        "cpu_count": cpu._cpu_count,
    }
    with open(out_path, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main(sys.argv[1])
