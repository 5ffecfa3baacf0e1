"""The two carbon records that cross stage boundaries, as small typed classes (standard library only, so any
stage can read them without loading codecarbon, Spark or torch):

- `EnergyRecord`: what one stage's tracker measured (energy per interval, hardware, how it was measured).
- `PlacementDecision`: where and when a heavy stage runs, what else was considered, and on which basis.

Both travel between pipeline steps as JSON (`to_json` / `from_json`); `from_json` rejects a malformed record with
a one-line error naming the record and the key.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from components.common.errors import GreenfmError

REGION_LABEL = "topology.kubernetes.io/region"  # node label a placement selects on
BASES = ("average", "marginal")  # grid-intensity basis: average (attributional) or marginal (consequential)


@dataclass
class Interval:
    """Energy measured over [start, end] (ISO times, UTC): the unit emissions are attributed per."""

    start: str
    end: str
    kwh: float


@dataclass
class EnergyRecord:
    stage: str
    started_at: str  # ISO, UTC
    ended_at: str
    wall_seconds: float
    failed: bool
    energy_kwh: float  # at the meter: IT energy × PUE (codecarbon applies the PUE)
    cpu_kwh: float
    gpu_kwh: float
    ram_kwh: float
    emissions_kg: float  # codecarbon's figure at the static annual average of `location`
    intensity_g_per_kwh: float | None  # the annual average that figure used
    location: str  # Location.describe(): gcp:<region> or ISO3[/subregion]
    country: str
    pue: float
    cpu_model: str
    cpu_count: float
    gpu_model: str
    gpu_count: float
    cpu_power_method: str  # intel_rapl | cpu_load | tdp | constant
    tracking_mode: str  # machine (whole machine) | process (this process tree only)
    codecarbon_version: str
    intervals: list[Interval] = field(default_factory=list)  # sums to energy_kwh
    scope: str = "this machine"  # what the tracker(s) covered, in words
    ranks: int = 1  # trackers summed into this record (nodes of a distributed stage, a Spark driver + executors)
    host: str = ""  # the machine (Kubernetes node) the tracker(s) ran on, comma-separated; "" when not known
    nodes: int = 1  # machines the trackers ran on (embodied emissions charge one server each)
    notes: dict[str, Any] = field(default_factory=dict)  # stage facts the statement uses (e.g. dedup counts)

    def to_json(self) -> dict:
        return asdict(self)

    def dumps(self) -> str:
        return json.dumps(self.to_json())

    @classmethod
    def from_json(cls, data: dict | str, origin: str = "energy record") -> EnergyRecord:
        data = _mapping(data, origin)
        values = _known(cls, data, origin)
        values["intervals"] = [
            Interval(**_known(Interval, i, f"{origin}: interval")) for i in data.get("intervals", [])
        ]
        record = cls(**values)
        for name in ("energy_kwh", "cpu_kwh", "gpu_kwh", "ram_kwh", "emissions_kg", "wall_seconds", "pue"):
            value = getattr(record, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise GreenfmError(f"{origin} ({record.stage}): {name} must be a number ≥ 0, got {value!r}")
        return record


def tracker_rows(record: dict) -> list[dict]:
    """What an energy record (as JSON, or a statement's stage row) was summed from: one row per tracker
    (stage, host, mode, kwh, counted) and the records left out as already counted (counted false, why)."""
    notes = record.get("notes") or {}
    counted = notes.get("trackers") or [
        {
            "stage": record["stage"],
            "host": record.get("host", ""),
            "mode": record["tracking_mode"],
            "kwh": record["energy_kwh"],
        }
    ]
    left_out = [
        {"stage": d["stage"], "host": d["host"], "mode": "", "kwh": d["kwh"], "counted": False, "why": d["why"]}
        for d in notes.get("left_out_double_counts", [])
    ]
    return [{**t, "counted": True, "why": ""} for t in counted] + left_out


@dataclass
class Option:
    """One (region, start) considered for a stage, with its expected emissions."""

    region: str
    start: str  # ISO time
    wait_hours: float
    mean_g_per_kwh: float  # mean intensity over the run window
    pue: float
    energy_kwh: float  # job energy × PUE
    expected_kg: float
    source: str
    basis: str = "average"  # average | marginal: what mean_g_per_kwh is


@dataclass
class PlacementDecision:
    stage: str
    chosen: Option
    default: Option | None  # the catalog's default region, started now (None when it is infeasible)
    worst: Option  # worst feasible region, started now
    now: Option  # the chosen region, started now (to show what waiting bought)
    alternatives: list[Option]  # the best option of every feasible region, best first
    infeasible: dict[str, str]  # region -> why it was excluded
    reason: str
    warnings: list[dict]
    signals: list[dict]  # providers.Signal.to_json() of every feasible region
    basis: str = "average"  # the one basis every region was compared on
    provider: str = "static"  # intensity provider name (make_provider), also used to attribute measured hours
    provider_url: str = ""
    region: dict[str, Any] = field(default_factory=dict)  # the chosen region's catalog entry

    @property
    def node_selector(self) -> dict[str, str]:
        return {REGION_LABEL: self.chosen.region}

    def to_json(self) -> dict:
        return {**asdict(self), "node_selector": self.node_selector}

    def dumps(self) -> str:
        return json.dumps(self.to_json())

    def signal_of(self, region: str) -> dict | None:
        return next((s for s in self.signals if s["region"] == region), None)

    @classmethod
    def from_json(cls, data: dict | str, origin: str = "placement decision") -> PlacementDecision:
        data = {k: v for k, v in _mapping(data, origin).items() if k != "node_selector"}
        values = _known(cls, data, origin)

        def option(value: Any, key: str) -> Option:
            return Option(**_known(Option, value, f"{origin}: {key}"))

        values["chosen"], values["worst"], values["now"] = (option(data[k], k) for k in ("chosen", "worst", "now"))
        values["default"] = option(data["default"], "default") if data.get("default") else None
        values["alternatives"] = [option(a, "alternatives") for a in data["alternatives"]]
        if values.get("basis", "average") not in BASES:
            raise GreenfmError(f"{origin}: basis must be one of {', '.join(BASES)}, got {values['basis']!r}")
        return cls(**values)


def _mapping(data: dict | str, origin: str) -> dict:
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as error:
            raise GreenfmError(f"{origin}: not valid JSON ({error.msg} at character {error.pos})") from None
    if not isinstance(data, dict):
        raise GreenfmError(f"{origin}: expected a JSON object, got {type(data).__name__}")
    return data


def _known(cls: type, data: Any, origin: str) -> dict:
    """The dataclass's fields from `data`: every required one present, no unknown key."""
    if not isinstance(data, dict):
        raise GreenfmError(f"{origin}: expected a JSON object, got {type(data).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise GreenfmError(f"{origin}: unknown key(s) {', '.join(unknown)}")
    required = [f.name for f in fields(cls) if f.default is f.default_factory]  # both MISSING: no default
    missing = [name for name in required if name not in data]
    if missing:
        raise GreenfmError(f"{origin}: missing key(s) {', '.join(missing)}")
    return dict(data)
