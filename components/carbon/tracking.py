"""Measure a stage's energy with codecarbon's offline tracker at a stated location.

Offline on purpose: the online tracker looks the location up over the network and, without one, silently
assumes Quebec. The location is configuration, and the statement says so.

The tracker's cumulative energy is sampled every `interval_s`, so the statement can attribute each interval's
energy to the grid intensity of those hours (components/carbon/attribution.py). In a Kubernetes pod the node is
shared with other pods: CPU steps use codecarbon's process mode there (this process tree's share of the CPU),
so other pods' work is not counted. Process mode counts CPU time × the CPU's rated power (codecarbon's
load-based estimate): RAPL counters are per socket, so in process mode codecarbon would add the whole socket,
other pods included; they are used in machine mode only.

A process tree never counts a Spark executor below it (in a local-cluster or standalone master the executor JVMs
are children of the driver or its worker): each executor runs its own tracker (components/carbon/spark_executors.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any, TypeVar

import psutil

from components.carbon.records import EnergyRecord, Interval

T = TypeVar("T")


@dataclass
class Location:
    country_iso_code: str = "USA"  # ISO 3166-1 alpha-3
    region: str = ""  # codecarbon region: a US state or Canadian province, lower case
    cloud_provider: str = ""  # gcp | aws | azure; codecarbon's bundled table has GCP regions only
    cloud_region: str = ""
    pue: float = 1.0

    def describe(self) -> str:
        if self.cloud_provider and self.cloud_region:
            return f"{self.cloud_provider}:{self.cloud_region}"
        return f"{self.country_iso_code}{'/' + self.region if self.region else ''}"


IN_KUBERNETES_POD = "KUBERNETES_SERVICE_HOST"  # set by the kubelet in every pod
NODE_NAME = "NODE_NAME"  # the pod's node (downward API spec.nodeName), set on greenfm's measured pods
DEFAULT_INTERVAL_S = 60.0
# The JVM entry points of a Spark executor (standalone / local-cluster, YARN, Kubernetes).
SPARK_EXECUTOR_MAINS = (
    "org.apache.spark.executor.CoarseGrainedExecutorBackend",
    "org.apache.spark.executor.YarnCoarseGrainedExecutorBackend",
    "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
)


def default_tracking_mode() -> str:
    """process in a pod (shared node), machine on a workstation (everything on it is this run's)."""
    return "process" if os.environ.get(IN_KUBERNETES_POD) else "machine"


def node_name() -> str:
    """The machine a tracker ran on: the Kubernetes node (a pod's hostname is the pod's, not the node's), else
    this host's name. Records of one node are never summed twice (components/carbon/records.without_double_counts)."""
    if os.environ.get(NODE_NAME):
        return os.environ[NODE_NAME]
    host = socket.gethostname()
    return f"pod:{host}" if os.environ.get(IN_KUBERNETES_POD) else host


def is_spark_executor(process: psutil.Process) -> bool:
    try:
        return any(arg in SPARK_EXECUTOR_MAINS for arg in process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def process_tree(root: psutil.Process) -> list[psutil.Process]:
    """`root` and its descendants, less every Spark executor below it and that executor's descendants."""
    tree, pending = [root], [root]
    while pending:
        try:
            children = pending.pop().children()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        for child in children:
            if not is_spark_executor(child):
                tree.append(child)
                pending.append(child)
    return tree


def _tracker(stage: str, location: Location, tracking_mode: str):
    from codecarbon import OfflineEmissionsTracker

    from components.carbon import cpu_probe

    cpu_probe.install()  # the CPU's brand from this boot's probe, not a new 1.3 s probe per step

    options: dict[str, Any] = dict(
        project_name=f"greenfm-{stage}",
        measure_power_secs=1,
        output_methods=[],  # the record is returned; no emissions.csv left in the working directory
        log_level="error",
        allow_multiple_runs=True,
        pue=location.pue,
        country_iso_code=location.country_iso_code,
        tracking_mode=tracking_mode,
        force_mode_cpu_load=tracking_mode == "process",  # this tree's CPU time, not the socket's RAPL counter
    )
    if location.region:
        options["region"] = location.region
    if location.cloud_provider and location.cloud_region:
        options.update(cloud_provider=location.cloud_provider, cloud_region=location.cloud_region)
    return OfflineEmissionsTracker(**options)


def _scope_to_tree(tracker, root_pid: int) -> None:
    """Point a started process-mode tracker's CPU and RAM readings at `root_pid`'s tree (process_tree).

    codecarbon 3.3.2 tracks its own process and every descendant, with no way to name another process or leave
    a subtree out: its CPU reads `_get_process_cpu_times` and its RAM `_pid` + `_get_children_memories`
    (priced by `_calculate_ram_power`).
    """
    root = psutil.Process(root_pid)

    def cpu_times() -> dict[int, float]:
        times = {}
        for process in process_tree(root):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                spent = process.cpu_times()
                times[process.pid] = spent.user + spent.system
        return times

    def children_rss() -> list[int]:
        rss = []
        for process in process_tree(root)[1:]:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                rss.append(process.memory_info().rss)
        return rss

    for hardware in getattr(tracker, "_hardware", []):
        kind = type(hardware).__name__
        if kind == "CPU":
            with hardware._power_history_lock:
                hardware._pid, hardware._process = root_pid, root
                hardware._get_process_cpu_times = cpu_times
                hardware._last_measurement_time = time.time()
                hardware._last_cpu_times = cpu_times()
        elif kind == "RAM":
            hardware._pid = root_pid
            hardware._get_children_memories = children_rss
            # codecarbon prices a process's RSS as if it were a machine of that size (at least two DIMMs, ~10 W),
            # so every process-mode tracker on a node would add that floor: charge the tree its share of the
            # machine's RAM power instead, so trackers of one node add up to at most the node's.
            hardware._calculate_ram_power = _share_of_machine(hardware)


def _share_of_machine(ram) -> Callable[[float], float]:
    machine_gb = ram.machine_memory_GB
    machine_w = ram._calculate_ram_power(machine_gb)
    return lambda gb: machine_w * min(gb, machine_gb) / machine_gb


def _power_method(tracker) -> str:
    """How codecarbon got CPU power: RAPL counters, a TDP table, or a load-based estimate."""
    for hardware in getattr(tracker, "_hardware", []):
        if type(hardware).__name__ == "CPU":
            return str(getattr(hardware, "_mode", "unknown"))
    return "unknown"


class StageTracker:
    """One codecarbon tracker over a stage (or one Spark executor), its cumulative energy read every
    `interval_s` (codecarbon keeps it in `_total_energy`, updated by its own 1 s measurement thread; it has no
    public per-interval reading).

    Process mode covers `root_pid`'s process tree (default: this process), less any Spark executor below it.
    """

    def __init__(
        self,
        stage: str,
        location: Location,
        tracking_mode: str | None = None,
        interval_s: float = DEFAULT_INTERVAL_S,
        root_pid: int | None = None,
    ):
        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        self.stage, self.location, self.interval_s = stage, location, interval_s
        self.mode = tracking_mode or default_tracking_mode()
        self.root_pid = root_pid or os.getpid()
        self.tracker = _tracker(stage, location, self.mode)
        self.samples: list[tuple[datetime, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._wall = 0.0

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.samples.append((datetime.now(UTC), float(self.tracker._total_energy.kWh)))

    def start(self) -> StageTracker:
        self._wall = time.perf_counter()
        self.tracker.start()
        if self.mode == "process":
            _scope_to_tree(self.tracker, self.root_pid)
        self.samples = [(datetime.now(UTC), 0.0)]
        self._thread.start()
        return self

    def snapshot(self, notes: dict | None = None) -> EnergyRecord:
        """The energy so far, the tracker still running (a record that survives the process being killed)."""
        self.tracker.flush()
        data = asdict(self.tracker._prepare_emissions_data())
        return self._record(data, list(self.samples), failed=False, notes=notes)

    def stop(self, failed: bool = False, notes: dict | None = None) -> EnergyRecord:
        self.tracker.stop()
        self._stop.set()
        self._thread.join()
        return self._record(asdict(self.tracker.final_emissions_data), self.samples, failed, notes)

    def _record(self, data: dict, samples: list[tuple[datetime, float]], failed: bool, notes: dict | None):
        energy = data["energy_consumed"]
        ended = datetime.now(UTC)
        method = _power_method(self.tracker)
        return EnergyRecord(
            stage=self.stage,
            started_at=samples[0][0].isoformat(timespec="seconds"),
            ended_at=ended.isoformat(timespec="seconds"),
            wall_seconds=round(time.perf_counter() - self._wall, 3),
            failed=failed,
            energy_kwh=energy,
            cpu_kwh=data["cpu_energy"],
            gpu_kwh=data["gpu_energy"],
            ram_kwh=data["ram_energy"],
            emissions_kg=data["emissions"],
            intensity_g_per_kwh=(data["emissions"] / energy * 1000.0) if energy else None,
            location=self.location.describe(),
            country=data["country_name"],
            pue=data["pue"],
            cpu_model=data["cpu_model"],
            cpu_count=data["cpu_count"],
            gpu_model=data["gpu_model"],
            gpu_count=data["gpu_count"],
            cpu_power_method=method,
            tracking_mode=self.mode,
            codecarbon_version=data["codecarbon_version"],
            intervals=intervals_from_samples(samples, ended, energy),
            scope=tracker_scope(self.mode, method),
            host=node_name(),
            notes=dict(notes or {}),
        )


def tracker_scope(mode: str, cpu_power_method: str) -> str:
    if mode == "machine":
        return "this machine (machine mode)"
    if cpu_power_method == "intel_rapl":  # no CPU TDP known: codecarbon fell back to the socket's counters
        return "this process tree (process mode; CPU from the whole socket's RAPL counters)"
    return "this process tree (process mode)"


def intervals_from_samples(samples: list[tuple[datetime, float]], ended: datetime, total_kwh: float) -> list[Interval]:
    """Per-interval energy from cumulative readings, scaled so the intervals sum exactly to the tracker's final
    total (its last measurement lands after the last reading); one interval when nothing was read in between."""
    times = [t for t, _ in samples] + [ended]
    readings = [kwh for _, kwh in samples] + [total_kwh]
    deltas = [max(0.0, b - a) for a, b in pairwise(readings)]
    spent = sum(deltas)
    if not spent:
        deltas[-1], spent = total_kwh, total_kwh or 1.0
    return [
        Interval(a.isoformat(timespec="seconds"), b.isoformat(timespec="seconds"), d * total_kwh / spent)
        for (a, b), d in zip(pairwise(times), deltas, strict=True)
    ]


def measure(
    stage: str,
    location: Location,
    work: Callable[[], T],
    tracking_mode: str | None = None,
    interval_s: float = DEFAULT_INTERVAL_S,
) -> tuple[T, EnergyRecord]:
    """Run `work()` under a tracker; return its result and the stage's energy record.

    A failed stage's energy counts too: its record rides on the exception as `energy_record`.
    """
    tracker = StageTracker(stage, location, tracking_mode, interval_s).start()
    try:
        result = work()
    except BaseException as error:
        error.energy_record = tracker.stop(failed=True)  # type: ignore[attr-defined]  # read by the caller
        raise
    return result, tracker.stop()


def _overlap(a: EnergyRecord, b: EnergyRecord) -> bool:
    start, end = datetime.fromisoformat, datetime.fromisoformat
    return start(a.started_at) < end(b.ended_at) and start(b.started_at) < end(a.ended_at)


def without_double_counts(records: list[EnergyRecord]) -> tuple[list[EnergyRecord], list[dict]]:
    """(records to sum, those left out and why): a machine-mode record covers its whole node while it ran, so any
    other record of the same node over an overlapping time is already in it (of two machine-mode ones, the
    larger is kept). Process-mode records of one node cover disjoint process trees and all count."""
    kept: list[EnergyRecord] = []
    left_out: list[dict] = []
    machine_first = sorted(records, key=lambda r: (r.tracking_mode != "machine", -r.energy_kwh))
    for record in machine_first:
        cover = next(
            (
                k
                for k in kept
                if k.host and k.host == record.host and k.tracking_mode == "machine" and _overlap(k, record)
            ),
            None,
        )
        if cover is None:
            kept.append(record)
        else:
            left_out.append(
                {
                    "stage": record.stage,
                    "host": record.host,
                    "kwh": record.energy_kwh,
                    "why": f"node {record.host} already counted by {cover.stage}'s machine-mode tracker",
                }
            )
    return [r for r in records if any(r is k for k in kept)], left_out


def aggregate_ranks(records: list[EnergyRecord], scope: str = "") -> EnergyRecord:
    """One stage record from the trackers of a distributed stage (per node or attempt, a Spark driver and its
    executors), no node counted twice (without_double_counts): energy and emissions add up, intervals are kept
    per tracker, wall time is the longest, GPUs add up and each machine's CPUs count once. Left-out records are
    listed in its notes."""
    if not records:
        raise ValueError("no rank records to aggregate")
    records, left_out = without_double_counts(records)
    first = records[0]
    energy = sum(r.energy_kwh for r in records)
    emissions = sum(r.emissions_kg for r in records)
    notes = dict(first.notes)
    notes["trackers"] = [
        {"stage": r.stage, "host": r.host, "mode": r.tracking_mode, "kwh": r.energy_kwh} for r in records
    ]
    if left_out:
        notes["left_out_double_counts"] = left_out
    per_host = {r.host or f"unknown-{i}": r for i, r in enumerate(records)}
    hosts = sorted({r.host for r in records if r.host})
    return EnergyRecord(
        **{
            **asdict(first),
            "intervals": [i for r in records for i in r.intervals],
            "energy_kwh": energy,
            "cpu_kwh": sum(r.cpu_kwh for r in records),
            "gpu_kwh": sum(r.gpu_kwh for r in records),
            "ram_kwh": sum(r.ram_kwh for r in records),
            "emissions_kg": emissions,
            "cpu_count": sum(per_host[h].cpu_count for h in per_host),  # a machine's CPUs once
            "gpu_count": sum(r.gpu_count for r in records),
            "wall_seconds": max(r.wall_seconds for r in records),
            "failed": any(r.failed for r in records),
            "started_at": min(r.started_at for r in records),
            "ended_at": max(r.ended_at for r in records),
            "intensity_g_per_kwh": emissions / energy * 1000.0 if energy else None,
            "ranks": len(records),
            "scope": scope or f"{len(records)} node tracker(s), one per node ({first.tracking_mode} mode)",
            "host": ", ".join(hosts),
            "nodes": len(per_host),
            "tracking_mode": "+".join(sorted({r.tracking_mode for r in records})),
            "notes": notes,
        }
    )
