"""The carbon impact statement of one run: energy and emissions per stage, how each number was obtained,
and totals that reconcile (kg CO2e = kWh × kg/kWh).

Each stage's operational emissions are its measured energy per interval × the intensity of those hours
(components/carbon/attribution.py); codecarbon's annual-average figure is kept beside it. Embodied emissions of
the hardware are reported separately, every stage has an uncertainty range, and the social cost of carbon has
a sensitivity line. Report dictionaries are keyed by stable names; display labels live in the renderers."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from components.carbon.attribution import METHODS, attribute
from components.carbon.costs import (
    CostAssumptions,
    EmbodiedAssumptions,
    break_even,
    crfm_value,
    embodied_kg,
    equivalents,
    eu_threshold,
    per_use,
    scratch_flops_estimate,
    social_cost_sensitivity,
    uncertainty,
    usd,
)
from components.carbon.providers import describe_warning, intensity_source
from components.carbon.records import EnergyRecord, PlacementDecision, tracker_rows
from components.carbon.submission import SubmissionPlacement

STATEMENT_MD = "carbon_statement.md"
STATEMENT_JSON = "carbon_statement.json"
STATEMENT_HTML = "carbon_statement.html"

_POWER_METHODS = {
    "intel_rapl": "RAPL energy counters (measured)",
    "cpu_load": "CPU load × TDP estimate (no RAPL counters readable here)",
    "tdp": "constant TDP estimate",
    "constant": "constant power estimate",
}


# Which placement decision applies to each stage: validate runs pinned to curation's region, evaluate to
# adaptation's (pipelines/dag.py gives them those node selectors).
PLACEMENT_OF = {"curate": "curate", "validate": "curate", "pretrain": "pretrain", "adapt": "adapt", "evaluate": "adapt"}


@dataclass
class StatementInputs:
    """What the statement needs besides the stages' energy records."""

    placements: list[PlacementDecision] = field(default_factory=list)
    assumptions: CostAssumptions = field(default_factory=CostAssumptions)
    total_training_flops: float = 0.0
    adapt_method: str = ""
    pretrain_steps: int = 0
    adapt_steps: int = 0
    scratch_record: EnergyRecord | None = None  # measured task model from random initialization, if one ran
    submission: SubmissionPlacement | None = None  # the cluster and start `greenfm submit` chose for the run
    embodied: EmbodiedAssumptions = field(default_factory=EmbodiedAssumptions)


def _scenario(name: str, record: dict, option: dict | None) -> dict | None:
    """What the stage's measured energy would have emitted under another placement (forecast basis)."""
    if option is None:
        return None
    it_kwh = record["energy_kwh"] / (record["pue"] or 1.0)  # codecarbon's energy includes the PUE
    kwh = it_kwh * option["pue"]
    return {
        "stage": record["stage"],
        "scenario": name,
        "region": option["region"],
        "start": option["start"],
        "energy_kwh": kwh,
        "g_per_kwh": option["mean_g_per_kwh"],
        "emissions_kg": kwh * option["mean_g_per_kwh"] / 1000.0,
    }


def counterfactuals(records: list[dict], placements: list[dict]) -> list[dict]:
    by_stage = {p["stage"]: p for p in placements}
    rows = []
    for record in records:
        placement = by_stage.get(record["stage"])
        if not placement:
            continue
        for name, key in (
            ("as placed", "chosen"),
            ("default region, now", "default"),
            ("worst feasible region, now", "worst"),
            ("chosen region, now (no time shift)", "now"),
        ):
            row = _scenario(name, record, placement[key])
            if row:
                row["basis"] = placement["basis"]
                rows.append(row)
    return rows


def submission_report(submission: SubmissionPlacement | None) -> dict | None:
    """The submission-time decision as the statement shows it: the chosen cluster and start, and every
    submittable region's best option with its cluster."""
    if submission is None:
        return None
    cluster_of = {region: host for host, regions in submission.clusters.items() for region in regions}
    return {
        "host": submission.host,
        "context": submission.context,
        "region": submission.region,
        "start": submission.decision.chosen.start,
        "wait_hours": submission.decision.chosen.wait_hours,
        "scheduled": submission.scheduled,
        "decided_at": submission.decided_at,
        "summary": submission.summary(),
        "options": [{**asdict(o), "cluster": cluster_of.get(o.region, "")} for o in submission.decision.alternatives],
        "infeasible": submission.decision.infeasible,
    }


