"""What is measured: one tracker per Spark executor, summed with the driver's, no process and no node counted twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import psutil
import pytest

from components.carbon import spark_executors
from components.carbon.records import EnergyRecord
from components.carbon.tracking import (
    Location,
    StageTracker,
    aggregate_ranks,
    process_tree,
    tracker_scope,
    without_double_counts,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
EXECUTOR_MAIN = "org.apache.spark.executor.CoarseGrainedExecutorBackend"


def record(stage: str, host: str, mode: str, kwh: float, start: str = "10:00", end: str = "11:00") -> EnergyRecord:
    return EnergyRecord(
        stage=stage,
        started_at=f"2026-03-01T{start}:00+00:00",
        ended_at=f"2026-03-01T{end}:00+00:00",
        wall_seconds=60.0,
        failed=False,
        energy_kwh=kwh,
        cpu_kwh=kwh,
        gpu_kwh=0.0,
        ram_kwh=0.0,
        emissions_kg=kwh * 0.1,
        intensity_g_per_kwh=100.0,
        location="SWE",
        country="Sweden",
        pue=1.0,
        cpu_model="x",
        cpu_count=2,
        gpu_model="",
        gpu_count=0,
        cpu_power_method="cpu_load",
        tracking_mode=mode,
        codecarbon_version="3.3.2",
        host=host,
    )


def test_a_machine_record_covers_its_node_once():
    launcher = record("pretrain", "node-a", "process", 0.01)
    node_a = record("pretrain-node0", "node-a", "machine", 2.0)
    node_a_again = record("pretrain-node1", "node-a", "machine", 1.5)  # a second worker pod on the same node
    node_b = record("pretrain-node2", "node-b", "machine", 2.5)
    retried = record("pretrain-node0", "node-b", "machine", 0.5, "11:30", "12:00")  # later, on node-b again
    kept, left_out = without_double_counts([launcher, node_a, node_a_again, node_b, retried])
    assert kept == [node_a, node_b, retried]
    assert {(d["stage"], d["host"]) for d in left_out} == {("pretrain", "node-a"), ("pretrain-node1", "node-a")}
    total = aggregate_ranks([launcher, node_a, node_a_again, node_b, retried])
    assert total.energy_kwh == pytest.approx(5.0) and total.ranks == 3
    assert total.emissions_kg == pytest.approx(0.5) and len(total.notes["left_out_double_counts"]) == 2


def test_process_records_of_one_node_all_count():
    """Process trees never overlap (a driver's tree leaves its executors out), so they add up on one node."""
    records = [record("curate", "vm", "process", 0.2)]
    for i in range(2):
        records.append(record(f"curate-executor-{i}", "vm", "process", 0.1))
        records[-1].notes = {"executor_id": str(i), "app_id": "app-1", "final": i == 0}
    total = spark_executors.stage_record(records[0], records[1:], expected_executors=3)
    assert total.energy_kwh == pytest.approx(0.4) and total.ranks == 3 and total.stage == "curate"
    assert total.notes["executors_measured"] == 2 and total.notes["executors_without_record"] == 1
    assert total.nodes == 1 and total.cpu_count == 2 and total.host == "vm"  # one machine: its CPUs once
    assert "1 executor(s) left no record (not measured)" in total.scope
    assert total.scope.startswith("this step (the Spark driver) + 2 executor tracker(s), one per executor")
    assert "1 ended before a final reading (last reading counted)" in total.scope


def test_rapl_in_process_mode_is_labelled():
    assert tracker_scope("process", "intel_rapl").endswith("CPU from the whole socket's RAPL counters)")
    assert tracker_scope("process", "cpu_load") == "this process tree (process mode)"


def _fake_executor(code: str, executor_id: str = "3", app_id: str = "app-test") -> list[str]:
    """A process that looks like a Spark executor JVM (its main class and arguments on the command line)."""
    return [sys.executable, "-c", code, EXECUTOR_MAIN, "--executor-id", executor_id, "--app-id", app_id]


def test_process_tree_leaves_spark_executors_out():
    sleeper = [
        sys.executable,
        "-c",
        "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); time.sleep(30)",
    ]
    executor = subprocess.Popen(_fake_executor(sleeper[2]))
    helper = subprocess.Popen(sleeper)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not all(psutil.Process(p.pid).children() for p in (executor, helper)):
            time.sleep(0.1)  # each has started its own child
        tree = {p.pid for p in process_tree(psutil.Process())}
        executor_tree = {executor.pid, *(c.pid for c in psutil.Process(executor.pid).children(recursive=True))}
        assert len(executor_tree) == 2 and not tree & executor_tree
        assert helper.pid in tree and all(c.pid in tree for c in psutil.Process(helper.pid).children())
        assert {p.pid for p in process_tree(psutil.Process(executor.pid))} == executor_tree
    finally:
        for process in (executor, helper):
            for child in psutil.Process(process.pid).children(recursive=True):
                child.kill()
            process.kill()
            process.wait()


def test_tracker_measures_the_named_process_tree(tmp_path):
    """A tracker over another process counts that process's CPU, not its own process's: of two trackers in this
    (sometimes busy) process, the one over a burning child counts the burn and the one over a sleeping child
    almost nothing."""
    # Each child waits on stdin: the burner burns only once its tracker has started (starting codecarbon takes
    # seconds on a loaded machine, and CPU spent before a tracker's baseline is rightly not the tracker's).
    burn = "import sys, time\nsys.stdin.read(1)\nt = time.process_time() + 3\nwhile time.process_time() < t: pass"
    burner = subprocess.Popen([sys.executable, "-c", burn], stdin=subprocess.PIPE)
    sleeper = subprocess.Popen([sys.executable, "-c", "import sys\nsys.stdin.read()"], stdin=subprocess.PIPE)
    busy = StageTracker("burn", Location(country_iso_code="SWE"), "process", root_pid=burner.pid).start()
    idle = StageTracker("sleep", Location(country_iso_code="SWE"), "process", root_pid=sleeper.pid).start()
    burner.communicate(b"go")
    sleeper.communicate(b"")
    slept, burned = idle.stop(), busy.stop()
    assert burned.cpu_kwh > 0 and burned.cpu_kwh > 5 * slept.cpu_kwh
    assert burned.tracking_mode == slept.tracking_mode == "process"


def test_executor_daemon_measures_its_executor(tmp_path):
    """The daemon module Spark runs per executor (spark.python.daemon.module) tracks its parent, the executor
    JVM, writes its record while running, and its final record when asked (the stop file)."""
    energy_dir = tmp_path / "energy"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        **{
            k.removeprefix("spark.executorEnv."): v
            for k, v in spark_executors.executor_conf(energy_dir, Location(country_iso_code="SWE"), 1.0).items()
            if k.startswith("spark.executorEnv.")
        },
    }
    # The fake executor starts the daemon as Spark's PythonWorkerFactory does (python -m <daemon module>, stdin
    # and stdout piped), reads the port it listens on, then burns CPU as the JVM's own work would.
    code = (
        "import subprocess, sys, time\n"
        f"d = subprocess.Popen([sys.executable, '-m', '{spark_executors.DAEMON_MODULE}'], stdin=subprocess.PIPE, "
        "stdout=subprocess.PIPE)\n"
        "d.stdout.read(4)\n"
        "t = time.process_time() + 4\n"
        "while time.process_time() < t: pass\n"
        "open(sys.argv[-1], 'w').close()\n"
        "d.wait(timeout=300)\n"
    )
    burned = tmp_path / "burned"
    executor = subprocess.Popen([*_fake_executor(code), str(burned)], env=env)
    try:
        path = energy_dir / "app-test-executor-3.json"
        deadline = time.monotonic() + 60
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        running = EnergyRecord.from_json(path.read_text())
        assert running.notes == {"executor_id": "3", "app_id": "app-test", "final": False}
        while not burned.exists() and time.monotonic() < deadline + 120:
            time.sleep(0.2)
        records = spark_executors.collect(energy_dir, "app-test", timeout_s=30)
    finally:
        for child in psutil.Process(executor.pid).children(recursive=True):
            child.kill()
        executor.kill()
        executor.wait()
    (final,) = records
    assert final.stage == "curate-executor-3" and final.notes["final"] and final.tracking_mode == "process"
    assert final.energy_kwh >= running.energy_kwh
    # The executor's own 4 CPU seconds are in it: its CPU energy is ≥ 3 s at the CPU's rated power per core.
    probe = StageTracker("probe", Location(country_iso_code="SWE"), "process").start()
    cpu = next(h for h in probe.tracker._hardware if type(h).__name__ == "CPU")
    probe.stop()
    assert final.cpu_kwh * 3.6e6 * cpu._cpu_count / cpu._tdp >= 3.0


