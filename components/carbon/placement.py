"""select_region: among catalog regions that satisfy the job's constraints, the (region, start time) with the
least expected emissions for the job's estimated energy and duration.

Expected emissions of starting at s in region r = energy × PUE_r × mean intensity of r over [s, s + duration].
Intensity is piecewise constant: each forecast point holds over its interval; outside the forecast, the
provider's current value holds. The mean over a sliding window of a piecewise-constant function is piecewise
linear in s with kinks only where the window's start or end crosses a breakpoint, so its minimum over an
interval of starts is attained at one of: the earliest start, the latest start, a breakpoint b, or b − duration.
Checking those candidates is therefore exact, not a heuristic (tests check it against brute force).

Regions are compared on one basis: when a live provider fails for some regions (they fall back to the static
annual average), every region falls back together, so an annual average never competes with live marginal
values; `fail_closed` stops the placement instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from components.carbon.catalog import Catalog, Region
from components.carbon.providers import IntensityProvider, Signal, StaticProvider, piecewise_mean
from components.carbon.records import Option, PlacementDecision
from components.common.errors import GreenfmError
from components.common.params import split_list


@dataclass
class Constraints:
    gpu_type: str = ""  # empty: no GPU needed
    gpu_count: int = 0
    required_tags: list[str] = field(default_factory=list)  # e.g. ["residency-eu"]: the region needs all of them
    deadline_hours: float = 0.0  # the job must finish within this many hours from now; 0: no deadline
    max_wait_hours: float = 0.0  # how long the job may be held back for a cleaner grid (bounded wait)

    @classmethod
    def from_params(
        cls, gpu_type: str, gpu_count: int, residency_tags: str, deadline_hours: float, max_wait_hours: float
    ) -> Constraints:
        """From the pipeline's (and `greenfm regions`') parameters; residency_tags is comma-separated."""
        return cls(gpu_type, gpu_count, split_list(residency_tags), deadline_hours, max_wait_hours)


@dataclass
class Job:
    stage: str
    energy_kwh: float  # estimated IT energy (before PUE)
    duration_hours: float


def wait_for_start(
    decision: PlacementDecision, max_wait_hours: float, sleep: Callable[[float], None] = time.sleep
) -> float:
    """Sleep until the chosen start (a cleaner forecast hour), never longer than max_wait_hours; return the
    seconds waited."""
    wait_s = (datetime.fromisoformat(decision.chosen.start) - datetime.now(UTC)).total_seconds()
    waited = max(0.0, min(wait_s, max_wait_hours * 3600))
    if waited:
        sleep(waited)
    return waited


def why_infeasible(region: Region, constraints: Constraints, job: Job) -> str:
    """'' when the region can run the job, else the first constraint it misses."""
    if constraints.gpu_type and region.gpus.get(constraints.gpu_type, 0) < max(1, constraints.gpu_count):
        have = region.gpus.get(constraints.gpu_type, 0)
        return f"needs {max(1, constraints.gpu_count)} × {constraints.gpu_type}, has {have}"
    missing = [t for t in constraints.required_tags if t not in region.tags]
    if missing:
        return f"lacks tag(s) {', '.join(missing)}"
    if constraints.deadline_hours and job.duration_hours > constraints.deadline_hours:
        return f"a {job.duration_hours:g} h job cannot finish within the {constraints.deadline_hours:g} h deadline"
    return ""


def window_mean(signal: Signal, start: datetime, hours: float) -> float:
    """Exact time-weighted mean intensity over [start, start + hours] of the piecewise-constant signal."""
    return piecewise_mean(signal.forecast, signal.g_per_kwh, start, start + timedelta(hours=max(0.0, hours)))


def latest_start(now: datetime, constraints: Constraints, job: Job) -> datetime:
    wait = constraints.max_wait_hours
    if constraints.deadline_hours:
        wait = min(wait, constraints.deadline_hours - job.duration_hours)
    return now + timedelta(hours=max(0.0, wait))


def candidate_starts(signal: Signal, now: datetime, last: datetime, duration_hours: float) -> list[datetime]:
    duration = timedelta(hours=duration_hours)
    breaks = {t for p in signal.forecast for t in (p.start, p.end)}
    candidates = {now, last} | breaks | {b - duration for b in breaks}
    return sorted(t for t in candidates if now <= t <= last)


def _option(region: Region, signal: Signal, job: Job, start: datetime, now: datetime) -> Option:
    mean = window_mean(signal, start, job.duration_hours)
    energy = job.energy_kwh * region.pue
    return Option(
        region=region.name,
        start=start.isoformat(),
        wait_hours=round((start - now).total_seconds() / 3600, 6),
        mean_g_per_kwh=mean,
        pue=region.pue,
        energy_kwh=energy,
        expected_kg=energy * mean / 1000.0,
        source=signal.source,
        basis=signal.basis,
    )


def choose(
    catalog: Catalog, signals: dict[str, Signal], constraints: Constraints, job: Job, now: datetime
) -> PlacementDecision:
    """The pure decision, given each region's signal (no I/O: this is what the optimality tests exercise)."""
    infeasible = {r.name: why for r in catalog.regions if (why := why_infeasible(r, constraints, job))}
    feasible = [r for r in catalog.regions if r.name not in infeasible]
    if not feasible:
        detail = "; ".join(f"{name}: {why}" for name, why in infeasible.items())
        raise GreenfmError(f"no region in the catalog can run {job.stage}: {detail}")
    bases = {signals[r.name].basis for r in feasible}
    if len(bases) > 1:
        raise GreenfmError(f"placement of {job.stage}: signals mix {' and '.join(sorted(bases))} intensities")
    last = latest_start(now, constraints, job)
    best_per_region, now_options = [], {}
    for region in feasible:
        signal = signals[region.name]
        options = [
            _option(region, signal, job, s, now) for s in candidate_starts(signal, now, last, job.duration_hours)
        ]
        # Ties go to the earliest start: waiting for nothing is never better.
        best_per_region.append(min(options, key=lambda o: (o.expected_kg, o.wait_hours)))
        now_options[region.name] = _option(region, signal, job, now, now)
    # Among regions, ties go to the default region, then catalog order (stable sort).
    order = {r.name: i for i, r in enumerate(feasible)}
    alternatives = sorted(
        best_per_region,
        key=lambda o: (o.expected_kg, o.wait_hours, o.region != catalog.default_region, order[o.region]),
    )
    chosen = alternatives[0]
    default = now_options.get(catalog.default_region)
    worst = max(now_options.values(), key=lambda o: o.expected_kg)
    return PlacementDecision(
        stage=job.stage,
        chosen=chosen,
        default=default,
        worst=worst,
        now=now_options[chosen.region],
        alternatives=alternatives,
        infeasible=infeasible,
        reason=_reason(chosen, default, now_options[chosen.region], alternatives, infeasible),
        warnings=[w for s in signals.values() for w in s.warnings],
        signals=[signals[r.name].to_json() for r in feasible],
        basis=bases.pop(),
        region=asdict(catalog.get(chosen.region)),
    )