def _submission_mitigations(submission: dict) -> list[dict]:
    clusters = {o["cluster"] for o in submission["options"]}
    return [
        {
            "mitigation": "cleanest cluster at submission",
            "applied": True,
            "detail": f"the whole run went to {submission['host']} (region {submission['region']}), "
            f"chosen among {len(clusters)} feasible cluster(s)",
        },
        {
            "mitigation": "time shift at submission",
            "applied": submission["scheduled"],
            "detail": (
                f"the run was created as a one-off KFP schedule starting {submission['start']}, "
                f"{submission['wait_hours']:.2f} h after submission (no pod waited)"
                if submission["scheduled"]
                else "started at submission (no forecast gain within max_wait_hours)"
            ),
        },
    ]


def mitigations(records: list[dict], placements: list[dict], inputs: StatementInputs) -> list[dict]:
    """Each mitigation the pipeline knows, whether it was applied in this run, and the evidence."""
    by_stage = {r["stage"]: r for r in records}
    submission = submission_report(inputs.submission)
    items = _submission_mitigations(submission) if submission else []
    if placements:
        moved = [p for p in placements if p["default"] and p["chosen"]["region"] != p["default"]["region"]]
        saved = sum(p["default"]["expected_kg"] - p["chosen"]["expected_kg"] for p in moved)
        items.append(
            {
                "mitigation": "low-carbon region",
                "applied": bool(moved),
                "detail": (
                    f"{len(moved)} of {len(placements)} placed stage(s) moved off the default region; "
                    f"expected saving {saved * 1000:.3f} g CO2e for the estimated job energy (measured: see counterfactuals)"
                    if moved
                    else "the default region was already the least-emitting feasible one"
                ),
            }
        )
        shifted = [p for p in placements if p["chosen"]["wait_hours"] > 0]
        items.append(
            {
                "mitigation": "time shift to a cleaner hour",
                "applied": bool(shifted),
                "detail": (
                    f"{len(shifted)} stage(s) delayed for a lower forecast intensity"
                    if shifted
                    else "no stage was delayed (no forecast gain within the allowed wait)"
                ),
            }
        )
    else:
        items.append({"mitigation": "low-carbon region", "applied": False, "detail": "no placement step ran"})
    pretrain = by_stage.get("pretrain")
    if pretrain:
        on_gpu = bool(pretrain["gpu_count"])
        items.append(
            {
                "mitigation": "mixed precision (bf16)",
                "applied": on_gpu,
                "detail": (
                    "pretraining ran under bf16 autocast on GPU"
                    if on_gpu
                    else "pretraining ran on CPU in fp32; bf16 autocast is used on CUDA only"
                ),
            }
        )
        items.append(
            {
                "mitigation": "early stop",
                "applied": False,
                "detail": f"pretraining runs its fixed budget of {inputs.pretrain_steps or 'train_steps'} steps",
            }
        )
    if inputs.adapt_method:
        light = inputs.adapt_method != "full"
        items.append(
            {
                "mitigation": "parameter-efficient adaptation (LoRA/probe) vs full fine-tune",
                "applied": light,
                "detail": f"adapt_method={inputs.adapt_method}"
                + (
                    ""
                    if light
                    else ": every weight trains; lora (the default), last-layer and the 'head' linear probe train a small fraction"
                ),
            }
        )
    curate = by_stage.get("curate")
    notes = (curate or {}).get("notes", {})
    if "dedup_removed_documents" in notes:
        removed = notes["dedup_removed_documents"]
        tokens = notes.get("tokens_per_document", 0.0) * removed
        items.append(
            {
                "mitigation": "deduplication",
                "applied": removed > 0,
                "detail": f"{removed} duplicate document(s) removed, ≈{tokens:.0f} tokens not trained on per epoch",
            }
        )
    return items