@pytest.mark.slow
def test_local_cluster_one_record_per_executor_summed_once(tmp_path):
    """Two executor JVMs on a local-cluster master (each with its own Python daemon and workers, as on a
    cluster): one final record per executor, the stage's energy is driver + executors, and every process of the
    run is counted exactly once (the CPU time the records imply is the CPU time the processes spent)."""
    out = tmp_path / "measured.json"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    subprocess.run(
        [sys.executable, "-m", "tests.spark_executor_energy_run", str(out)],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        timeout=600,
    )
    measured = json.loads(out.read_text())
    executors = [EnergyRecord.from_json(r) for r in measured["executors"]]
    driver, total = EnergyRecord.from_json(measured["driver"]), EnergyRecord.from_json(measured["total"])
    assert measured["measured_before_job"] == 2
    assert sorted(r.notes["executor_id"] for r in executors) == ["0", "1"]
    assert all(r.notes["final"] and r.cpu_kwh > 0 and r.tracking_mode == "process" for r in executors)
    assert total.ranks == 3 and total.energy_kwh == pytest.approx(
        driver.energy_kwh + sum(r.energy_kwh for r in executors)
    )
    assert total.scope.startswith("this step (the Spark driver) + 2 executor tracker(s)")
    # Process trees: the driver's and each executor's are disjoint and together are every process of the run.
    trees = [set(measured["driver_tree"]), *(set(t) for t in measured["executor_trees"])]
    assert len(trees) == 3 and sum(len(t) for t in trees) == len(set().union(*trees))
    assert set().union(*trees) == set(measured["all_pids"])
    # Energy: codecarbon's load-based CPU power is rated power × CPU time / cores, so the records imply CPU time.
    # Every process's CPU time counts once: at most what the run's processes spent (each executor JVM's start-up
    # before its first Python task, a few seconds, is not measured), and an executor counted by the driver too
    # would add its whole share again.
    implied_s = sum(r.cpu_kwh for r in [driver, *executors]) * 3.6e6 * measured["cpu_count"] / measured["tdp_w"]
    assert 0.6 * measured["cpu_seconds"] < implied_s < 1.15 * measured["cpu_seconds"]


