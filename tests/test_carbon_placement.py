"""select_region is optimal: checked against brute force over small random catalogs and forecasts."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from components.carbon.catalog import REGION_LABEL, Catalog, Region, load_catalog, parse_catalog
from components.carbon.placement import Constraints, Job, choose, select_region
from components.carbon.providers import ForecastPoint, Signal, StaticProvider
from components.common.errors import GreenfmError

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
GPU_TYPES = ["h100", "a100"]
TAGS = ["residency-eu", "residency-us", "onprem"]


def random_case(rng: random.Random):
    regions, signals = [], {}
    for i in range(rng.randint(1, 4)):
        name = f"r{i}"
        regions.append(
            Region(
                name=name,
                zone="FRA",
                gpus={t: rng.choice([0, 1, 4, 8]) for t in GPU_TYPES if rng.random() < 0.7},
                tags=[t for t in TAGS if rng.random() < 0.5],
                pue=rng.choice([1.0, 1.1, 1.4]),
            )
        )
        # Forecast points on a minute grid, possibly with gaps and starting in the future.
        points, t = [], rng.randint(0, 90)
        for _ in range(rng.randint(0, 5)):
            minutes = rng.randint(5, 120)
            points.append(ForecastPoint(NOW + timedelta(minutes=t), minutes, float(rng.randint(10, 800))))
            t += minutes + rng.choice([0, 0, rng.randint(1, 60)])
        signals[name] = Signal(name, float(rng.randint(10, 800)), "test", NOW, points)
    constraints = Constraints(
        gpu_type=rng.choice(["", *GPU_TYPES]),
        gpu_count=rng.choice([0, 1, 4]),
        required_tags=[t for t in TAGS if rng.random() < 0.2],
        deadline_hours=rng.choice([0.0, rng.randint(1, 12) / 2]),
        max_wait_hours=rng.choice([0.0, 1.0, 3.0, 8.0]),
    )
    job = Job("pretrain", energy_kwh=rng.choice([0.5, 3.0, 40.0]), duration_hours=rng.randint(5, 240) / 60)
    catalog = Catalog(regions, default_region=rng.choice(regions).name)
    return catalog, signals, constraints, job


def brute_force(catalog: Catalog, signals: dict, constraints: Constraints, job: Job):
    """Independent reference: every region, every whole-minute start, minute-by-minute integration."""

    def per_minute(signal: Signal, minute: int) -> float:
        t = NOW + timedelta(minutes=minute)
        covering = [p.g_per_kwh for p in signal.forecast if p.start <= t < p.start + timedelta(minutes=p.minutes)]
        return covering[0] if covering else signal.g_per_kwh

    def feasible(region: Region) -> bool:
        if constraints.gpu_type and region.gpus.get(constraints.gpu_type, 0) < max(1, constraints.gpu_count):
            return False
        if not set(constraints.required_tags) <= set(region.tags):
            return False
        return not (constraints.deadline_hours and job.duration_hours > constraints.deadline_hours)

    duration = round(job.duration_hours * 60)
    wait = constraints.max_wait_hours * 60
    if constraints.deadline_hours:
        wait = min(wait, constraints.deadline_hours * 60 - duration)
    results = []
    for region in filter(feasible, catalog.regions):
        for start in range(0, int(max(0, wait)) + 1):
            mean = sum(per_minute(signals[region.name], start + m) for m in range(duration)) / duration
            results.append((job.energy_kwh * region.pue * mean / 1000.0, region.name, start))
    return results


@pytest.mark.parametrize("seed", range(120))
def test_choice_is_optimal_against_brute_force(seed):
    catalog, signals, constraints, job = random_case(random.Random(seed))
    reference = brute_force(catalog, signals, constraints, job)
    if not reference:
        with pytest.raises(GreenfmError, match="no region"):
            choose(catalog, signals, constraints, job, NOW)
        return
    decision = choose(catalog, signals, constraints, job, NOW)
    best_kg = min(kg for kg, _, _ in reference)
    assert decision.chosen.expected_kg == pytest.approx(best_kg, rel=1e-9, abs=1e-12)
    # The chosen pair is one the brute force also scores that way (region, start, kg agree).
    start_min = round((datetime.fromisoformat(decision.chosen.start) - NOW).total_seconds() / 60)
    scored = {(r, s): kg for kg, r, s in reference}
    assert scored[(decision.chosen.region, start_min)] == pytest.approx(
        decision.chosen.expected_kg, rel=1e-9, abs=1e-12
    )
    # Recorded alternatives: one per feasible region, each that region's own optimum, best first.
    assert {a.region for a in decision.alternatives} == {r for _, r, _ in reference}
    for alt in decision.alternatives:
        assert alt.expected_kg == pytest.approx(
            min(kg for kg, r, _ in reference if r == alt.region), rel=1e-9, abs=1e-12
        )
    assert [a.expected_kg for a in decision.alternatives] == sorted(a.expected_kg for a in decision.alternatives)
    # Counterfactuals: "now" in the chosen region and the worst feasible region now.
    assert decision.now.expected_kg == pytest.approx(scored[(decision.chosen.region, 0)], rel=1e-9, abs=1e-12)
    assert decision.worst.expected_kg == pytest.approx(max(kg for kg, _, s in reference if s == 0), rel=1e-9, abs=1e-12)
    assert decision.chosen.wait_hours <= constraints.max_wait_hours + 1e-9


def test_waits_for_a_cleaner_hour_only_when_allowed():
    region = Region(name="a", zone="FRA")
    dip = [ForecastPoint(NOW + timedelta(hours=2), 60, 50.0)]
    signals = {"a": Signal("a", 400.0, "test", NOW, dip)}
    catalog = Catalog([region], "a")
    job = Job("adapt", 10.0, 1.0)
    assert choose(catalog, signals, Constraints(), job, NOW).chosen.wait_hours == 0
    shifted = choose(catalog, signals, Constraints(max_wait_hours=3), job, NOW)
    assert shifted.chosen.wait_hours == 2 and shifted.chosen.mean_g_per_kwh == 50.0
    assert "starting in 2.00 h" in shifted.reason
    # A deadline of 2.5 h leaves starts up to 1.5 h: half the dip at best.
    tight = choose(catalog, signals, Constraints(max_wait_hours=3, deadline_hours=2.5), job, NOW)
    assert tight.chosen.wait_hours == 1.5 and tight.chosen.mean_g_per_kwh == pytest.approx(225.0)


def test_constraints_exclude_regions_and_say_why():
    catalog = load_catalog()
    decision = select_region(
        catalog,
        StaticProvider(),
        Constraints(gpu_type="nvidia-h100-80gb", gpu_count=48, required_tags=["residency-us"]),
        Job("pretrain", 20, 2),
        NOW,
    )
    assert decision.chosen.region == "us-central1"  # the only US region with 48 H100s
    assert decision.node_selector == {REGION_LABEL: "us-central1"}
    assert "has 0" in decision.infeasible["us-west1"] and "has 32" in decision.infeasible["europe-north1"]
    with pytest.raises(GreenfmError, match="no region"):
        select_region(catalog, StaticProvider(), Constraints(gpu_type="tpu-v5"), Job("pretrain", 1, 1), NOW)


def test_default_catalog_picks_the_cleanest_grid():
    decision = select_region(load_catalog(), StaticProvider(), Constraints(), Job("curate", 1, 0.25), NOW)
    assert decision.chosen.region == "northamerica-northeast1"  # 2 g/kWh in codecarbon's GCP table
    assert decision.default.region == "us-central1" and decision.worst.region == "europe-central2"


def test_catalog_errors_are_user_errors(tmp_path):
    with pytest.raises(GreenfmError, match="non-empty 'regions'"):
        parse_catalog("regions: []")
    with pytest.raises(GreenfmError, match="unknown keys: gpu"):
        parse_catalog("regions:\n  - {name: a, zone: FRA, gpu: 1}")
    with pytest.raises(GreenfmError, match="no region named"):
        parse_catalog("default_region: b\nregions:\n  - {name: a, zone: FRA}")
    path = tmp_path / "c.yaml"
    path.write_text("regions:\n  - {name: a, zone: SWE/SE3, gpus: {h100: '2'}}\n")
    catalog = load_catalog(path)
    assert catalog.default_region == "a" and catalog.regions[0].gpus == {"h100": 2}
    assert catalog.regions[0].location().region == "SE3"  # codecarbon's key for the bidding zone
    assert load_catalog(path.read_text()).regions[0].name == "a"  # YAML text works too (pipeline parameter)