def stage_row(record: EnergyRecord, decision: PlacementDecision | None, embodied: EmbodiedAssumptions) -> dict:
    """One stage of the statement: the record, its emissions at the intensity of its hours, the annual-average
    figure codecarbon gave, embodied emissions, and an uncertainty range."""
    attribution = attribute(record, decision)
    data = record.to_json()
    data.pop("intervals")
    kg = attribution.emissions_kg
    return {
        **data,
        "emissions_kg": kg,
        "intensity_g_per_kwh": attribution.g_per_kwh,
        "intensity_method": attribution.method,
        "intensity_basis": attribution.basis,
        "intensity_source": attribution.source,
        "attribution_warnings": attribution.warnings,
        "intervals": attribution.intervals,
        "annual_average_kg": record.emissions_kg,
        "annual_average_source": intensity_source(record.location),
        "placed_by": decision.stage if decision else None,
        "cpu_power": _POWER_METHODS.get(record.cpu_power_method, record.cpu_power_method),
        "embodied_kg": embodied_kg(record.wall_seconds, max(1, record.nodes), record.gpu_count, embodied),
        "uncertainty": uncertainty(
            record.cpu_kwh, record.gpu_kwh, record.ram_kwh, record.cpu_power_method, attribution.method, kg
        ),
    }


def amortization(stages: list[dict], inputs: StatementInputs, decisions: dict[str, PlacementDecision]) -> dict | None:
    """Per-use cost = pretrain/N + adapt for several N, in kg CO2e (stages may run on different grids), against a
    task model trained from scratch: measured when that arm ran, else user-given kWh, else estimated by FLOPs."""
    by_stage = {s["stage"]: s for s in stages}
    if "pretrain" not in by_stage or "adapt" not in by_stage:
        return None
    pretrain, adapt = by_stage["pretrain"], by_stage["adapt"]
    adapt_g = adapt["intensity_g_per_kwh"] or 0.0
    scratch_flops = None
    if inputs.scratch_record is not None:
        scratch = stage_row(inputs.scratch_record, decisions.get("adapt"), inputs.embodied)
        scratch_kwh, scratch_kg = scratch["energy_kwh"], scratch["emissions_kg"]
        basis = f"measured: a task model trained from random initialization ({scratch['intensity_method']} intensity)"
    elif inputs.assumptions.scratch_task_kwh is not None:
        scratch_kwh = inputs.assumptions.scratch_task_kwh
        scratch_kg = scratch_kwh * adapt_g / 1000.0
        basis = "user input (kWh), at the adaptation's intensity"
    elif inputs.total_training_flops and inputs.pretrain_steps:
        scratch_flops = scratch_flops_estimate(inputs.total_training_flops, inputs.pretrain_steps, inputs.adapt_steps)
        scratch_kwh = pretrain["energy_kwh"] / inputs.total_training_flops * scratch_flops
        scratch_kg = scratch_kwh * adapt_g / 1000.0
        basis = (
            f"estimate by FLOPs: {scratch_flops:.3e} FLOPs (full training of the same model for {inputs.adapt_steps} "
            "steps from random initialization) × pretraining's measured kWh per FLOP, at the adaptation's intensity"
        )
    else:
        return None
    return {
        "pretrain_kwh": pretrain["energy_kwh"],
        "adapt_kwh": adapt["energy_kwh"],
        "pretrain_kg": pretrain["emissions_kg"],
        "adapt_kg": adapt["emissions_kg"],
        "scratch_task_kwh": scratch_kwh,
        "scratch_task_kg": scratch_kg,
        "scratch_flops": scratch_flops,
        "scratch_basis": basis,
        "scratch_measured": inputs.scratch_record is not None,
        "per_use": per_use(pretrain["emissions_kg"], adapt["emissions_kg"], scratch_kg),
        "break_even_uses": break_even(pretrain["emissions_kg"], adapt["emissions_kg"], scratch_kg),
    }


