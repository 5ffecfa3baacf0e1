"""Measure a stage's energy with codecarbon's offline tracker at a stated location.

Offline on purpose: the online tracker looks the location up over the network and, without one, silently
assumes Quebec. The location is configuration, and the statement says so.

The tracker's cumulative energy is sampled every `interval_s`, so the statement can attribute each interval's
energy to the grid intensity of those hours (components/carbon/attribution.py). In a Kubernetes pod the node is
shared with other pods: CPU steps use codecarbon's process mode there (this process tree's share of the CPU),
so other pods' work is not counted.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any, TypeVar

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
DEFAULT_INTERVAL_S = 60.0


def default_tracking_mode() -> str:
    """process in a pod (shared node), machine on a workstation (everything on it is this run's)."""
    return "process" if os.environ.get(IN_KUBERNETES_POD) else "machine"


def _tracker(stage: str, location: Location, tracking_mode: str):
    from codecarbon import OfflineEmissionsTracker

    options: dict[str, Any] = dict(
        project_name=f"greenfm-{stage}",
        measure_power_secs=1,
        output_methods=[],  # the record is returned; no emissions.csv left in the working directory
        log_level="error",
        allow_multiple_runs=True,
        pue=location.pue,
        country_iso_code=location.country_iso_code,
        tracking_mode=tracking_mode,
    )
    if location.region:
        options["region"] = location.region
    if location.cloud_provider and location.cloud_region:
        options.update(cloud_provider=location.cloud_provider, cloud_region=location.cloud_region)
    return OfflineEmissionsTracker(**options)


def _power_method(tracker) -> str:
    """How codecarbon got CPU power: RAPL counters, a TDP table, or a load-based estimate."""
    for hardware in getattr(tracker, "_hardware", []):
        if type(hardware).__name__ == "CPU":
            return str(getattr(hardware, "_mode", "unknown"))
    return "unknown"


class _Sampler:
    """Reads the tracker's cumulative energy every interval_s (codecarbon keeps it in `_total_energy`, updated
    by its own 1 s measurement thread; it has no public per-interval reading)."""

    def __init__(self, tracker, interval_s: float):
        self.tracker, self.interval_s = tracker, interval_s
        self.samples: list[tuple[datetime, float]] = [(datetime.now(UTC), 0.0)]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.samples.append((datetime.now(UTC), float(self.tracker._total_energy.kWh)))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> list[tuple[datetime, float]]:
        self._stop.set()
        self._thread.join()
        return self.samples


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
    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    mode = tracking_mode or default_tracking_mode()
    tracker = _tracker(stage, location, mode)
    wall = time.perf_counter()
    tracker.start()
    sampler = _Sampler(tracker, interval_s)
    sampler.start()
    try:
        result = work()
    except BaseException as error:
        tracker.stop()
        error.energy_record = energy_record(  # type: ignore[attr-defined]  # read by the caller that catches it
            stage, location, tracker, sampler.stop(), time.perf_counter() - wall, True
        )
        raise
    tracker.stop()
    return result, energy_record(stage, location, tracker, sampler.stop(), time.perf_counter() - wall, False)


def energy_record(
    stage: str, location: Location, tracker, samples: list[tuple[datetime, float]], wall_s: float, failed: bool
) -> EnergyRecord:
    data = asdict(tracker.final_emissions_data)
    energy = data["energy_consumed"]
    ended = datetime.now(UTC)
    mode = data["tracking_mode"]
    return EnergyRecord(
        stage=stage,
        started_at=samples[0][0].isoformat(timespec="seconds"),
        ended_at=ended.isoformat(timespec="seconds"),
        wall_seconds=round(wall_s, 3),
        failed=failed,
        energy_kwh=energy,
        cpu_kwh=data["cpu_energy"],
        gpu_kwh=data["gpu_energy"],
        ram_kwh=data["ram_energy"],
        emissions_kg=data["emissions"],
        intensity_g_per_kwh=(data["emissions"] / energy * 1000.0) if energy else None,
        location=location.describe(),
        country=data["country_name"],
        pue=data["pue"],
        cpu_model=data["cpu_model"],
        cpu_count=data["cpu_count"],
        gpu_model=data["gpu_model"],
        gpu_count=data["gpu_count"],
        cpu_power_method=_power_method(tracker),
        tracking_mode=mode,
        codecarbon_version=data["codecarbon_version"],
        intervals=intervals_from_samples(samples, ended, energy),
        scope="this process tree (process mode)" if mode == "process" else "this machine (machine mode)",
    )


def aggregate_ranks(records: list[EnergyRecord]) -> EnergyRecord:
    """One stage record from the per-node (per-attempt) records of a distributed stage: energy and emissions add
    up, intervals are kept per node, wall time is the slowest node's, hardware counts add up."""
    if not records:
        raise ValueError("no rank records to aggregate")
    first = records[0]
    energy = sum(r.energy_kwh for r in records)
    emissions = sum(r.emissions_kg for r in records)
    return EnergyRecord(
        **{
            **asdict(first),
            "intervals": [i for r in records for i in r.intervals],
            "energy_kwh": energy,
            "cpu_kwh": sum(r.cpu_kwh for r in records),
            "gpu_kwh": sum(r.gpu_kwh for r in records),
            "ram_kwh": sum(r.ram_kwh for r in records),
            "emissions_kg": emissions,
            "cpu_count": sum(r.cpu_count for r in records),
            "gpu_count": sum(r.gpu_count for r in records),
            "wall_seconds": max(r.wall_seconds for r in records),
            "failed": any(r.failed for r in records),
            "started_at": min(r.started_at for r in records),
            "ended_at": max(r.ended_at for r in records),
            "intensity_g_per_kwh": emissions / energy * 1000.0 if energy else None,
            "ranks": len(records),
            "scope": f"{len(records)} node tracker(s), one per node ({first.tracking_mode} mode)",
        }
    )
