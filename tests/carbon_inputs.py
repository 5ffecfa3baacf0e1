"""Energy records and statement inputs of a whole run, as the carbon tests build them: a record the tracker
would write, a placement by the shipped catalog, and one run's worth of both (the `run_inputs` fixture)."""

from __future__ import annotations

from datetime import UTC, datetime

from components.carbon.catalog import load_catalog
from components.carbon.costs import CostAssumptions
from components.carbon.placement import Constraints, Job, select_region
from components.carbon.providers import StaticProvider
from components.carbon.records import EnergyRecord, Interval, PlacementDecision
from components.carbon.statement import StatementInputs

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def record(
    stage: str, cpu: float, gpu: float, ram: float, g_per_kwh: float, location: str, pue: float = 1.1, gpus: int = 0
) -> EnergyRecord:
    """A stage's record as the tracker writes it: two 30 s intervals (a third and two thirds of the energy)."""
    energy = (cpu + gpu + ram) * pue
    return EnergyRecord(
        **{
            "stage": stage,
            "started_at": "2026-03-01T12:00:00+00:00",
            "ended_at": "2026-03-01T12:01:00+00:00",
            "intervals": [
                Interval("2026-03-01T12:00:00+00:00", "2026-03-01T12:00:30+00:00", energy / 3),
                Interval("2026-03-01T12:00:30+00:00", "2026-03-01T12:01:00+00:00", energy * 2 / 3),
            ],
            "wall_seconds": 60.0,
            "failed": False,
            "energy_kwh": energy,
            "cpu_kwh": cpu,
            "gpu_kwh": gpu,
            "ram_kwh": ram,
            "emissions_kg": energy * g_per_kwh / 1000.0,
            "intensity_g_per_kwh": g_per_kwh,
            "location": location,
            "country": "Canada",
            "pue": pue,
            "cpu_model": "Test CPU",
            "cpu_count": 2,
            "gpu_model": "H100" if gpus else "",
            "gpu_count": gpus,
            "cpu_power_method": "cpu_load",
            "tracking_mode": "machine",
            "codecarbon_version": "3.3.2",
        }
    )


def placement(stage: str, kwh: float) -> PlacementDecision:
    return select_region(load_catalog(), StaticProvider(), Constraints(), Job(stage, kwh, 1.0), NOW)


def run_inputs() -> tuple[list[EnergyRecord], StatementInputs]:
    """Five stages' records on one grid and the placements of the three heavy ones."""
    curate = record("curate", 0.01, 0.0, 0.002, 2.0, "gcp:northamerica-northeast1")
    curate.notes = {"dedup_removed_documents": 12, "tokens_per_document": 250.0}
    records = [
        curate,
        record("validate", 0.001, 0.0, 0.0005, 2.0, "gcp:northamerica-northeast1"),
        record("pretrain", 0.2, 1.5, 0.05, 2.0, "gcp:northamerica-northeast1", gpus=8),
        record("adapt", 0.02, 0.1, 0.005, 2.0, "gcp:northamerica-northeast1", gpus=1),
        record("evaluate", 0.005, 0.0, 0.001, 2.0, "gcp:northamerica-northeast1"),
    ]
    inputs = StatementInputs(
        placements=[placement("curate", 0.012), placement("pretrain", 1.75), placement("adapt", 0.125)],
        assumptions=CostAssumptions(social_benefit_usd=1000.0, other_costs_usd=50.0),
        total_training_flops=3.2e21,
        adapt_method="full",
        pretrain_steps=10_000,
        adapt_steps=500,
    )
    return records, inputs