def build_statement(
    records: list[EnergyRecord], run: dict | None = None, inputs: StatementInputs | None = None
) -> dict:
    inputs = inputs or StatementInputs()
    decisions = {d.stage: d for d in inputs.placements}
    placements = [d.to_json() for d in inputs.placements]
    stages = [stage_row(r, decisions.get(PLACEMENT_OF.get(r.stage, "")), inputs.embodied) for r in records]
    for s in stages:
        s["reconciles"] = stage_reconciles(s)
    total_kwh = sum(s["energy_kwh"] for s in stages)
    total_kg = sum(s["emissions_kg"] for s in stages)
    return {
        "run": run or {},
        "stages": stages,
        "total_energy_kwh": total_kwh,
        "total_emissions_kg": total_kg,
        "total_annual_average_kg": sum(s["annual_average_kg"] for s in stages),
        "total_embodied_kg": sum(s["embodied_kg"] for s in stages),
        "total_low_kg": sum(s["uncertainty"]["low_kg"] for s in stages),
        "total_high_kg": sum(s["uncertainty"]["high_kg"] for s in stages),
        "embodied_assumptions": asdict(inputs.embodied),
        "total_wall_seconds": sum(s["wall_seconds"] for s in stages),
        "failed_stages": [s["stage"] for s in stages if s["failed"]],
        "submission": submission_report(inputs.submission),
        "placements": placements,
        "warnings": [w for p in placements for w in p.get("warnings", [])],
        "counterfactuals": counterfactuals(stages, placements),
        "mitigations": mitigations(stages, placements, inputs),
        "costs": crfm_value(total_kwh, total_kg, inputs.assumptions),
        "social_cost_sensitivity": social_cost_sensitivity(total_kg, inputs.assumptions.social_cost_usd_per_t),
        "amortization": amortization(stages, inputs, decisions),
        "compute": eu_threshold(inputs.total_training_flops),
        "equivalents": equivalents(total_kg),
    }


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 + 1e-9 * max(abs(a), abs(b))


def stage_reconciles(stage: dict) -> bool:
    """For one stage row: Σ interval kWh = kWh, each interval's kWh × g/kWh / 1000 = its kg, Σ interval kg = kg,
    and kWh × effective g/kWh / 1000 = kg (the Markdown flag and `reconcile` use the same rule)."""
    rows = stage["intervals"]
    if not stage["energy_kwh"]:
        return True
    return (
        _close(sum(r["kwh"] for r in rows), stage["energy_kwh"])
        and all(_close(r["kwh"] * r["g_per_kwh"] / 1000.0, r["kg"]) for r in rows)
        and _close(sum(r["kg"] for r in rows), stage["emissions_kg"])
        and _close(stage["energy_kwh"] * stage["intensity_g_per_kwh"] / 1000.0, stage["emissions_kg"])
    )


def reconcile(statement: dict) -> list[str]:
    """Every derived number recomputed from its inputs; returns what does not add up (empty: all reconcile)."""
    problems = []
    for s in statement["stages"]:
        if not stage_reconciles(s):
            problems.append(f"stage {s['stage']}: kWh × g/kWh ≠ kg")
        parts = s["cpu_kwh"] + s["gpu_kwh"] + s["ram_kwh"]
        if not _close(parts, s["energy_kwh"]) and abs(parts - s["energy_kwh"] / (s["pue"] or 1.0)) > 1e-9:
            problems.append(f"stage {s['stage']}: CPU + GPU + RAM ≠ total energy")
    if not _close(sum(s["energy_kwh"] for s in statement["stages"]), statement["total_energy_kwh"]):
        problems.append("total kWh ≠ sum of stages")
    if not _close(sum(s["emissions_kg"] for s in statement["stages"]), statement["total_emissions_kg"]):
        problems.append("total kg ≠ sum of stages")
    for row in statement["counterfactuals"]:
        if not _close(row["energy_kwh"] * row["g_per_kwh"] / 1000.0, row["emissions_kg"]):
            problems.append(f"counterfactual {row['stage']} / {row['scenario']}: kWh × g/kWh ≠ kg")
    costs = statement["costs"]
    if not _close(costs["tonnes_co2e"], statement["total_emissions_kg"] / 1000.0):
        problems.append("tonnes ≠ kg / 1000")
    if not _close(costs["E_carbon_usd"], costs["tonnes_co2e"] * costs["social_cost_usd_per_t"]):
        problems.append("E ≠ t × $/t")
    if not _close(costs["C_energy_usd"], costs["energy_kwh"] * costs["energy_usd_per_kwh"]):
        problems.append("C ≠ kWh × $/kWh")
    if costs["V_usd"] is not None and not _close(
        costs["V_usd"],
        costs["S_social_benefit_usd"] - costs["C_energy_usd"] - costs["E_carbon_usd"] - costs["O_other_costs_usd"],
    ):
        problems.append("V ≠ S − C − E − O")
    if not _close(sum(s["embodied_kg"] for s in statement["stages"]), statement["total_embodied_kg"]):
        problems.append("total embodied kg ≠ sum of stages")
    for row in statement["social_cost_sensitivity"]:
        if not _close(row["E_usd"], row["tonnes_co2e"] * row["usd_per_t"]):
            problems.append(f"social cost {row['label']}: E ≠ t × $/t")
    a = statement["amortization"]
    for row in (a or {}).get("per_use", []):
        if not _close(row["foundation_kg_per_use"], a["pretrain_kg"] / row["uses"] + a["adapt_kg"]):
            problems.append(f"amortization N={row['uses']}: per-use ≠ pretrain/N + adapt")
    for e in statement["equivalents"]:
        if not _close(e["count"] * e["kg_per_unit"], statement["total_emissions_kg"]):
            problems.append(f"equivalent {e['label']}: count × kg/unit ≠ total kg")
    return problems


