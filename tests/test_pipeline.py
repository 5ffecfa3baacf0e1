"""The DAG compiles, loads back, and runs end to end through the real `greenfm` command (kfp.local)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kfp.components import load_component_from_file

from pipelines.compile import compile_pipeline
from pipelines.config import RunConfig, load_config
from pipelines.manifest import comparable
from pipelines.tasks import task_key, task_keys
from tests.greenfm_runs import TINY, manifest_of, run_to_end

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("select-region-curate", "curate", "validate", "pretrain", "adapt", "evaluate", "carbon-statement")


def test_compiled_pipeline_loads_back_with_every_stage(tmp_path):
    path = compile_pipeline(tmp_path / "greenfm.yaml")
    component = load_component_from_file(str(path))
    assert component.name == "greenfm"
    assert set(component.component_spec.inputs) == set(RunConfig().pipeline_arguments())
    spec = next(yaml.safe_load_all(path.read_text()))  # then the platform spec
    executors = set(spec["deploymentSpec"]["executors"])
    for stage in [
        "select-region-op",
        "curate-op",
        "validate-op",
        "pretrain-op",
        "adapt-op",
        "evaluate-op",
        "statement-op",
    ]:
        assert f"exec-{stage}" in executors
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    assert all(p.get("description") for p in inputs.values())  # the Kubeflow UI form explains every field
    assert inputs["train_steps"]["defaultValue"] == RunConfig().train_steps


def test_config_file_errors_are_clear(tmp_path):
    from components.common.errors import GreenfmError

    bad = tmp_path / "c.yaml"
    bad.write_text("train_stepz: 3\n")
    with pytest.raises(GreenfmError, match=r"unknown parameter.*train_stepz"):
        load_config(bad)
    bad.write_text("train_steps: many\n")
    with pytest.raises(GreenfmError, match="train_steps must be an integer"):
        load_config(bad)


@pytest.mark.slow
def test_local_run_end_to_end_is_reproducible(tmp_path, tiny_corpus):
    first = run_to_end(tmp_path, tiny_corpus, TINY, "first")
    assert first.returncode == 0, first.stderr[-3000:]
    manifest = manifest_of(tmp_path / "first")
    assert manifest["succeeded"]
    assert all(any(key in manifest["stages"] for key in task_keys()[stage]) for stage in STAGES)
    run_dir = Path(manifest["run_dir"])
    statement = Path(first.stdout.strip().splitlines()[-1])
    assert statement == run_dir / "carbon_statement.md" and "Finland" in statement.read_text()
    # the amortization's "from scratch" is the arm the run trained from random initialization, not an estimate
    assert "measured: a task model trained from random initialization" in statement.read_text()
    for report in ["curation_report.md", "validation_summary.md", "training_report.md", "evaluation_report.md"]:
        assert (run_dir / report).is_file(), report
    assert manifest["stages"][task_key("validate")]["parameters"]["passed"] is True
    assert manifest["input_fingerprint"] and manifest["seeds"] == {"seed": RunConfig().seed}
    assert manifest["versions"]["torch"].startswith("2.13")

    # The pretraining-gain benchmark rescoring this run: its (run seed, run seed) pair must reproduce the report
    # (the script exits non-zero otherwise), and another pretraining seed trains a new base model.
    seeds = ["--pretrain-seeds", "1234,7", "--adapt-seeds", "1234"]
    gain = subprocess.run(
        [sys.executable, "-m", "benchmarks.pretraining_gain", str(run_dir), *seeds, "--out", str(tmp_path / "gain")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert gain.returncode == 0, gain.stderr[-3000:]
    grid = json.loads((tmp_path / "gain" / "pretraining_gain.json").read_text())
    assert [(r["pretrain_seed"], r["adapt_seed"]) for r in grid["rows"]] == [(1234, 1234), (7, 1234)]
    assert grid["rows"][0]["base_val_loss"] != grid["rows"][1]["base_val_loss"]
    assert [s["pretrain_seed"] for s in grid["summary"]] == ["1234", "7", "all"]

    second = run_to_end(tmp_path, tiny_corpus, TINY, "second")
    assert second.returncode == 0, second.stderr[-3000:]
    again = manifest_of(tmp_path / "second")
    assert again["curated_data_sha256"] == manifest["curated_data_sha256"]
    assert again["checkpoint_sha256"] == manifest["checkpoint_sha256"]
    # Stage by stage, every output hash and parameter agrees; timings, energy and renderings are set aside.
    assert comparable(again) == comparable(manifest)
    assert manifest["stages"][task_key("curate")]["artifacts"]["curated"]  # the dataset is hashed, not set aside
    # the evaluation's metrics are hashed; only its measurements (energy, timing) and renderings are set aside
    evaluation = manifest["stages"][task_key("evaluate")]
    assert evaluation["artifacts"]["report_json"] and evaluation["artifacts"]["report"] is None
    assert any(key.endswith("efficiency.energy_kwh") for key in evaluation["volatile"])
    assert any(key.endswith(".seconds") for key in manifest["stages"][task_key("curate")]["volatile"])


@pytest.mark.slow
def test_failed_gate_stops_before_training(tmp_path, tiny_corpus):
    result = run_to_end(tmp_path, tiny_corpus, {**TINY, "min_documents": 100_000}, "gated")
    assert result.returncode == 1
    assert "gate failed:" in result.stderr and "expect_table_row_count_to_be_between" in result.stderr
    assert "Traceback" not in result.stderr
    manifest = manifest_of(tmp_path / "gated")
    assert task_key("pretrain") not in manifest["stages"]
    run_dir = Path(manifest["run_dir"])
    assert "stopped at the validation gate" in (run_dir / "carbon_statement.md").read_text()
