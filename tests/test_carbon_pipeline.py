"""Placement in the compiled pipeline (node selectors from select_region) and the `greenfm regions` command."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from components.carbon.catalog import REGION_LABEL
from components.carbon.tracking import NODE_NAME
from pipelines.cli import app
from pipelines.tasks import task_key


def test_heavy_tasks_are_placed_by_their_select_region_step(tmp_path):
    from pipelines.compile import compile_pipeline

    path = compile_pipeline(tmp_path / "greenfm.yaml")
    docs = list(yaml.safe_load_all(path.read_text()))
    executors = next(d for d in docs if "platforms" in d)["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    ir = docs[0]
    tasks = {**ir["root"]["dag"]["tasks"]}
    for component in ir["components"].values():  # tasks inside the gate's condition branches
        tasks.update(component.get("dag", {}).get("tasks", {}))
    placed = {
        name: spec["nodeSelector"]["nodeSelectorJson"]["taskOutputParameter"]
        for name, spec in executors.items()
        if "nodeSelector" in spec
    }
    # validate and evaluate are pinned where they are measured: curation's and adaptation's regions.
    assert set(placed) == {
        "exec-curate-op",
        "exec-validate-op",
        "exec-pretrain-op",
        "exec-adapt-op",
        "exec-adapt-from-scratch-op",
        "exec-evaluate-op",
    }
    producers = {name: p["producerTask"] for name, p in placed.items()}
    assert producers["exec-validate-op"] == producers["exec-curate-op"]
    assert producers["exec-evaluate-op"] == producers["exec-adapt-op"]
    assert all(p["outputParameterKey"] == "node_selector" for p in placed.values())
    # Each measured task's record names its node (downward API), so records of one node are never summed twice.
    for name in placed:
        assert {"name": NODE_NAME, "fieldPath": "spec.nodeName"} in executors[name]["fieldPathAsEnv"], name
    # Each heavy task is placed by its own selection step, which selects for that stage.
    stage_of = {
        name: task["inputs"]["parameters"]["stage"]["runtimeValue"]["constant"]
        for name, task in tasks.items()
        if name in {task_key(f"select-region-{s}") for s in ("curate", "pretrain", "adapt")}
    }
    assert {producers[f"exec-{s}-op"]: s for s in ("curate", "pretrain", "adapt")} == stage_of
    assert producers["exec-adapt-from-scratch-op"] == producers["exec-adapt-op"]  # the ablation runs where adapt does
    # The selection steps read live-provider tokens from an optional Secret.
    secrets = [spec["secretAsEnv"][0] for name, spec in executors.items() if name.startswith("exec-select-region-op")]
    assert secrets and all(s["optional"] and s["secretName"] == "greenfm-carbon-tokens" for s in secrets)
    # ... and the deployment's catalog from the optional ConfigMap the multi-region overlay publishes.
    maps = [
        spec["configMapAsVolume"][0] for name, spec in executors.items() if name.startswith("exec-select-region-op")
    ]
    assert maps and all(m["configMapName"] == "greenfm-regions" and m["optional"] for m in maps)
    assert {m["mountPath"] for m in maps} == {"/etc/greenfm"}


def test_local_runs_are_placed_on_this_machine():
    from components.carbon.catalog import THIS_MACHINE, load_catalog
    from components.common.errors import GreenfmError
    from pipelines.config import RunConfig
    from pipelines.local_run import on_this_machine

    config = on_this_machine(RunConfig(), "USA/texas", 1.2)
    (region,) = load_catalog(config.region_catalog).regions
    assert region.name == THIS_MACHINE and region.location().region == "texas" and region.pue == 1.2
    explicit = RunConfig(region_catalog="regions: []")
    assert on_this_machine(explicit, "FRA") is explicit  # an explicit catalog is the user's choice
    import pytest

    with pytest.raises(GreenfmError, match="XYZ"):
        on_this_machine(RunConfig(), "XYZ")


def test_regions_command_shows_catalog_intensities_and_pick():
    result = CliRunner().invoke(app, ["regions", "--tags", "residency-eu", "--gpu-type", "nvidia-a100-80gb"])
    assert result.exit_code == 0, result.output
    assert "europe-north1" in result.output and "PICK" in result.output and "46.0" in result.output
    assert "pick: europe-north1" in result.output
    result = CliRunner().invoke(app, ["regions", "--json", "--energy-kwh", "10", "--hours", "1"])
    decision = json.loads(result.stdout)
    assert decision["node_selector"] == {REGION_LABEL: "northamerica-northeast1"}
    assert decision["chosen"]["expected_kg"] == 10 * 1.1 * 2.0 / 1000


def test_regions_command_reports_user_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("regions: 3\n")
    result = CliRunner().invoke(app, ["regions", "--catalog", str(bad)])
    assert result.exit_code == 2 and "regions" in result.output


def test_statement_gets_the_measured_from_scratch_arm(tmp_path):
    """The amortization's "from scratch" is measured when the pipeline trains that arm: the statement task of
    the gate-passed branch takes adapt-from-scratch's energy record."""
    from pipelines.compile import compile_pipeline

    ir = next(yaml.safe_load_all(compile_pipeline(tmp_path / "greenfm.yaml").read_text()))
    statements = [
        task
        for component in ir["components"].values()
        for name, task in component.get("dag", {}).get("tasks", {}).items()
        if name.startswith("statement-op")
    ]
    wired = [t["inputs"]["parameters"].get("scratch_energy") for t in statements]
    expected = {"taskOutputParameter": {"outputParameterKey": "energy", "producerTask": "adapt-from-scratch-op"}}
    assert expected in wired  # the completed run's statement; the gate-failed one has no arm to compare
