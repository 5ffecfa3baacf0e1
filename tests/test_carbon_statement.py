"""The carbon statement: every number reconciles, costs follow the CRFM framework, amortization and the EU
threshold are right, and the rendered Markdown/HTML carry them."""

from __future__ import annotations

import json

import pytest

from components.carbon.catalog import load_catalog
from components.carbon.costs import CostAssumptions, break_even, scratch_flops_estimate
from components.carbon.placement import Constraints, Job, select_region
from components.carbon.statement import (
    STATEMENT_HTML,
    STATEMENT_JSON,
    STATEMENT_MD,
    build_statement,
    reconcile,
    write_statement,
)
from components.carbon.tracking import aggregate_ranks
from tests.carbon_inputs import NOW, record


def test_every_number_reconciles(run_inputs):
    records, inputs = run_inputs
    statement = build_statement(records, {"outcome": "completed"}, inputs)
    assert reconcile(statement) == []
    kwh = sum(r.energy_kwh for r in records)
    kg = sum(r.emissions_kg for r in records)  # static placement: the annual average is the attributed value
    costs = statement["costs"]
    assert statement["total_energy_kwh"] == pytest.approx(kwh) and statement["total_emissions_kg"] == pytest.approx(kg)
    assert costs["C_energy_usd"] == pytest.approx(kwh * 0.1376)
    assert costs["E_carbon_usd"] == pytest.approx(kg / 1000 * 105)
    assert costs["V_usd"] == pytest.approx(1000 - kwh * 0.1376 - kg / 1000 * 105 - 50)
    # Counterfactuals: the measured IT energy at each alternative's PUE and intensity.
    rows = {(r["stage"], r["scenario"]): r for r in statement["counterfactuals"]}
    worst = rows[("pretrain", "worst feasible region, now")]
    assert worst["region"] == "europe-central2"
    assert worst["emissions_kg"] == pytest.approx(1.75 * 1.1 * 723 / 1000)
    assert rows[("pretrain", "as placed")]["g_per_kwh"] == 2.0


def test_reconciliation_catches_a_wrong_number(run_inputs):
    records, inputs = run_inputs
    for corrupt in (
        lambda s: s["stages"][2].update(emissions_kg=s["stages"][2]["emissions_kg"] * 1.01),
        lambda s: s.update(total_energy_kwh=s["total_energy_kwh"] + 1e-3),
        lambda s: s["costs"].update(E_carbon_usd=s["costs"]["E_carbon_usd"] + 0.01),
        lambda s: s["costs"].update(C_energy_usd=s["costs"]["C_energy_usd"] * 2),
        lambda s: s["counterfactuals"][0].update(emissions_kg=1.0),
        lambda s: s["equivalents"][0].update(count=s["equivalents"][0]["count"] + 1),
        lambda s: s["costs"].update(V_usd=0.0),
    ):
        statement = build_statement(records, None, inputs)
        corrupt(statement)
        assert reconcile(statement), "a corrupted number went unnoticed"


def test_costs_without_s_and_o_leave_v_open(run_inputs):
    records, inputs = run_inputs
    inputs.assumptions = CostAssumptions(social_cost_usd_per_t=190.0, energy_usd_per_kwh=0.2)
    statement = build_statement(records, None, inputs)
    assert statement["costs"]["V_usd"] is None
    assert statement["costs"]["E_carbon_usd"] == pytest.approx(statement["total_emissions_kg"] / 1000 * 190)
    assert reconcile(statement) == []


def test_amortization_break_even():
    assert break_even(pretrain=100.0, adapt=1.0, scratch=6.0) == pytest.approx(20.0)
    assert break_even(100.0, 5.0, 5.0) is None  # adapting is no cheaper than scratch: never breaks even
    # A 1e6-FLOP, 100-step pretraining: 1e4 FLOPs per step, so 30 from-scratch steps cost 3e5 FLOPs.
    assert scratch_flops_estimate(1e6, pretrain_steps=100, adapt_steps=30) == pytest.approx(3e5)


