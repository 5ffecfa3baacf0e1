"""Where and when a whole run goes, decided at submission. One cluster usually spans one region, so choosing
among regions served by different clusters can only happen before the run exists. The region catalog names
each region's cluster (`kfp_host`, its Kubeflow Pipelines API, and its kube `context`); the run goes to the
cluster of the feasible region with the least expected emissions for the whole run's estimated energy and
duration (components.carbon.placement: the same exact optimum the in-cluster steps use), at the best start
within `max_wait_hours`.

A later start is not a pod sleeping for hours: the run is created as a one-off KFP schedule
(pipelines.submit.schedule_once) that starts it then, and the run's own select-region steps do not wait again
(max_wait_hours 0). The decision travels with the run (`submission_placement`) into its carbon statement.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from components.carbon.catalog import Catalog, Region, load_catalog
from components.carbon.placement import Constraints, Job, select_region
from components.carbon.providers import IntensityProvider, make_provider
from components.carbon.submission import SubmissionPlacement
from components.common.errors import GreenfmError
from pipelines.config import DEFAULTS, HEAVY_STAGES, RunConfig
from pipelines.submit import SubmitTarget, Submitted, schedule_once, submit_run

RUN_STAGE = "run"  # the decision's stage: the whole run, every heavy stage together


def whole_run(config: RunConfig) -> tuple[Constraints, Job]:
    """The run as one job: the GPU needs of its training stages, the energy and hours of all heavy stages."""
    estimates = json.loads(config.job_estimates)
    constraints = Constraints.from_params(
        config.gpu_type, config.gpu_count, config.residency_tags, config.deadline_hours, config.max_wait_hours
    )
    kwh = sum(float(estimates[stage]["kwh"]) for stage in HEAVY_STAGES)
    hours = sum(float(estimates[stage]["hours"]) for stage in HEAVY_STAGES)
    return constraints, Job(RUN_STAGE, kwh, hours)


def _same_host(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def submittable_regions(catalog: Catalog, host: str | None = None) -> list[Region]:
    """The regions a run can be submitted to: those naming a cluster (any, or `host` only)."""
    named = [r for r in catalog.regions if r.kfp_host and (host is None or _same_host(r.kfp_host, host))]
    if not named:
        what = f"names the cluster {host} (kfp_host)" if host else "names its cluster's KFP API (kfp_host)"
        raise GreenfmError(f"region catalog: no region {what}; add kfp_host to the catalog or pass --host")
    return named


def place_run(
    config: RunConfig,
    catalog: Catalog | None = None,
    now: datetime | None = None,
    host: str | None = None,
    provider: IntensityProvider | None = None,
) -> SubmissionPlacement:
    """The cluster and start of `config`'s run among the catalog's clusters (`host`'s regions only, if given),
    with intensities from the run's provider (`provider` overrides it)."""
    catalog = catalog or load_catalog(config.region_catalog)
    now = now or datetime.now(UTC)
    regions = submittable_regions(catalog, host)
    names = [r.name for r in regions]
    candidates = Catalog(regions, catalog.default_region if catalog.default_region in names else names[0])
    constraints, job = whole_run(config)
    provider = provider or make_provider(config.intensity_provider, config.intensity_provider_url)
    decision = select_region(candidates, provider, constraints, job, now, fail_closed=config.intensity_fail_closed)
    decision.provider, decision.provider_url = config.intensity_provider, config.intensity_provider_url
    chosen = candidates.get(decision.chosen.region)
    clusters: dict[str, list[str]] = {}
    for region in regions:
        clusters.setdefault(region.kfp_host, []).append(region.name)
    return SubmissionPlacement(
        host=chosen.kfp_host,
        context=chosen.context,
        decision=decision,
        clusters=clusters,
        decided_at=now.isoformat(timespec="seconds"),
    )


def placed(params: dict, placement: SubmissionPlacement) -> dict:
    """The run's parameters once placed: the decision recorded, and no second wait inside the run."""
    return {**params, "max_wait_hours": 0.0, "submission_placement": placement.dumps()}


def submit_placed(
    target: SubmitTarget,
    params: dict,
    name: str,
    package: Path | None = None,
    catalog: Catalog | None = None,
    now: datetime | None = None,
    provider: IntensityProvider | None = None,
) -> tuple[Submitted, SubmissionPlacement]:
    """Place the run (among the catalog's clusters, or `target.host`'s regions when it names one) and submit
    it there: a run now, or a one-off schedule at the chosen start. `params` are the given run parameters."""
    config = replace(DEFAULTS, **params)
    placement = place_run(config, catalog, now, host=target.host or None, provider=provider)
    there = replace(target, host=placement.host)
    arguments = placed(params, placement)
    if placement.scheduled:
        return schedule_once(there, arguments, name, placement.start, package), placement
    return submit_run(there, arguments, name, package), placement
