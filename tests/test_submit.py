"""`greenfm submit` / `greenfm schedule` through the real kfp.Client against a local KFP REST stand-in."""

from __future__ import annotations

import ast
import json

import pytest
from typer.testing import CliRunner

from components.common.errors import GreenfmError
from pipelines.cli import app
from pipelines.compile import compile_pipeline
from pipelines.submit import SubmitTarget, parse_params, schedule_run, submit_run, validate_cron
from tests.fake_kfp import API


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return compile_pipeline(tmp_path_factory.mktemp("pkg") / "greenfm.yaml")


def test_params_are_typed_and_checked():
    assert parse_params(["train_steps=50", "learning_rate=1e-3", "residency_tags=residency-eu"]) == {
        "train_steps": 50,
        "learning_rate": 1e-3,
        "residency_tags": "residency-eu",
    }
    with pytest.raises(GreenfmError, match="unknown parameter"):
        parse_params(["trian_steps=5"])
    with pytest.raises(GreenfmError, match="must be an integer"):
        parse_params(["train_steps=many"])
    with pytest.raises(GreenfmError, match="NAME=VALUE"):
        parse_params(["train_steps"])


def test_first_submit_uploads_pipeline_creates_experiment_and_run(kfp_server, package):
    fake, url = kfp_server
    done = submit_run(SubmitTarget(url, "exp-a"), {"train_steps": 7}, "run-1", package)

    assert len(fake.calls("POST", f"{API}/pipelines/upload")) == 1
    assert not fake.calls("POST", f"{API}/pipelines/upload_version")
    assert len(fake.calls("POST", f"{API}/experiments")) == 1
    (run_call,) = fake.calls("POST", f"{API}/runs")
    body = json.loads(run_call.body)
    assert body["display_name"] == "run-1"
    assert body["experiment_id"] == done.experiment_id
    assert body["pipeline_version_reference"] == {
        "pipeline_id": done.pipeline_id,
        "pipeline_version_id": done.version_id,
    }
    assert body["runtime_config"]["parameters"] == {"train_steps": 7}
    assert done.version_id in {v["pipeline_version_id"] for v in fake.versions[done.pipeline_id]}
    assert done.run_id in fake.runs


def test_changed_pipeline_becomes_a_new_version_and_same_one_is_reused(kfp_server, package, tmp_path):
    fake, url = kfp_server
    first = submit_run(SubmitTarget(url), {}, "run-1", package)
    # The same pipeline compiled by another process: kfp's header comment lists a dict default's keys in another
    # order. It is the same version: submitted once (a version named by its content, beside the upload's own
    # first version), then found again from the original file.
    text = package.read_text()
    header = next(line for line in text.splitlines() if line.startswith("#    gpu_tolerations:"))
    prefix, default = header.split(" [Default: ")
    reordered = [dict(reversed(item.items())) for item in ast.literal_eval(default.removesuffix("]"))]
    recompiled = tmp_path / "recompiled.yaml"
    recompiled.write_text(text.replace(header, f"{prefix} [Default: {reordered}]"))
    assert recompiled.read_text() != text
    again = submit_run(SubmitTarget(url), {}, "run-1b", recompiled)
    same = submit_run(SubmitTarget(url), {}, "run-1c", package)
    changed = tmp_path / "changed.yaml"
    changed.write_text(text.replace("defaultValue: 200.0", "defaultValue: 201.0", 1))  # train_steps' default
    assert changed.read_text() != text
    second = submit_run(SubmitTarget(url), {}, "run-2", changed)
    third = submit_run(SubmitTarget(url), {}, "run-3", changed)

    assert len(fake.calls("POST", f"{API}/pipelines/upload")) == 1  # never a second pipeline
    assert len(fake.calls("POST", f"{API}/pipelines/upload_version")) == 2  # the content once, the edit once
    assert same.version_id == again.version_id
    assert second.pipeline_id == first.pipeline_id and second.version_id != first.version_id
    assert third.version_id == second.version_id
    assert len(fake.calls("POST", f"{API}/experiments")) == 1  # existing experiment reused
    assert len(fake.runs) == 5


def test_a_package_that_is_not_a_compiled_pipeline_is_refused_in_one_line(kfp_server, tmp_path):
    fake, url = kfp_server
    broken, listed = tmp_path / "broken.yaml", tmp_path / "list.yaml"
    broken.write_text("pipelineInfo: [unclosed\n")
    listed.write_text("- just\n- a list\n")
    with pytest.raises(GreenfmError, match=r"broken\.yaml: not a compiled pipeline \(YAML: ") as error:
        submit_run(SubmitTarget(url), {}, "run-x", broken)
    assert "\n" not in str(error.value)
    with pytest.raises(GreenfmError, match=r"list\.yaml: not a compiled pipeline \(expected YAML mappings\)"):
        submit_run(SubmitTarget(url), {}, "run-y", listed)
    assert not fake.runs


def test_schedule_creates_one_recurring_run_with_six_field_cron(kfp_server, package):
    fake, url = kfp_server
    done = schedule_run(SubmitTarget(url), {"seed": 3}, "nightly", "0 0 3 * * *", package)
    (call,) = fake.calls("POST", f"{API}/recurringruns")
    body = json.loads(call.body)
    assert body["trigger"] == {"cron_schedule": {"cron": "0 0 3 * * *"}}
    assert body["max_concurrency"] == "1" or body["max_concurrency"] == 1
    assert body["no_catchup"] is True and body["mode"] == "ENABLE"
    assert body["runtime_config"]["parameters"] == {"seed": 3}
    assert done.recurring_run_id in fake.recurring


def test_five_field_cron_is_rejected_before_any_request():
    with pytest.raises(GreenfmError, match="6 fields"):
        validate_cron("0 3 * * *")


def test_cli_submit_prints_run_id_on_stdout(kfp_server, package):
    fake, url = kfp_server
    result = CliRunner().invoke(
        app, ["submit", "--host", url, "--experiment", "cli", "--package", str(package), "--param", "train_steps=3"]
    )
    assert result.exit_code == 0, result.output
    (run_id,) = fake.runs
    assert result.stdout.strip().splitlines()[-1] == run_id
    assert fake.runs[run_id]["runtime_config"]["parameters"] == {"train_steps": 3}


def test_cli_bad_param_fails_without_contacting_server(kfp_server):
    fake, url = kfp_server
    result = CliRunner().invoke(app, ["submit", "--host", url, "--param", "nope=1"])
    assert result.exit_code == 2
    assert not fake.requests


def test_unreachable_server_is_a_one_line_error(package):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = CliRunner().invoke(app, ["submit", "--host", f"http://127.0.0.1:{port}", "--package", str(package)])
    assert result.exit_code == 2
    assert "cannot reach the KFP API" in result.output and "Traceback" not in result.output


def test_server_error_is_reported_with_status(kfp_server, package):
    fake, url = kfp_server
    # Listed under a name, but its id is unknown to the server's upload_version: the server answers 404.
    fake.pipelines["listed"] = {"pipeline_id": "gone", "display_name": "greenfm", "created_at": "2026-01-01T00:00:00Z"}
    with pytest.raises(GreenfmError, match="KFP API answered 404"):
        submit_run(SubmitTarget(url), {}, "r", package)
