"""Submission-time placement: `greenfm submit` / `greenfm watch --place` put the whole run on the cluster of
the least-emitting feasible region the catalog names a KFP API for, and a later, cleaner start becomes a
one-off KFP schedule (started by the scheduler at that time) instead of a pod that sleeps. Against two fake
KFP servers (tests/fake_kfp.py), whose scheduler follows the ScheduledWorkflow controller's periodic rule."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from components.carbon.catalog import parse_catalog
from components.carbon.providers import ForecastPoint, Signal
from components.carbon.statement import StatementInputs, build_statement, render_markdown
from components.carbon.submission import SubmissionPlacement
from components.common.errors import GreenfmError
from pipelines.cli import app
from pipelines.compile import compile_pipeline
from pipelines.config import DEFAULTS
from pipelines.run_placement import place_run, submit_placed
from pipelines.submit import ONE_OFF_INTERVAL_S, SubmitTarget
from pipelines.watch import WatchState
from pipelines.watch_submitters import KfpSubmitter
from tests import fake_kfp
from tests.carbon_inputs import record
from tests.fake_kfp import API, next_periodic_epoch

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CATALOG = """
default_region: us-central1
regions:
  - name: us-central1
    zone: gcp:us-central1
    context: gke-iowa
    kfp_host: {iowa}
    gpus: {{nvidia-h100-80gb: 8}}
  - name: northamerica-northeast1
    zone: gcp:northamerica-northeast1
    context: gke-montreal
    kfp_host: {montreal}
    gpus: {{nvidia-l4: 8}}
  - name: europe-north1
    zone: gcp:europe-north1