@pytest.mark.slow
def test_spark_application_driver_measures_itself_and_every_executor(tiny_corpus, tmp_path):
    """The SparkApplication driver (components/curate/k8s.py's main, run by spark-submit as the Spark Operator
    runs it) on a local-cluster master with two executors: it curates, and leaves its own record and one final
    record per executor in the energy folder, which the step sums once (stage_record)."""
    from components.curate.job import REPORT_JSON, CurateConfig
    from components.curate.k8s import measurement_arguments
    from components.curate.quality import quality_preset

    energy = spark_executors.ExecutorMeasurement(tmp_path / "energy", Location(country_iso_code="FRA"), 2, 2.0)
    config = CurateConfig(vocab_size=512, quality=quality_preset("docstrings"))
    conf = {**energy.conf(), "spark.ui.enabled": "false", "spark.driver.memory": "1g"}
    submit = [
        str(Path(sys.executable).parent / "spark-submit"),
        "--master",
        "local-cluster[2,1,1024]",
        *(arg for key, value in conf.items() for arg in ("--conf", f"{key}={value}")),
        str(REPO_ROOT / "components" / "curate" / "k8s.py"),
        *("--input", str(tiny_corpus), "--output", str(tmp_path / "out")),
        *("--config", json.dumps(asdict(config))),
        *measurement_arguments(energy),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    subprocess.run(submit, cwd=tmp_path, env=env, check=True, timeout=900)
    assert json.loads((tmp_path / "out" / REPORT_JSON).read_text())["documents"] > 0
    records = spark_executors.read_records(energy.energy_dir)
    executors = [r for r in records if "executor_id" in r.notes]
    (driver,) = [r for r in records if "executor_id" not in r.notes]
    assert driver.stage == "curate-driver" and driver.location == "FRA" and not driver.failed
    assert sorted(r.notes["executor_id"] for r in executors) == ["0", "1"]
    assert all(r.notes["final"] and r.cpu_kwh > 0 and r.location == "FRA" for r in executors)
    step = record("curate", "step-node", "process", 0.001)
    total = spark_executors.stage_record(step, records, 2)
    assert total.ranks == 4 and total.notes["executors_without_record"] == 0
    assert total.energy_kwh == pytest.approx(step.energy_kwh + sum(r.energy_kwh for r in records))
    assert total.scope.startswith("this step + 1 Spark driver pod(s) + 2 executor tracker(s)")


def test_process_mode_ram_is_the_trees_share_of_the_machine():
    """codecarbon alone would price a process's RSS as a machine of that size (a two-DIMM floor), so trackers of
    one node would add that floor each; a process tree is charged its share of the machine's RAM power."""
    from codecarbon.external.ram import RAM_SLOT_POWER_X86

    tracker = StageTracker("ram", Location(country_iso_code="SWE"), "process").start()
    time.sleep(2)
    measured = tracker.stop()
    ram = next(h for h in tracker.tracker._hardware if type(h).__name__ == "RAM")
    machine_gb = ram.machine_memory_GB
    machine_w = ram._calculate_ram_power(machine_gb)
    assert ram._calculate_ram_power(machine_gb / 4) == pytest.approx(machine_w / 4)  # a quarter of the RAM
    watts = measured.ram_kwh * 3.6e6 / measured.wall_seconds
    assert 0 < watts < min(machine_w, RAM_SLOT_POWER_X86)  # this process's share, below the two-DIMM floor


def test_statement_lists_the_trackers_a_stage_is_summed_from(run_inputs):
    from components.carbon.statement import build_statement, reconcile, render_markdown
    from tests.test_carbon_html_browser import summed_trackers

    records, inputs = run_inputs
    statement = build_statement(summed_trackers(records), {"outcome": "completed"}, inputs)
    assert reconcile(statement) == []
    markdown = render_markdown(statement)
    assert "- curate is the sum of 3 tracker(s): curate on cpu-a (process" in markdown
    assert "not counted: node gpu-a already counted by pretrain-node0's machine-mode tracker" in markdown
    by_stage = {s["stage"]: s for s in statement["stages"]}
    assert by_stage["pretrain"]["nodes"] == 2 and by_stage["curate"]["nodes"] == 2  # embodied: one server per node


def test_spark_pods_are_measured_and_name_their_node(tmp_path):
    """Operator mode: the SparkApplication runs every executor's Python daemon as this module, tells the driver
    where to leave the records, and every pod (client-mode executors too) names its node."""
    from components.curate.k8s import NODE_NAME_ENV, SparkK8sConfig, build_spark_application, executor_pod_template

    cfg = SparkK8sConfig(backend="operator", namespace="greenfm")
    energy = spark_executors.ExecutorMeasurement(tmp_path / "energy", Location(country_iso_code="FIN"), 3)
    spec = build_spark_application(cfg, "greenfm-curate-x", "/in", "/out", {}, energy)["spec"]
    assert spec["sparkConf"]["spark.python.daemon.module"] == spark_executors.DAEMON_MODULE
    assert spec["sparkConf"][f"spark.executorEnv.{spark_executors.ENERGY_DIR}"] == str(tmp_path / "energy")
    args = spec["arguments"]
    assert (
        args[args.index("--energy-dir") + 1] == str(tmp_path / "energy") and args[args.index("--executors") + 1] == "3"
    )
    assert json.loads(args[args.index("--energy-location") + 1])["country_iso_code"] == "FIN"
    assert spec["driver"]["env"] == spec["executor"]["env"] == [NODE_NAME_ENV]
    assert NODE_NAME_ENV["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    (container,) = executor_pod_template(cfg)["spec"]["containers"]
    assert container["env"] == [NODE_NAME_ENV]
    unmeasured = build_spark_application(cfg, "greenfm-curate-x", "/in", "/out", {})["spec"]
    assert "--energy-dir" not in unmeasured["arguments"] and "spark.python.daemon.module" not in unmeasured["sparkConf"]
