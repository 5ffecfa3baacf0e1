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
    # Energy to train one task model from scratch, for the amortization; None: estimated (see break_even).
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
    known = assumptions.social_benefit_usd is not None and assumptions.other_costs_usd is not None
    value = (
        (assumptions.social_benefit_usd - energy_cost - carbon_cost - assumptions.other_costs_usd) if known else None
    )
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


def break_even(pretrain_kwh: float, adapt_kwh: float, scratch_task_kwh: float) -> float | None:
    """Adaptations N after which pretrain once + N adaptations uses less energy than N task models from scratch:
    pretrain + N·adapt < N·scratch  ⇔  N > pretrain / (scratch − adapt). None when adapting is never cheaper."""
    if scratch_task_kwh <= adapt_kwh:
        return None
    return pretrain_kwh / (scratch_task_kwh - adapt_kwh)


def scratch_estimate(adapt_kwh: float, adapt_steps: int, pretrain_steps: int) -> float:
    """Without a measured from-scratch run: a task model trained from scratch needs the pretraining step budget,
    at the measured energy per adaptation step (same model, same batch)."""
    return adapt_kwh / max(1, adapt_steps) * pretrain_steps


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