def render_markdown(statement: dict) -> str:
    run = statement["run"]
    lines = ["# Carbon impact statement", ""]
    if run:
        lines += [f"- {key.replace('_', ' ')}: {value}" for key, value in run.items()] + [""]
    lines += [
        f"**Total: {statement['total_energy_kwh'] * 1000:.3f} Wh, "
        f"{statement['total_emissions_kg'] * 1000:.3f} g CO2e operational** "
        f"(range {statement['total_low_kg'] * 1000:.3f}–{statement['total_high_kg'] * 1000:.3f} g) over "
        f"{statement['total_wall_seconds']:.0f} s of measured stages; embodied (hardware manufacturing, reported "
        f"separately) {statement['total_embodied_kg'] * 1000:.3f} g CO2e.",
        "",
        "| stage | wall s | energy Wh (CPU / GPU / RAM) | intensity g/kWh (basis, method) | g CO2e (range) | "
        "annual-average g | embodied g | location |",
        "| --- | ---: | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for s in statement["stages"]:
        intensity = "n/a" if s["intensity_g_per_kwh"] is None else f"{s['intensity_g_per_kwh']:.0f}"
        u = s["uncertainty"]
        lines.append(
            f"| {s['stage']}{' (failed)' if s['failed'] else ''} | {s['wall_seconds']:.1f} | "
            f"{s['energy_kwh'] * 1000:.4f} ({s['cpu_kwh'] * 1000:.4f} / {s['gpu_kwh'] * 1000:.4f} / "
            f"{s['ram_kwh'] * 1000:.4f}) | {intensity} ({s['intensity_basis']}, {METHODS[s['intensity_method']]}) | "
            f"{s['emissions_kg'] * 1000:.4f} ({u['low_kg'] * 1000:.4f}–{u['high_kg'] * 1000:.4f}) | "
            f"{s['annual_average_kg'] * 1000:.4f} | {s['embodied_kg'] * 1000:.4f} | {s['location']} |"
        )
    lines += ["", "## How these numbers were obtained", ""]
    seen = set()
    for s in statement["stages"]:
        key = (s["cpu_model"], s["cpu_power"], s["gpu_model"], s["location"], s["pue"])
        if key in seen:
            continue
        seen.add(key)
        gpu = f"{s['gpu_count']} × {s['gpu_model']} (NVML)" if s["gpu_count"] else "no GPU"
        lines.append(
            f"- Hardware: {s['cpu_count']} × {s['cpu_model']} CPU, {gpu}. CPU power: {s['cpu_power']}. "
            f"RAM power: codecarbon's per-GB estimate. PUE {s['pue']}."
        )
        where = (
            f"the region the {s['placed_by']} placement chose from the region catalog (pinned there)"
            if s["placed_by"]
            else "configured, not placed by this run"
        )
        lines.append(f"- Location {s['location']} ({s['country']}): {where}. Tracker scope: {s['scope']}.")
    for s in statement["stages"]:
        rows = tracker_rows(s)
        if len(rows) > 1:
            summed = "; ".join(
                f"{t['stage']} on {t['host'] or 'an unknown node'} ({t['mode'] or 'left out'}, {t['kwh'] * 1000:.4f} Wh"
                + ("" if t["counted"] else f", not counted: {t['why']}")
                + ")"
                for t in rows
            )
            lines.append(f"- {s['stage']} is the sum of {sum(t['counted'] for t in rows)} tracker(s): {summed}.")
    for s in statement["stages"]:
        lines.append(
            f"- {s['stage']} emissions: {len(s['intervals'])} interval(s) × {METHODS[s['intensity_method']]} "
            f"({s['intensity_basis']}; {s['intensity_source']}). Annual-average figure beside it: "
            f"{s['annual_average_source']}."
        )
        lines += [f"  - warning: {w}" for w in s["attribution_warnings"]]
    version = statement["stages"][0]["codecarbon_version"] if statement["stages"] else "?"
    lines += [
        f"- Tool: codecarbon {version}, offline tracker; modes: "
        f"{', '.join(sorted({s['tracking_mode'] for s in statement['stages']}))}.",
        "- Every stage row reconciles: g CO2e = Σ interval Wh × g/kWh / 1000"
        + ("." if all(s["reconciles"] for s in statement["stages"]) else " — **a row does not reconcile**."),
        "- Offsets: none are counted or netted.",
    ]
    if statement["failed_stages"]:
        lines.append(f"- Failed stages (their energy is included): {', '.join(statement['failed_stages'])}.")
    return "\n".join(lines + _markdown_context(statement)) + "\n"


def _money(value: float | None, what: str) -> str:
    return usd(value) if value is not None else f"not given ({what}: a user input)"


def _markdown_context(statement: dict) -> list[str]:
    """Placement, counterfactuals, mitigations, costs, amortization, compute and equivalents."""
    lines: list[str] = []
    if statement.get("submission"):
        sub = statement["submission"]
        lines += [
            "",
            "## Submission",
            "",
            f"The run was {sub['summary']}",
            "",
            "| region | cluster (KFP API) | best start | g/kWh (expected) | kg CO2e (expected) |",
            "| --- | --- | --- | ---: | ---: |",
        ]
        lines += [
            f"| {o['region']} | {o['cluster']} | {o['start']} | {o['mean_g_per_kwh']:.1f} | {o['expected_kg']:.4g} |"
            for o in sub["options"]
        ]
        if sub["infeasible"]:
            lines += ["", "Excluded: " + "; ".join(f"{k}: {v}" for k, v in sub["infeasible"].items()) + "."]
    if statement["placements"]:
        lines += [
            "",
            "## Placement",
            "",
            "| stage | region | start | g/kWh (expected) | basis | source | why |",
            "| --- | --- | --- | ---: | --- | --- | --- |",
        ]
        for p in statement["placements"]:
            c = p["chosen"]
            lines.append(
                f"| {p['stage']} | {c['region']} | {c['start']} | {c['mean_g_per_kwh']:.1f} | {p['basis']} | "
                f"{c['source']} | {p['reason']} |"
            )
        lines += ["", "Alternatives considered (best start per feasible region):", ""]
        for p in statement["placements"]:
            alts = ", ".join(f"{a['region']} {a['expected_kg'] * 1000:.3f} g" for a in p["alternatives"])
            excluded = "; ".join(f"{k}: {v}" for k, v in p["infeasible"].items()) or "none"
            lines.append(f"- {p['stage']}: {alts}. Excluded: {excluded}.")
    if statement["warnings"]:
        lines += ["", "## Warnings", ""]
        lines += [f"- {describe_warning(w)}." for w in statement["warnings"]]
    if statement["counterfactuals"]:
        lines += [
            "",
            "## Counterfactuals",
            "",
            "The measured energy of each placed stage under other placements, at the intensities placement expected.",
            "",
            "| stage | scenario | region | kWh | g/kWh (basis) | g CO2e |",
            "| --- | --- | --- | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {r['stage']} | {r['scenario']} | {r['region']} | {r['energy_kwh']:.6f} | {r['g_per_kwh']:.1f} "
            f"({r['basis']}) | {r['emissions_kg'] * 1000:.4f} |"
            for r in statement["counterfactuals"]
        ]
    lines += ["", "## Mitigations", ""]
    lines += [f"- [{'x' if m['applied'] else ' '}] {m['mitigation']}: {m['detail']}" for m in statement["mitigations"]]
    c, e = statement["costs"], statement["embodied_assumptions"]
    lines += [
        "",
        "## Costs (CRFM framework: V(M) = S − C − E − O)",
        "",
        f"- C, energy: {c['energy_kwh']:.6f} kWh × ${c['energy_usd_per_kwh']}/kWh = {usd(c['C_energy_usd'])}",
        f"- E, social cost of carbon: {c['tonnes_co2e']:.4g} t × ${c['social_cost_usd_per_t']}/t = {usd(c['E_carbon_usd'])}",
        f"- S, social benefit: {_money(c['S_social_benefit_usd'], 'S')}; O, other costs: {_money(c['O_other_costs_usd'], 'O')}",
        f"- V(M): {_money(c['V_usd'], 'needs S and O')}",
        "- Defaults from the CRFM report §5.3 (EPA 2017 upper-bound social cost, US residential price Apr 2021); overridable.",
        "",
        "### Social cost of carbon: sensitivity",
        "",
        *[
            f"- {r['label']}: {r['tonnes_co2e']:.4g} t × ${r['usd_per_t']:g}/t = {usd(r['E_usd'])} ({r['source']})"
            for r in statement["social_cost_sensitivity"]
        ],
        "",
        "## Embodied emissions (hardware manufacturing, not in the operational total)",
        "",
        f"- {statement['total_embodied_kg'] * 1000:.4f} g CO2e: {e['gpu_kg']:g} kg per GPU and {e['server_kg']:g} kg "
        f"per server, amortized over {e['lifetime_years']:g} years at {e['utilization']:.0%} utilization, charged for "
        f"each stage's wall time ({e['source']}).",
    ]
    a = statement["amortization"]
    if a:
        n = a["break_even_uses"]
        lines += [
            "",
            "## Amortization (CRFM: per-use cost = pretrain/N + adapt)",
            "",
            f"- Pretraining {a['pretrain_kg'] * 1000:.4f} g CO2e, one adaptation {a['adapt_kg'] * 1000:.4f} g, one task "
            f"model from scratch {a['scratch_task_kg'] * 1000:.4f} g ({a['scratch_basis']}).",
            "",
            "| uses N | foundation model g CO2e per use | from scratch g CO2e per use |",
            "| ---: | ---: | ---: |",
            *[
                f"| {r['uses']} | {r['foundation_kg_per_use'] * 1000:.4f} | {r['scratch_kg_per_use'] * 1000:.4f} |"
                for r in a["per_use"]
            ],
            "",
            f"- Break-even: {'never (adapting emits as much as training from scratch)' if n is None else f'{n:.2f} uses'}"
            " (pretrain + N·adapt < N·scratch).",
        ]
    f = statement["compute"]
    lines += [
        "",
        "## Compute",
        "",
        f"- Total training compute {f['total_training_flops']:.3e} FLOPs = {f['fraction_of_threshold']:.3e} of the "
        f"EU 10^25 FLOP systemic-risk threshold ({'above' if f['above_threshold'] else 'below'}; {f['source']}).",
    ]
    lines += ["", "## In everyday terms", ""]
    lines += [f"- {e['count']:.4g} {e['label']} (source: {e['source']})" for e in statement["equivalents"]]
    return lines


def write_statement(
    records: list[EnergyRecord], out_dir: str | Path, run: dict | None = None, inputs: StatementInputs | None = None
) -> dict:
    from components.carbon.html import render_html

    statement = build_statement(records, run, inputs)
    statement["reconciliation_problems"] = reconcile(statement)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / STATEMENT_JSON).write_text(json.dumps(statement, indent=2))
    (out / STATEMENT_MD).write_text(render_markdown(statement))
    (out / STATEMENT_HTML).write_text(render_html(statement))
    return statement
