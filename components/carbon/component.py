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
) -> NamedTuple("Placement", [("location", str), ("node_selector", dict), ("decision", str)]):
    """Choose the (region, start) with the least expected emissions for one heavy stage, wait for the start
    (never longer than max_wait_hours), and hand the stage its node selector and measurement location."""
    import json
    import time
    from dataclasses import asdict
    from datetime import UTC, datetime

    from components.carbon.catalog import load_catalog
    from components.carbon.placement import Constraints, Job, select_region
    from components.carbon.providers import make_provider

    estimate = json.loads(job_estimates)[stage]
    constraints = Constraints.from_params(gpu_type, gpu_count, residency_tags, deadline_hours, max_wait_hours)
    catalog = load_catalog(region_catalog)
    now = datetime.now(UTC)
    decision = select_region(
        catalog,
        make_provider(intensity_provider, intensity_provider_url),
        constraints,
        Job(stage, float(estimate["kwh"]), float(estimate["hours"])),
        now,
    )
    print(decision.reason)
    wait_s = (datetime.fromisoformat(decision.chosen.start) - datetime.now(UTC)).total_seconds()
    if wait_s > 0:
        time.sleep(min(wait_s, max_wait_hours * 3600))
    location = catalog.get(decision.chosen.region).location()
    outputs = NamedTuple("Placement", [("location", str), ("node_selector", dict), ("decision", str)])
    return outputs(json.dumps(asdict(location)), decision.node_selector, json.dumps(decision.to_json()))


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def statement_op(
    data_fingerprint: str,
    outcome: str,
    curate_energy: str,
    validate_energy: str,
    statement: Output[Markdown],
    statement_json: Output[Artifact],
    statement_html: Output[HTML],
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
    social_cost_usd_per_t: float = 105.0,
    energy_usd_per_kwh: float = 0.1376,
    social_benefit_usd: str = "",
    other_costs_usd: str = "",
    scratch_task_kwh: str = "",
):
    """Gather every stage's energy record and placement into the carbon impact statement (Markdown and HTML
    shown in the UI, JSON for machines). Optional money inputs are strings: empty means not given."""
    import json
    import shutil
    import tempfile
    from pathlib import Path

    from components.carbon.costs import CostAssumptions
    from components.carbon.statement import (
        STATEMENT_HTML,
        STATEMENT_JSON,
        STATEMENT_MD,
        StatementInputs,
        write_statement,
    )

    def optional(text: str) -> float | None:
        return float(text) if text.strip() else None

    energies = [curate_energy, validate_energy, pretrain_energy, adapt_energy, evaluate_energy]
    records = [json.loads(e) for e in energies if e]
    run = {"outcome": outcome, "input data fingerprint": data_fingerprint or "not given"}
    if total_training_flops:
        run["pretraining compute"] = f"{total_training_flops:.3e} FLOPs"
    inputs = StatementInputs(
        placements=[json.loads(p) for p in (curate_placement, pretrain_placement, adapt_placement) if p],
        assumptions=CostAssumptions(
            social_cost_usd_per_t,
            energy_usd_per_kwh,
            optional(social_benefit_usd),
            optional(other_costs_usd),
            optional(scratch_task_kwh),
        ),
        total_training_flops=total_training_flops,
        adapt_method=adapt_method,
        pretrain_steps=train_steps,
        adapt_steps=adapt_steps,
    )
    out = Path(tempfile.mkdtemp(prefix="greenfm-carbon-"))
    write_statement(records, out, run, inputs)
    shutil.copyfile(out / STATEMENT_MD, statement.path)
    shutil.copyfile(out / STATEMENT_JSON, statement_json.path)
    shutil.copyfile(out / STATEMENT_HTML, statement_html.path)
