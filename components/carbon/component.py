"""KFP wrappers: where heavy stages run, and the run's carbon impact statement."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Markdown, Output

from components.common.images import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def select_region_op(
    stage: str,
    region_catalog: str,
    intensity_provider: str,
    intensity_provider_url: str,
    gpu_type: str,
    gpu_count: int,
    residency_tags: str,
    deadline_hours: float,
    max_wait_hours: float,
    job_estimates: str,
    intensity_fail_closed: bool = False,
) -> NamedTuple("Placement", [("location", str), ("node_selector", dict), ("decision", str)]):
    """Choose the (region, start) with the least expected emissions for one heavy stage, wait for the start
    (never longer than max_wait_hours), and hand the stage its node selector and measurement location.
    Regions are compared on one basis; `intensity_fail_closed` stops the run when the live provider fails."""
    import json
    from dataclasses import asdict
    from datetime import UTC, datetime

    from components.carbon.catalog import load_catalog
    from components.carbon.cluster_nodes import place_in_cluster, read_nodes
    from components.carbon.placement import Constraints, Job, select_region, wait_for_start
    from components.carbon.providers import make_provider

    estimate = json.loads(job_estimates)[stage]
    constraints = Constraints.from_params(gpu_type, gpu_count, residency_tags, deadline_hours, max_wait_hours)
    # Only regions this cluster's nodes carry: a selector no node matches would leave the stage Pending forever.
    catalog, pinned, placement_note = place_in_cluster(load_catalog(region_catalog), read_nodes())
    now = datetime.now(UTC)
    decision = select_region(
        catalog,
        make_provider(intensity_provider, intensity_provider_url),
        constraints,
        Job(stage, float(estimate["kwh"]), float(estimate["hours"])),
        now,
        fail_closed=intensity_fail_closed,
    )
    # The statement attributes the stage's measured hours with the same provider.
    decision.provider, decision.provider_url = intensity_provider, intensity_provider_url
    node_selector = decision.node_selector if pinned else {}
    record = {**decision.to_json(), "node_selector": node_selector, "reason": f"{decision.reason} {placement_note}"}
    print(record["reason"])
    wait_for_start(decision, max_wait_hours)
    location = catalog.get(decision.chosen.region).location()
    outputs = NamedTuple("Placement", [("location", str), ("node_selector", dict), ("decision", str)])
    return outputs(json.dumps(asdict(location)), node_selector, json.dumps(record))


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def statement_op(
    data_fingerprint: str,
    outcome: str,
    curate_energy: str,
    validate_energy: str,
    statement: Output[Markdown],
    statement_json: Output[Artifact],
    statement_html: Output[HTML],
    social_cost_usd_per_t: float,
    energy_usd_per_kwh: float,
    pretrain_energy: str = "",
    adapt_energy: str = "",
    evaluate_energy: str = "",
    total_training_flops: float = 0.0,
    curate_placement: str = "",
    pretrain_placement: str = "",
    adapt_placement: str = "",
    adapt_method: str = "",
    train_steps: int = 0,
    adapt_steps: int = 0,
    social_benefit_usd: str = "",
    other_costs_usd: str = "",
    scratch_task_kwh: str = "",
    scratch_energy: str = "",
    submission_placement: str = "",
):
    """Gather every stage's energy record and placement into the carbon impact statement (Markdown and HTML
    shown in the UI, JSON for machines). Optional money inputs are strings: empty means not given.
    `scratch_energy`, when given, is the energy record (JSON) of a task model trained from random
    initialization: the measured "from scratch" arm of the amortization (else it is estimated from FLOPs).
    `submission_placement`, when given, is the cluster and start `greenfm submit` chose for the whole run."""
    import tempfile
    from pathlib import Path

    from components.carbon.costs import CostAssumptions
    from components.carbon.records import EnergyRecord, PlacementDecision
    from components.carbon.statement import (
        STATEMENT_HTML,
        STATEMENT_JSON,
        STATEMENT_MD,
        StatementInputs,
        write_statement,
    )
    from components.carbon.submission import SubmissionPlacement
    from components.common.component_io import copy_outputs

    energies = {
        "curate": curate_energy,
        "validate": validate_energy,
        "pretrain": pretrain_energy,
        "adapt": adapt_energy,
        "evaluate": evaluate_energy,
    }
    records = [EnergyRecord.from_json(e, f"{stage} energy record") for stage, e in energies.items() if e]
    scratch = None
    if scratch_energy:
        scratch = EnergyRecord.from_json(scratch_energy, "scratch_energy record")
    run = {"outcome": outcome, "input data fingerprint": data_fingerprint or "not given"}
    if total_training_flops:
        run["pretraining compute"] = f"{total_training_flops:.3e} FLOPs"
    inputs = StatementInputs(
        placements=[
            PlacementDecision.from_json(p, "placement decision")
            for p in (curate_placement, pretrain_placement, adapt_placement)
            if p
        ],
        assumptions=CostAssumptions.from_params(
            social_cost_usd_per_t, energy_usd_per_kwh, social_benefit_usd, other_costs_usd, scratch_task_kwh
        ),
        total_training_flops=total_training_flops,
        adapt_method=adapt_method,
        pretrain_steps=train_steps,
        adapt_steps=adapt_steps,
        scratch_record=scratch,
        submission=SubmissionPlacement.from_json(submission_placement) if submission_placement else None,
    )
    out = Path(tempfile.mkdtemp(prefix="greenfm-carbon-"))
    write_statement(records, out, run, inputs)
    copy_outputs(
        [
            (out / STATEMENT_MD, statement.path),
            (out / STATEMENT_JSON, statement_json.path),
            (out / STATEMENT_HTML, statement_html.path),
        ]
    )
