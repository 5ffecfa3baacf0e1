"""Costs and context for the carbon statement: the CRFM value framework, amortization over adaptations, the EU AI
Act compute threshold, and plain-language equivalents. Every default is overridable and carries its source."""

from __future__ import annotations

from dataclasses import asdict, dataclass

EU_SYSTEMIC_RISK_FLOPS = 1e25  # EU AI Act art. 51(2): presumed systemic risk above 10^25 training FLOPs


@dataclass
class CostAssumptions:
    # CRFM "On the Opportunities and Risks of Foundation Models" §5.3: EPA 2017 upper-bound social cost of carbon
    # (2007 USD) and the US residential electricity price of April 2021.
    social_cost_usd_per_t: float = 105.0
    energy_usd_per_kwh: float = 0.1376
    # S (social benefit) and O (other second-order costs) cannot be measured by a pipeline: user inputs.
    social_benefit_usd: float | None = None
    other_costs_usd: float | None = None
    # Energy to train one task model from scratch, for the amortization; None: measured or estimated.
    scratch_task_kwh: float | None = None

    @classmethod
    def from_params(
        cls,
        social_cost_usd_per_t: float,
        energy_usd_per_kwh: float,
        social_benefit_usd: str = "",
        other_costs_usd: str = "",
        scratch_task_kwh: str = "",
    ) -> CostAssumptions:
        """From the pipeline's parameters: the user estimates are text, empty meaning not given."""

        def optional(text: str) -> float | None:
            return float(text) if text.strip() else None

        return cls(
            social_cost_usd_per_t,
            energy_usd_per_kwh,
            optional(social_benefit_usd),
            optional(other_costs_usd),
            optional(scratch_task_kwh),
        )


@dataclass
class Equivalent:
    label: str
    kg_per_unit: float
    source: str


# US EPA Greenhouse Gas Equivalencies Calculator (2024 update): per-unit emission factors.
EQUIVALENTS = [
    Equivalent(
        "miles driven by an average gasoline passenger car",
        0.393,
        "US EPA GHG Equivalencies Calculator: 3.93×10⁻⁴ t CO2e/mile",
    ),
    Equivalent("smartphones charged", 0.0124, "US EPA GHG Equivalencies Calculator: 1.24×10⁻⁵ t CO2e/charge"),
]


def usd(value: float) -> str:
    """Dollars readable at any scale: cents for real money, significant digits for a laptop run's fractions."""
    return f"${value:,.2f}" if abs(value) >= 100 else f"${value:.4g}"


def crfm_value(total_kwh: float, total_kg: float, assumptions: CostAssumptions) -> dict:
    """V(M) = S − C − E − O with C = kWh × $/kWh (energy) and E = t CO2e × $/t (social cost of carbon)."""
    tonnes = total_kg / 1000.0
    energy_cost = total_kwh * assumptions.energy_usd_per_kwh
    carbon_cost = tonnes * assumptions.social_cost_usd_per_t
    benefit, other = assumptions.social_benefit_usd, assumptions.other_costs_usd
    value = benefit - energy_cost - carbon_cost - other if benefit is not None and other is not None else None
    return {
        "energy_kwh": total_kwh,
        "energy_usd_per_kwh": assumptions.energy_usd_per_kwh,
        "C_energy_usd": energy_cost,
        "tonnes_co2e": tonnes,
        "social_cost_usd_per_t": assumptions.social_cost_usd_per_t,
        "E_carbon_usd": carbon_cost,
        "S_social_benefit_usd": assumptions.social_benefit_usd,
        "O_other_costs_usd": assumptions.other_costs_usd,
        "V_usd": value,
        "assumptions": asdict(assumptions),
    }


def break_even(pretrain: float, adapt: float, scratch: float) -> float | None:
    """Uses N after which pretrain once + N adaptations emits less than N task models from scratch (any one unit,
    kg CO2e here): pretrain + N·adapt < N·scratch  ⇔  N > pretrain / (scratch − adapt). None: never cheaper."""
    if scratch <= adapt:
        return None
    return pretrain / (scratch - adapt)


def scratch_flops_estimate(pretrain_flops: float, pretrain_steps: int, adapt_steps: int) -> float:
    """FLOPs of a task model trained from random initialization: every weight of the same model trained for the
    adaptation's steps, at the pretraining FLOPs per step (same model, batch and sequence length)."""
    return pretrain_flops / max(1, pretrain_steps) * adapt_steps


def eu_threshold(total_flops: float) -> dict:
    return {
        "total_training_flops": total_flops,
        "threshold_flops": EU_SYSTEMIC_RISK_FLOPS,
        "fraction_of_threshold": total_flops / EU_SYSTEMIC_RISK_FLOPS,
        "above_threshold": total_flops > EU_SYSTEMIC_RISK_FLOPS,
        "source": "EU AI Act (Regulation (EU) 2024/1689) art. 51(2)",
    }