"""


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return compile_pipeline(tmp_path_factory.mktemp("pkg") / "greenfm.yaml")


@pytest.fixture
def clusters(tmp_path):
    """Two clusters, each with its own KFP API: Iowa (H100s, a coal-heavy grid) and Montréal (L4s, hydro).
    europe-north1 names no cluster, so a run cannot be submitted there."""
    servers = [fake_kfp.serve(), fake_kfp.serve()]
    (iowa, iowa_url), (montreal, montreal_url) = (next(server) for server in servers)
    text = CATALOG.format(iowa=iowa_url, montreal=montreal_url)
    path = tmp_path / "regions.yaml"
    path.write_text(text)
    yield {"iowa": (iowa, iowa_url), "montreal": (montreal, montreal_url), "catalog": parse_catalog(text), "path": path}
    for server in servers:
        server.close()


class Forecast:
    """Grid intensity with a forecast: what a live provider (carbon-aware SDK, Electricity Maps) answers."""

    name = "test-forecast"

    def __init__(self, now: dict[str, float], dips: dict[str, tuple[float, float, float]]):
        self.now, self.dips = now, dips  # region -> g/kWh now; region -> (hours from NOW, hours long, g/kWh)

    def signal(self, region, now, horizon_hours):
        points = []
        if region.name in self.dips:
            after, hours, value = self.dips[region.name]
            points = [ForecastPoint(now + timedelta(hours=after), hours * 60, value)]
        return Signal(region.name, self.now[region.name], "test forecast", now, points)


def test_the_run_goes_to_the_cleanest_cluster(clusters, package):
    (iowa, _), (montreal, montreal_url) = clusters["iowa"], clusters["montreal"]
    done, placement = submit_placed(SubmitTarget(""), {"train_steps": 7}, "run-1", package, clusters["catalog"])

    assert placement.host == montreal_url and placement.region == "northamerica-northeast1"
    assert placement.context == "gke-montreal" and not placement.scheduled
    assert not iowa.runs and list(montreal.runs) == [done.run_id]
    parameters = montreal.runs[done.run_id]["runtime_config"]["parameters"]
    assert parameters["train_steps"] == 7 and parameters["max_wait_hours"] == 0
    recorded = SubmissionPlacement.from_json(parameters["submission_placement"])
    assert recorded.host == montreal_url and set(recorded.clusters) == {clusters["iowa"][1], montreal_url}
    # Only regions that name a cluster compete: europe-north1 (cleaner still) has no KFP API to submit to.
    assert {o.region for o in recorded.decision.alternatives} == {"us-central1", "northamerica-northeast1"}


def test_a_run_that_needs_h100s_goes_where_they_are(clusters):
    config = replace(DEFAULTS, gpu_type="nvidia-h100-80gb", gpu_count=4)
    placement = place_run(config, clusters["catalog"], NOW)
    assert placement.host == clusters["iowa"][1]
    assert "needs 4 × nvidia-h100-80gb" in placement.decision.infeasible["northamerica-northeast1"]


def test_a_later_cleaner_start_is_a_one_off_schedule_not_a_sleeping_pod(clusters, package):
    (iowa, _), (montreal, _) = clusters["iowa"], clusters["montreal"]
    forecast = Forecast({"us-central1": 400.0, "northamerica-northeast1": 300.0}, {"us-central1": (2, 12, 20.0)})
    params = {"max_wait_hours": 3.0}
    done, placement = submit_placed(SubmitTarget(""), params, "run-1", package, clusters["catalog"], NOW, forecast)

    start = NOW + timedelta(hours=2)
    assert placement.host == clusters["iowa"][1] and placement.scheduled and placement.start == start
    assert not iowa.runs and not montreal.runs and not iowa.calls("POST", f"{API}/runs")  # nothing runs yet
    (call,) = iowa.calls("POST", f"{API}/recurringruns")
    body = json.loads(call.body)
    assert body["trigger"] == {
        "periodic_schedule": {
            "start_time": "2026-03-01T13:00:00Z",
            "end_time": "2026-03-01T14:00:00Z",
            "interval_second": ONE_OFF_INTERVAL_S,
        }
    }
    assert body["max_concurrency"] == 1 and body["no_catchup"] is False and body["mode"] == "ENABLE"
    assert body["runtime_config"]["parameters"]["max_wait_hours"] == 0  # the run's steps do not wait again

    # The scheduler starts it exactly once, at the chosen start, and never again.
    assert iowa.advance(start - timedelta(seconds=1)) == []
    (run,) = iowa.advance(start)
    assert run["recurring_run_id"] == done.recurring_run_id and run["scheduled_at"] == "2026-03-01T14:00:00Z"
    run["state"] = "SUCCEEDED"
    assert iowa.advance(start + timedelta(days=400)) == []


def test_the_one_off_trigger_fires_once_by_the_controllers_rule():
    """next_periodic_epoch is PeriodicSchedule.GetNextScheduledEpoch; the trigger schedule_once sends to it."""
    from pipelines.submit import one_off_trigger

    trigger = one_off_trigger(NOW + timedelta(hours=5, microseconds=400))
    created = int(NOW.timestamp())
    first = next_periodic_epoch(trigger, None, created)
    assert first == int((NOW + timedelta(hours=5)).timestamp())
    assert next_periodic_epoch(trigger, first, created) is None
    # Without start/end the same interval would run forever (an hour after creation, then hourly).
    assert next_periodic_epoch({"interval_second": 3600}, None, created) == created + 3600


def test_the_watcher_places_and_waits_for_the_scheduled_run(clusters, monkeypatch, tmp_path):
    (iowa, iowa_url) = clusters["iowa"]
    forecast = Forecast({"us-central1": 400.0, "northamerica-northeast1": 900.0}, {"us-central1": (1, 12, 20.0)})
    import pipelines.run_placement as run_placement

    monkeypatch.setattr(run_placement, "make_provider", lambda name, url: forecast)
    monkeypatch.setattr(run_placement, "load_catalog", lambda source: clusters["catalog"])
    submitter = KfpSubmitter(SubmitTarget(""), place=True)
    config = replace(DEFAULTS, data_fingerprint="f" * 64, max_wait_hours=2.0)

    submitted = submitter(config)
    reference = json.loads(submitted.run_id)
    assert reference["host"] == iowa_url and reference["recurring_run_id"] and not submitted.finished
    assert submitter.run_state(submitted.run_id) == "running"  # scheduled, not started: still pending
    (run,) = iowa.advance(datetime.now(UTC) + timedelta(hours=2))
    assert submitter.run_state(submitted.run_id) == "running"
    run["state"] = "FAILED"
    assert submitter.run_state(submitted.run_id) == "failed"  # the watcher submits the change again
    run["state"] = "SUCCEEDED"
    assert submitter.run_state(submitted.run_id) == "succeeded"
    assert WatchState(pending_run_id=submitted.run_id).settled(True).run_id == submitted.run_id


def test_cli_submit_without_host_places_the_run(clusters, package):
    montreal, montreal_url = clusters["montreal"]
    result = CliRunner().invoke(
        app, ["submit", "--catalog", str(clusters["path"]), "--package", str(package), "--param", "seed=3"]
    )
    assert result.exit_code == 0, result.output
    (run_id,) = montreal.runs
    assert result.stdout.strip().splitlines()[-1] == run_id
    assert "placement: submitted to " + montreal_url in result.output.replace("\n", "")


def test_a_catalog_without_clusters_is_a_one_line_error(tmp_path):
    catalog = parse_catalog("regions:\n  - name: a\n    zone: FRA\n")
    with pytest.raises(GreenfmError, match="no region names its cluster's KFP API"):
        place_run(DEFAULTS, catalog, NOW)
    with pytest.raises(GreenfmError, match=r"no region names the cluster http://x \(kfp_host\)"):
        place_run(DEFAULTS, catalog, NOW, host="http://x")


def test_the_statement_shows_the_submission_decision(clusters):
    forecast = Forecast({"us-central1": 400.0, "northamerica-northeast1": 300.0}, {"us-central1": (2, 12, 20.0)})
    placement = place_run(replace(DEFAULTS, max_wait_hours=3.0), clusters["catalog"], NOW, provider=forecast)
    inputs = StatementInputs(submission=SubmissionPlacement.from_json(placement.dumps()))  # as the run reads it
    statement = build_statement([record("curate", 1e-4, 0.0, 1e-5, 30.0, "gcp:us-central1")], {}, inputs)
    assert statement["submission"]["host"] == clusters["iowa"][1] and statement["submission"]["scheduled"]
    applied = {m["mitigation"]: m["applied"] for m in statement["mitigations"]}
    assert applied["cleanest cluster at submission"] and applied["time shift at submission"]
    text = render_markdown(statement)
    assert "## Submission" in text and clusters["iowa"][1] in text and "scheduled to start 2026-03-01T14:00" in text
    assert f"| northamerica-northeast1 | {clusters['montreal'][1]} |" in text
