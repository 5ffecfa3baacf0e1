"""Shared fixtures: one Spark session per test session, and kfp.local subprocesses that import this checkout."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# Component subprocesses (kfp.local) and Spark's Python workers must import this checkout's code.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


@pytest.fixture(scope="session")
def spark():
    from components.curate.spark_session import get_spark

    session = get_spark("local[2]", shuffle_partitions=4)
    yield session
    session.stop()