def equivalents(total_kg: float) -> list[dict]:
    return [{"count": total_kg / e.kg_per_unit, **asdict(e)} for e in EQUIVALENTS]


@dataclass
class SocialCost:
    label: str
    usd_per_t: float
    source: str


# The sensitivity line: the same tonnes at each published social cost of carbon.
SOCIAL_COSTS = [
    SocialCost(
        "CRFM report default",
        105.0,
        "Bommasani et al. 2021, On the Opportunities and Risks of Foundation Models, §5.3 (EPA 2017 upper bound)",
    ),
    SocialCost(
        "US EPA 2023 central value",
        190.0,
        "US EPA 2023, Report on the Social Cost of Greenhouse Gases, Table ES-1: 2020 emissions, 2% near-term "
        "discount rate, 2020 USD",
    ),
]


def social_cost_sensitivity(total_kg: float, chosen_usd_per_t: float) -> list[dict]:
    """E = t × $/t at each published social cost of carbon, and at the run's own value when it is another."""
    rows = list(SOCIAL_COSTS)
    if chosen_usd_per_t not in {r.usd_per_t for r in rows}:
        rows.insert(0, SocialCost("this run's assumption", chosen_usd_per_t, "social_cost_usd_per_t parameter"))
    return [{**asdict(r), "tonnes_co2e": total_kg / 1000.0, "E_usd": total_kg / 1000.0 * r.usd_per_t} for r in rows]


@dataclass
class EmbodiedAssumptions:
    """Manufacturing emissions of the hardware, amortized over its service life. Defaults: Luccioni, Viguier &
    Ligozat 2023, Estimating the Carbon Footprint of BLOOM (JMLR 24(253)), §4.2: 150 kg CO2e per GPU and 2,500 kg
    per server (HPE Apollo 6500 Gen10 Plus life-cycle assessment), a 6-year life at 85% utilization."""

    gpu_kg: float = 150.0
    server_kg: float = 2500.0
    lifetime_years: float = 6.0
    utilization: float = 0.85
    source: str = "Luccioni, Viguier & Ligozat 2023 (BLOOM), §4.2"


def embodied_kg(wall_seconds: float, servers: int, gpus: float, a: EmbodiedAssumptions) -> float:
    """(GPUs × kg/GPU + servers × kg/server) × the share of their useful life the stage occupied."""
    useful_seconds = a.lifetime_years * 365.25 * 24 * 3600 * a.utilization
    return (gpus * a.gpu_kg + servers * a.server_kg) * wall_seconds / useful_seconds


# Relative half-widths of the uncertainty ranges: stated error budgets, not measurements (docs/carbon.md
# gives each one's reason). Energy per component by how it was obtained, intensity by where it came from.
POWER_UNCERTAINTY = {"intel_rapl": 0.10, "cpu_load": 0.40, "tdp": 0.40, "constant": 0.50, "unknown": 0.50}
GPU_UNCERTAINTY = 0.10  # NVML board power readings
RAM_UNCERTAINTY = 0.50  # codecarbon's per-GB power heuristic
INTENSITY_UNCERTAINTY = {"measured": 0.10, "forecast": 0.25, "annual-average": 0.40}


def uncertainty(
    cpu_kwh: float, gpu_kwh: float, ram_kwh: float, power_method: str, intensity_method: str, kg: float
) -> dict:
    """A kg CO2e range for one stage: energy components' errors added in quadrature (independent meters),
    then combined in quadrature with the intensity's."""
    parts = (
        (cpu_kwh, POWER_UNCERTAINTY.get(power_method, POWER_UNCERTAINTY["unknown"])),
        (gpu_kwh, GPU_UNCERTAINTY),
        (ram_kwh, RAM_UNCERTAINTY),
    )
    total = sum(kwh for kwh, _ in parts)
    energy_rel = (sum((kwh * u) ** 2 for kwh, u in parts) ** 0.5 / total) if total else 0.0
    intensity_rel = INTENSITY_UNCERTAINTY[intensity_method]
    rel = (energy_rel**2 + intensity_rel**2) ** 0.5
    return {
        "energy_relative": energy_rel,
        "intensity_relative": intensity_rel,
        "relative": rel,
        "low_kg": max(0.0, kg * (1 - rel)),
        "high_kg": kg * (1 + rel),
    }


AMORTIZATION_USES = (1, 10, 100, 1000)


def per_use(pretrain_kg: float, adapt_kg: float, scratch_kg: float, uses=AMORTIZATION_USES) -> list[dict]:
    """The CRFM framing: one pretraining shared by N uses costs pretrain/N + adapt per use, against a task
    model trained from scratch for each use."""
    return [
        {"uses": n, "foundation_kg_per_use": pretrain_kg / n + adapt_kg, "scratch_kg_per_use": scratch_kg} for n in uses
    ]
