"""Each stage's emissions at the intensity of the hours it ran, from the provider its placement used.

A stage's energy record holds its energy per interval (components/carbon/tracking.py). Each interval's kWh is
multiplied by the grid intensity of that interval, taken in this order, and the statement says which was used:

1. measured: the provider's record of those hours (carbon-aware-sdk /emissions/average-carbon-intensity/batch,
   Electricity Maps /carbon-intensity/past-range, WattTime /v3/historical), on the basis the placement used;
2. forecast: the placement's own forecast of those hours (when the provider's history call fails);
3. annual average: codecarbon's bundled annual average for the location (the static provider, a stage that
   was not placed, or a placement that fell back to static) — a labelled fallback.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from components.carbon.catalog import Region
from components.carbon.providers import FAILURES, ForecastPoint, intensity_source, make_provider, piecewise_mean
from components.carbon.records import EnergyRecord, PlacementDecision

METHODS = {
    "measured": "measured intensity of the stage's hours",
    "forecast": "placement's forecast of the stage's hours",
    "annual-average": "annual average (fallback: no hourly data)",
}


@dataclass
class Attribution:
    method: str  # measured | forecast | annual-average (METHODS)
    basis: str  # average | marginal
    source: str
    emissions_kg: float
    intervals: list[dict] = field(default_factory=list)  # start, end, kwh, g_per_kwh, kg
    warnings: list[str] = field(default_factory=list)

    @property
    def g_per_kwh(self) -> float | None:
        kwh = sum(i["kwh"] for i in self.intervals)
        return self.emissions_kg / kwh * 1000.0 if kwh else None

    def to_json(self) -> dict:
        return {**asdict(self), "g_per_kwh": self.g_per_kwh, "method_label": METHODS[self.method]}


def _spans(record: EnergyRecord) -> list[tuple[datetime, datetime, float]]:
    intervals = record.intervals or []
    if not intervals:  # a record without intervals: its whole run as one
        return [(_time(record.started_at), _time(record.ended_at or record.started_at), record.energy_kwh)]
    return [(_time(i.start), _time(i.end), i.kwh) for i in intervals]


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _result(method: str, basis: str, source: str, spans, means: list[float], warnings: list[str]) -> Attribution:
    rows = [
        {"start": a.isoformat(), "end": b.isoformat(), "kwh": kwh, "g_per_kwh": g, "kg": kwh * g / 1000.0}
        for (a, b, kwh), g in zip(spans, means, strict=True)
    ]
    return Attribution(method, basis, source, sum(r["kg"] for r in rows), rows, warnings)


def attribute(record: EnergyRecord, decision: PlacementDecision | None) -> Attribution:
    """The stage's emissions per interval at the best intensity available (see the module docstring)."""
    spans = _spans(record)
    warnings: list[str] = []
    signal = decision.signal_of(decision.chosen.region) if decision else None
    if decision is not None and signal is not None and decision.provider != "static" and not signal["fallback"]:
        provider: Any = make_provider(decision.provider, decision.provider_url, fallback=False)  # a live one
        try:
            means = provider.interval_means(Region(**decision.region), [(a, b) for a, b, _ in spans])
            source = f"{decision.provider}: {signal['source']}, measured over the stage's {len(spans)} interval(s)"
            return _result("measured", decision.basis, source, spans, means, warnings)
        except FAILURES as error:
            warnings.append(f"{decision.provider} history failed ({type(error).__name__}: {error}); used the forecast")
        points = [
            ForecastPoint(_time(p["start"]), float(p["minutes"]), float(p["g_per_kwh"])) for p in signal["forecast"]
        ]
        means = [piecewise_mean(points, float(signal["g_per_kwh"]), a, b) for a, b, _ in spans]
        source = f"{signal['source']}: the forecast placement used for those hours"
        return _result("forecast", decision.basis, source, spans, means, warnings)
    annual = record.intensity_g_per_kwh or 0.0
    return _result("annual-average", "average", intensity_source(record.location), spans, [annual] * len(spans), [])
