"""Submitting to a real Kubeflow: multi-user authentication and namespaces, the server's release against what
the compiled pipeline needs, and the watcher accepting a change only once its run succeeded."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from components.common.errors import GreenfmError
from pipelines.cli import app
from pipelines.compile import compile_pipeline
from pipelines.kfp_versions import parse_version, required_backend
from pipelines.submit import SubmitTarget, schedule_run, submit_run
from pipelines.watch import watch_once
from pipelines.watch_state import FileStateStore
from pipelines.watch_submitters import KfpSubmitter
from tests.fake_kfp import FakeKfp, serve

PROFILE = "kubeflow-user-example-com"


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return compile_pipeline(tmp_path_factory.mktemp("pkg") / "greenfm.yaml")


@pytest.fixture
def token(tmp_path, monkeypatch):
    """A projected service account token where kfp.client looks for it (KF_PIPELINES_SA_TOKEN_PATH)."""
    path = tmp_path / "token"
    path.write_text("profile-token")
    monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(path))
    return path


def test_compiled_pipeline_states_the_backend_it_needs(package):
    platforms = list(yaml.safe_load_all(package.read_text()))[1]["platforms"]
    version, reasons = required_backend(platforms)
    assert version == (2, 15, 0) and reasons == ["optional Secret/ConfigMap environment variables (optional)"]
    del_optional = json.loads(json.dumps(platforms).replace('"optional": true', '"optional": false'))
    assert required_backend(del_optional)[0] == (2, 5, 0)  # node selectors from a task output
    assert parse_version("v2.16.1") == (2, 16, 1) and parse_version("unknown") is None


def test_old_backend_is_refused_before_anything_is_created(package):
    fake = FakeKfp(tag_name="2.14.3")
    for _, url in serve(fake):
        with pytest.raises(GreenfmError, match=r"backend 2\.14\.3 is too old for this pipeline; it needs >= 2\.15\.0"):
            submit_run(SubmitTarget(url), {}, "r", package)
    assert not [r for r in fake.requests if r.method == "POST"]


def test_multi_user_without_namespace_is_a_clear_error(kfp_multi_user, token, package):
    fake, url = kfp_multi_user
    with pytest.raises(GreenfmError, match="multi-user mode; pass --namespace"):
        submit_run(SubmitTarget(url), {}, "r", package)
    assert not fake.runs


def test_multi_user_submit_authenticates_and_runs_in_the_profile(kfp_multi_user, token, package):
    fake, url = kfp_multi_user
    target = SubmitTarget(url, namespace=PROFILE, service_account="default-editor")
    done = submit_run(target, {"train_steps": 3}, "r1", package)
    run = fake.runs[done.run_id]
    assert run["namespace"] == PROFILE and run["service_account"] == "default-editor"
    assert all(r.headers.get("authorization") == "Bearer profile-token" for r in fake.requests[1:])
    (pipeline,) = fake.pipelines.values()
    assert pipeline["namespace"] == PROFILE  # a namespaced (private) pipeline...
    again = submit_run(target, {}, "r2", package)  # ...found again there instead of uploaded twice
    assert again.pipeline_id == done.pipeline_id and len(fake.pipelines) == 1
    recurring = schedule_run(target, {}, "nightly", "0 0 3 * * *", package)
    assert fake.recurring[recurring.recurring_run_id]["namespace"] == PROFILE


def test_multi_user_without_a_token_is_unauthenticated(kfp_multi_user, package, monkeypatch, tmp_path):
    _, url = kfp_multi_user
    monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(tmp_path / "absent"))
    with pytest.raises(GreenfmError, match="401"):
        submit_run(SubmitTarget(url, namespace=PROFILE), {}, "r", package)


def test_another_profile_is_forbidden(kfp_multi_user, token, package):
    _, url = kfp_multi_user
    with pytest.raises(GreenfmError, match="403"):
        submit_run(SubmitTarget(url, namespace="kubeflow-user-other"), {}, "r", package)


def test_cli_submit_passes_namespace_and_service_account(kfp_multi_user, token, package):
    fake, url = kfp_multi_user
    args = ["submit", "--host", url, "--package", str(package), "--namespace", PROFILE]
    result = CliRunner().invoke(app, [*args, "--service-account", "default-editor", "--token-path", str(token)])
    assert result.exit_code == 0, result.output
    (run,) = fake.runs.values()
    assert run["run_id"] == result.stdout.strip().splitlines()[-1] and run["service_account"] == "default-editor"


def _corpus(folder, text: str):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "docs.jsonl").write_text(json.dumps({"text": text}) + "\n")
    return str(folder)


def test_watcher_accepts_a_change_only_when_its_run_succeeded(kfp_server, tmp_path, monkeypatch, package):
    fake, url = kfp_server
    monkeypatch.setattr("pipelines.submit.compile_pipeline", lambda path: package)
    data = _corpus(tmp_path / "data", "hello world")
    store, submitter = FileStateStore(tmp_path / "state.json"), KfpSubmitter(SubmitTarget(url))

    first = watch_once(data, store, submitter)
    assert first.action == "submitted"
    assert watch_once(data, store, submitter).action == "running"  # PENDING: one run at a time
    fake.runs[first.run_id]["state"] = "FAILED"
    retried = watch_once(data, store, submitter)  # the change was not handled: submitted again
    assert retried.action == "submitted" and retried.run_id != first.run_id and len(fake.runs) == 2
    fake.runs[retried.run_id]["state"] = "SUCCEEDED"
    unchanged = watch_once(data, store, submitter)
    assert unchanged.action == "unchanged" and unchanged.run_id == retried.run_id
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["run_id"] == retried.run_id and state["last_failed_run_id"] == first.run_id
    assert state["pending_run_id"] == "" and len(fake.runs) == 2
