"""One energy tracker per Spark executor, summed with the driver's into the curate stage's record.

Spark starts one Python daemon per executor (pyspark.daemon, a child of the executor JVM, which forks the Python
workers). `spark.python.daemon.module` names this module instead: it starts a process-mode tracker over its
parent, the executor JVM, so the JVM, the daemon and every Python worker of that executor are measured and
nothing else on the node, then runs pyspark's daemon unchanged. Run as `python -m components.carbon.spark_executors`.

Each tracker writes its record, cumulative, to the energy folder every `flush_s` (the shared workspace volume on
Kubernetes, any folder the driver can read locally), so an executor that dies still leaves its last reading.
When the job is done the driver asks for final readings (a stop file), waits for them, and sums driver and
executors (tracking.aggregate_ranks: process trees are disjoint, since a driver's tracker never counts an
executor below it, and no node is counted twice).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from components.carbon.records import EnergyRecord
from components.carbon.tracking import Location, StageTracker, aggregate_ranks
from components.common.errors import GreenfmError

DAEMON_MODULE = "components.carbon.spark_executors"
ENERGY_DIR = "GREENFM_SPARK_ENERGY_DIR"  # executor environment: where trackers write their records
ENERGY_LOCATION = "GREENFM_SPARK_ENERGY_LOCATION"  # JSON Location the executors are measured at
FLUSH_S = "GREENFM_SPARK_ENERGY_FLUSH_S"
DEFAULT_FLUSH_S = 10.0
STOP_POLL_S = 0.5  # how soon a tracker sees the driver ask for its final record


def executor_conf(energy_dir: str | Path, location: Location, flush_s: float = DEFAULT_FLUSH_S) -> dict[str, str]:
    """Spark conf that measures every executor of a session (set before the session starts)."""
    return {
        "spark.python.use.daemon": "true",
        "spark.python.daemon.module": DAEMON_MODULE,
        f"spark.executorEnv.{ENERGY_DIR}": str(energy_dir),
        f"spark.executorEnv.{ENERGY_LOCATION}": json.dumps(asdict(location)),
        f"spark.executorEnv.{FLUSH_S}": str(flush_s),
    }


def _stop_file(energy_dir: Path, app_id: str) -> Path:
    return energy_dir / f"{app_id}.stop"


def _record_file(energy_dir: Path, app_id: str, executor_id: str) -> Path:
    return energy_dir / f"{app_id}-executor-{executor_id}.json"


@dataclass
class ExecutorIdentity:
    app_id: str
    executor_id: str
    jvm_pid: int

    @classmethod
    def of_parent(cls, env: dict[str, str] | None = None) -> ExecutorIdentity:
        """The executor this daemon serves: its parent JVM's `--app-id` and `--executor-id` arguments
        (CoarseGrainedExecutorBackend and KubernetesExecutorBackend take both)."""
        import psutil

        env = dict(os.environ) if env is None else env
        jvm = psutil.Process(os.getppid())
        args = jvm.cmdline()

        def arg(name: str, fallback: str) -> str:
            if name in args and args.index(name) + 1 < len(args):
                return args[args.index(name) + 1]
            if fallback in env:
                return env[fallback]
            raise GreenfmError(f"Spark executor pid {jvm.pid}: no {name} on its command line nor ${fallback}")

        return cls(arg("--app-id", "SPARK_APPLICATION_ID"), arg("--executor-id", "SPARK_EXECUTOR_ID"), jvm.pid)


class ExecutorTracker:
    """The tracker of one executor, its record rewritten every `flush_s` until the driver asks for the final one."""

    def __init__(self, energy_dir: Path, location: Location, flush_s: float, who: ExecutorIdentity):
        self.energy_dir, self.flush_s, self.who = energy_dir, flush_s, who
        self.path = _record_file(energy_dir, who.app_id, who.executor_id)
        self.tracker = StageTracker(f"curate-executor-{who.executor_id}", location, "process", root_pid=who.jvm_pid)
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._flush, daemon=True)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ExecutorTracker:
        env = dict(os.environ) if env is None else env
        if not env.get(ENERGY_DIR) or not env.get(ENERGY_LOCATION):
            raise GreenfmError(f"executor energy: ${ENERGY_DIR} and ${ENERGY_LOCATION} must both be set")
        energy_dir = Path(env[ENERGY_DIR])
        energy_dir.mkdir(parents=True, exist_ok=True)
        location = Location(**json.loads(env[ENERGY_LOCATION]))
        return cls(energy_dir, location, float(env.get(FLUSH_S, DEFAULT_FLUSH_S)), ExecutorIdentity.of_parent(env))

    def _notes(self, final: bool) -> dict:
        return {"executor_id": self.who.executor_id, "app_id": self.who.app_id, "final": final}

    def _write(self, record: EnergyRecord) -> None:
        partial = self.path.with_suffix(".json.partial")
        partial.write_text(record.dumps())
        partial.replace(self.path)  # the driver never reads half a record

    def start(self) -> ExecutorTracker:
        self.tracker.start()
        self._write(self.tracker.snapshot(self._notes(final=False)))
        self._thread.start()
        return self

    def _flush(self) -> None:
        stop, written = _stop_file(self.energy_dir, self.who.app_id), time.monotonic()
        while not self._done.wait(STOP_POLL_S):
            if stop.exists():
                self.finish()
                return
            if time.monotonic() - written >= self.flush_s:
                with self._lock:
                    if not self._done.is_set():
                        self._write(self.tracker.snapshot(self._notes(final=False)))
                written = time.monotonic()

    def finish(self) -> None:
        """The final record (once): when the driver asks, or when the daemon exits with its executor."""
        with self._lock:
            if self._done.is_set():
                return
            self._done.set()
            self._write(self.tracker.stop(notes=self._notes(final=True)))


def collect(energy_dir: str | Path, app_id: str, timeout_s: float = 60.0) -> list[EnergyRecord]:
    """Ask every executor of `app_id` for its final record and return the records, waiting up to `timeout_s`
    for them (each tracker looks for the stop file every STOP_POLL_S); an executor that ended without one keeps
    its last reading, marked `final: false` in its notes."""
    energy_dir = Path(energy_dir)
    energy_dir.mkdir(parents=True, exist_ok=True)
    _stop_file(energy_dir, app_id).touch()
    deadline = time.monotonic() + timeout_s
    while True:
        records = [
            EnergyRecord.from_json(path.read_text(), f"executor energy record {path}")
            for path in sorted(energy_dir.glob(f"{app_id}-executor-*.json"))
        ]
        if all(r.notes.get("final") for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.5)


def wait_for_trackers(
    energy_dir: str | Path, app_id: str, executors: int, run_python_tasks: Callable[[int], None], timeout_s: float
) -> int:
    """Start every executor's tracker before the job: Spark starts an executor's Python daemon at its first
    Python task, so run small Python tasks (`run_python_tasks(partitions)`) until `executors` records exist.
    Returns how many executors are measured."""
    energy_dir = Path(energy_dir)
    deadline = time.monotonic() + timeout_s
    while True:
        seen = len(list(energy_dir.glob(f"{app_id}-executor-*.json")))
        if seen >= executors or time.monotonic() > deadline:
            return seen
        run_python_tasks(max(4, 4 * executors))


def read_records(energy_dir: str | Path) -> list[EnergyRecord]:
    """Every record in the energy folder (a SparkApplication's driver and executors, every attempt)."""
    return [
        EnergyRecord.from_json(path.read_text(), f"Spark energy record {path}")
        for path in sorted(Path(energy_dir).glob("*.json"))
    ]


@dataclass
class ExecutorMeasurement:
    """How one Spark application's executors are measured: where their records go, at which location."""

    energy_dir: Path
    location: Location
    executors: int  # how many the application asked for
    flush_s: float = DEFAULT_FLUSH_S
    start_timeout_s: float = 300.0  # executor pods may wait for a node
    collect_timeout_s: float = 60.0

    def conf(self) -> dict[str, str]:
        return executor_conf(self.energy_dir, self.location, self.flush_s)

    def start(self, spark) -> int:
        """Start every executor's tracker (wait_for_trackers); returns how many are measured."""
        self.energy_dir.mkdir(parents=True, exist_ok=True)
        sc = spark.sparkContext

        def python_tasks(partitions: int) -> None:
            sc.parallelize(range(partitions), partitions).map(lambda x: x).collect()

        return wait_for_trackers(self.energy_dir, sc.applicationId, self.executors, python_tasks, self.start_timeout_s)

    def finish(self, spark) -> list[EnergyRecord]:
        """The executors' final records, before the session stops."""
        return collect(self.energy_dir, spark.sparkContext.applicationId, self.collect_timeout_s)


def stage_record(step: EnergyRecord, spark_records: list[EnergyRecord], expected_executors: int) -> EnergyRecord:
    """The curate stage's record: this step's tracker (the Spark driver in client mode), the driver pod's when
    the Spark Operator ran it, and one tracker per executor, no node twice."""
    executors = [r for r in spark_records if "executor_id" in r.notes]
    drivers = [r for r in spark_records if "executor_id" not in r.notes]
    missing = max(0, expected_executors - len(executors))
    not_final = sum(1 for r in executors if not r.notes.get("final"))
    parts = ["this step (the Spark driver)"] if not drivers else ["this step", f"{len(drivers)} Spark driver pod(s)"]
    scope = " + ".join([*parts, f"{len(executors)} executor tracker(s), one per executor"]) + " (process mode)"
    if missing:
        scope += f"; {missing} executor(s) left no record (not measured)"
    if not_final:
        scope += f"; {not_final} ended before a final reading (last reading counted)"
    total = aggregate_ranks([step, *drivers, *executors], scope)  # the step's stage name and notes come first
    total.notes["executors_measured"] = len(executors)
    total.notes["executors_without_record"] = missing
    return total


def main() -> None:
    """The executor's Python daemon: pyspark's, with a tracker over the executor for as long as it runs."""
    tracker = None
    try:
        tracker = ExecutorTracker.from_env().start()
    except Exception as error:  # the executor still serves tasks; the driver reports it as not measured
        print(f"greenfm: this executor's energy is not measured: {error}", file=sys.stderr)
    from pyspark import daemon

    try:
        daemon.manager()
    finally:
        if tracker is not None:
            tracker.finish()


if __name__ == "__main__":
    main()