def _reason(chosen: Option, default: Option | None, now: Option, alternatives: list[Option], infeasible: dict) -> str:
    parts = [
        f"{chosen.region} has the least expected emissions among {len(alternatives)} feasible region(s): "
        f"{chosen.energy_kwh:.4g} kWh × {chosen.mean_g_per_kwh:.1f} g/kWh = {chosen.expected_kg:.4g} kg CO2e"
    ]
    if chosen.wait_hours > 0:
        parts.append(
            f"starting in {chosen.wait_hours:.2f} h saves {now.expected_kg - chosen.expected_kg:.4g} kg vs now"
        )
    if default and default.region != chosen.region:
        parts.append(f"default {default.region} now would emit {default.expected_kg:.4g} kg")
    if len(alternatives) > 1:
        parts.append(f"runner-up {alternatives[1].region}: {alternatives[1].expected_kg:.4g} kg")
    if infeasible:
        parts.append(f"{len(infeasible)} region(s) excluded by constraints")
    return "; ".join(parts) + "."


def one_basis(
    regions: list[Region], signals: dict[str, Signal], now: datetime, fail_closed: bool = False
) -> dict[str, Signal]:
    """Like with like: if the live provider failed for some regions but not all, every region falls back to the
    static annual average together (with a warning naming the failed ones); fail_closed raises instead."""
    failed = [name for name, s in signals.items() if s.fallback]
    if failed and fail_closed:
        detail = "; ".join(f"{w['region']}: {w['error']}" for s in signals.values() for w in s.warnings)
        raise GreenfmError(f"intensity provider failed for {', '.join(failed)} (fail-closed): {detail}")
    if not failed or len(failed) == len(signals):
        return signals
    static = StaticProvider()
    together = {}
    for region in regions:
        name, signal = region.name, signals[region.name]
        replaced = static.signal(region, now)
        replaced.fallback = True
        replaced.warnings = [
            *signal.warnings,
            {
                "provider": "placement",
                "region": name,
                "error": f"live data missing for {', '.join(failed)}; regions must be compared on one basis",
                "fallback": f"{replaced.source} for every region",
            },
        ]
        together[name] = replaced
    return together


def select_region(
    catalog: Catalog,
    provider: IntensityProvider,
    constraints: Constraints,
    job: Job,
    now: datetime,
    fail_closed: bool = False,
) -> PlacementDecision:
    """Ask the provider about every feasible region, compare them on one basis, then choose."""
    horizon = latest_start(now, constraints, job) - now + timedelta(hours=job.duration_hours)
    feasible = [r for r in catalog.regions if not why_infeasible(r, constraints, job)]
    signals = {r.name: provider.signal(r, now, horizon.total_seconds() / 3600) for r in feasible}
    decision = choose(catalog, one_basis(feasible, signals, now, fail_closed), constraints, job, now)
    decision.provider = provider.name
    return decision