def test_statement_amortization_mitigations_threshold(run_inputs):
    records, inputs = run_inputs
    statement = build_statement(records, None, inputs)
    a = statement["amortization"]
    pretrain_kg, adapt_kg = records[2].emissions_kg, records[3].emissions_kg  # at 2 g/kWh
    # FLOPs estimate: 500 of the 10,000 pretraining steps' FLOPs, at pretraining's kWh per FLOP, on adapt's grid.
    scratch_kg = records[2].energy_kwh * 500 / 10_000 * 2.0 / 1000
    assert "estimate by FLOPs" in a["scratch_basis"] and a["scratch_flops"] == pytest.approx(3.2e21 / 20)
    assert a["scratch_task_kg"] == pytest.approx(scratch_kg)
    # This full fine-tune costs more per step than pretraining did: from scratch is cheaper, never breaks even.
    assert scratch_kg < adapt_kg and a["break_even_uses"] is None
    per_use = {r["uses"]: r["foundation_kg_per_use"] for r in a["per_use"]}
    assert per_use[10] == pytest.approx(pretrain_kg / 10 + adapt_kg) and set(per_use) == {1, 10, 100, 1000}
    assert statement["compute"]["fraction_of_threshold"] == pytest.approx(3.2e-4)
    assert statement["compute"]["above_threshold"] is False
    applied = {m["mitigation"]: m["applied"] for m in statement["mitigations"]}
    assert applied["low-carbon region"] is True  # the default us-central1 is not the cleanest
    assert applied["mixed precision (bf16)"] is True  # pretraining ran on GPUs
    assert applied["parameter-efficient adaptation (LoRA/probe) vs full fine-tune"] is False
    assert applied["deduplication"] is True and applied["early stop"] is False
    dedup = next(m for m in statement["mitigations"] if m["mitigation"] == "deduplication")
    assert "12 duplicate" in dedup["detail"] and "3000 tokens" in dedup["detail"]


def test_warnings_from_placement_reach_the_statement(run_inputs):
    from components.carbon.providers import make_provider

    records, inputs = run_inputs
    decision = select_region(
        load_catalog(), make_provider("electricitymaps", "http://127.0.0.1:9"), Constraints(), Job("adapt", 1, 1), NOW
    )
    inputs.placements[2] = decision
    statement = build_statement(records, None, inputs)
    assert len(statement["warnings"]) == len(load_catalog().regions)
    assert all(w["provider"] == "electricitymaps" for w in statement["warnings"])


def test_written_statement_files(tmp_path, run_inputs):
    records, inputs = run_inputs
    statement = write_statement(records, tmp_path, {"outcome": "completed"}, inputs)
    assert statement["reconciliation_problems"] == []
    assert json.loads((tmp_path / STATEMENT_JSON).read_text())["total_emissions_kg"] == pytest.approx(
        statement["total_emissions_kg"]
    )
    md = (tmp_path / STATEMENT_MD).read_text()
    for heading in (
        "## Placement",
        "## Counterfactuals",
        "## Mitigations",
        "V(M) = S − C − E − O",
        "## Amortization",
        "10^25",
        "## In everyday terms",
        "EPA",
    ):
        assert heading in md
    html = (tmp_path / STATEMENT_HTML).read_text()
    assert html.count("<svg") == 4 and "<script" not in html


def test_rank_records_aggregate():
    ranks = [record("pretrain", 0.1, 0.5, 0.01, 46.0, "gcp:europe-north1", gpus=8) for _ in range(4)]
    ranks[3].wall_seconds = 75.0
    total = aggregate_ranks(ranks)
    assert total.ranks == 4 and total.gpu_count == 32 and total.wall_seconds == 75.0
    assert total.energy_kwh == pytest.approx(4 * ranks[0].energy_kwh) and len(total.intervals) == 8
    assert total.intensity_g_per_kwh == pytest.approx(46.0)
    assert reconcile(build_statement([total])) == []


def test_measured_scratch_arm_replaces_the_estimate(run_inputs):
    records, inputs = run_inputs
    inputs.scratch_record = record("adapt-scratch", 0.2, 1.0, 0.02, 2.0, "gcp:northamerica-northeast1", gpus=1)
    statement = build_statement(records, None, inputs)
    a = statement["amortization"]
    assert a["scratch_measured"] and a["scratch_basis"].startswith("measured") and a["scratch_flops"] is None
    assert a["scratch_task_kg"] == pytest.approx(inputs.scratch_record.emissions_kg)
    expected = records[2].emissions_kg / (inputs.scratch_record.emissions_kg - records[3].emissions_kg)
    assert a["break_even_uses"] == pytest.approx(expected)
    assert reconcile(statement) == []
