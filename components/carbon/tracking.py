"""Measure a stage's energy with codecarbon's offline tracker at a stated location.

Offline on purpose: the online tracker looks the location up over the network and, without one, silently
assumes Quebec. The location is configuration, and the statement says so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

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


def _tracker(stage: str, location: Location):
    from codecarbon import OfflineEmissionsTracker

    options: dict[str, Any] = dict(
        project_name=f"greenfm-{stage}",
        measure_power_secs=1,
        output_methods=[],  # the record is returned; no emissions.csv left in the working directory
        log_level="error",
        allow_multiple_runs=True,
        pue=location.pue,
        country_iso_code=location.country_iso_code,
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


def measure(stage: str, location: Location, work: Callable[[], T]) -> tuple[T, dict]:
    """Run `work()` under a tracker; return its result and the stage's energy record.

    A failed stage's energy counts too: its record rides on the exception as `energy_record`.
    """
    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    tracker = _tracker(stage, location)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    wall = time.perf_counter()
    tracker.start()
    try:
        result = work()
    except BaseException as error:
        tracker.stop()
        error.energy_record = energy_record(  # type: ignore[attr-defined]  # read by the caller that catches it
            stage, location, tracker, started_at, time.perf_counter() - wall, True
        )
        raise
    tracker.stop()
    return result, energy_record(stage, location, tracker, started_at, time.perf_counter() - wall, False)


def energy_record(stage: str, location: Location, tracker, started_at: str, wall_s: float, failed: bool) -> dict:
    data = asdict(tracker.final_emissions_data)
    energy = data["energy_consumed"]
    return {
        "stage": stage,
        "started_at": started_at,
        "wall_seconds": round(wall_s, 3),
        "failed": failed,
        "energy_kwh": energy,
        "cpu_kwh": data["cpu_energy"],
        "gpu_kwh": data["gpu_energy"],
        "ram_kwh": data["ram_energy"],
        "emissions_kg": data["emissions"],
        "intensity_g_per_kwh": (data["emissions"] / energy * 1000.0) if energy else None,
        "location": location.describe(),
        "country": data["country_name"],
        "pue": data["pue"],
        "cpu_model": data["cpu_model"],
        "cpu_count": data["cpu_count"],
        "gpu_model": data["gpu_model"],
        "gpu_count": data["gpu_count"],
        "cpu_power_method": _power_method(tracker),
        "tracking_mode": data["tracking_mode"],
        "codecarbon_version": data["codecarbon_version"],
    }


def aggregate_ranks(records: list[dict]) -> dict:
    """One stage record from the per-rank (per-node) records of a distributed stage: energy and emissions add up,
    wall time is the slowest rank's, hardware counts add up; the intensity follows from the sums."""
    if not records:
        raise ValueError("no rank records to aggregate")
    first = records[0]
    summed = {
        key: sum(r[key] for r in records)
        for key in ("energy_kwh", "cpu_kwh", "gpu_kwh", "ram_kwh", "emissions_kg", "cpu_count", "gpu_count")
    }
    return {
        **first,
        **summed,
        "wall_seconds": max(r["wall_seconds"] for r in records),
        "failed": any(r["failed"] for r in records),
        "started_at": min(r["started_at"] for r in records),
        "intensity_g_per_kwh": summed["emissions_kg"] / summed["energy_kwh"] * 1000.0 if summed["energy_kwh"] else None,
        "ranks": len(records),
    }
