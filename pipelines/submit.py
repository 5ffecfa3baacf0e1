"""Submit the compiled pipeline to a Kubeflow Pipelines server: upload it (a new version when the pipeline
already exists), then start a run or create a recurring run, all through kfp.Client.

Parameters are checked against RunConfig, and the server's release against what the compiled IR needs
(pipelines.kfp_versions), before anything is created, so a typo or an old backend fails here in seconds
instead of as a failed run in the UI. Multi-user Kubeflow: the run goes to the profile namespace and the client
authenticates with a projected service account token (audience pipelines.kubeflow.org) when one is mounted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from components.common.errors import GreenfmError
from pipelines.compile import compile_pipeline
from pipelines.config import load_config
from pipelines.dag import PIPELINE_NAME
from pipelines.kfp_versions import check_backend, required_backend

DEFAULT_EXPERIMENT = "greenfm"


@dataclass
class SubmitTarget:
    """Where and under which names a pipeline is submitted."""

    host: str
    experiment: str = DEFAULT_EXPERIMENT
    pipeline_name: str = PIPELINE_NAME
    namespace: str | None = None  # multi-user Kubeflow: the profile namespace (required there)
    service_account: str | None = None  # the run's pods' account; None: the server's default for the namespace
    token_path: str | None = None  # projected KFP token; None: $KF_PIPELINES_SA_TOKEN_PATH or kfp's default path


@dataclass
class Submitted:
    pipeline_id: str
    version_id: str
    experiment_id: str
    run_id: str = ""
    recurring_run_id: str = ""
    parameters: dict = field(default_factory=dict)


def parse_params(pairs: list[str]) -> dict:
    """`k=v` strings → typed pipeline arguments. Unknown names and bad types fail (via RunConfig's loader)."""
    raw: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise GreenfmError(f"--param {pair!r}: expected NAME=VALUE")
        raw[key.strip()] = value
    config = load_config(None, **raw)
    # Only the names given: the server fills the rest from the pipeline's defaults (the UI form shows the same).
    return {key: getattr(config, key) for key in raw}


def _token_path(target: SubmitTarget) -> str | None:
    """The projected service account token to authenticate with, when there is one (in a pod)."""
    from kfp.client import KF_PIPELINES_SA_TOKEN_ENV, KF_PIPELINES_SA_TOKEN_PATH

    if target.token_path:
        if not os.path.isfile(target.token_path):
            raise GreenfmError(f"--token-path {target.token_path}: no such file")
        return target.token_path
    path = os.environ.get(KF_PIPELINES_SA_TOKEN_ENV) or KF_PIPELINES_SA_TOKEN_PATH
    return path if os.path.isfile(path) else None


def _client(target: SubmitTarget):
    import kfp
    from kfp.client.set_volume_credentials import ServiceAccountTokenVolumeCredentials

    token = _token_path(target)
    credentials = ServiceAccountTokenVolumeCredentials(token) if token else None
    return kfp.Client(host=target.host, namespace=target.namespace or "kubeflow", credentials=credentials)


def server_health(client) -> dict:
    """The server's healthz as it sent it: kfp_server_api's model drops `tag_name`, the release."""
    response = client._healthz_api.healthz_service_get_healthz(_preload_content=False)
    return json.loads(response.data or b"{}")


def _package_documents(package: Path) -> list[dict]:
    """The compiled pipeline's YAML documents (the pipeline spec, then its platform config if any)."""
    import yaml

    try:
        documents = [doc for doc in yaml.safe_load_all(package.read_text()) if doc]
    except yaml.YAMLError as error:
        problem = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise GreenfmError(f"{package}: not a compiled pipeline (YAML: {problem})") from None
    if not documents or not all(isinstance(doc, dict) for doc in documents):
        raise GreenfmError(f"{package}: not a compiled pipeline (expected YAML mappings)")
    return documents


def check_server(client, target: SubmitTarget, documents: list[dict]) -> None:
    """Refuse what the server would fail later: a multi-user server without a namespace, an old backend.
    `documents`: the package's (_package_documents)."""
    health = server_health(client)
    if health.get("multi_user") and not target.namespace:
        raise GreenfmError(
            f"{target.host}: Kubeflow Pipelines runs in multi-user mode; pass --namespace (your profile namespace)"
        )
    platforms = documents[1].get("platforms", {}) if len(documents) > 1 else {}
    check_backend(target.host, health.get("tag_name", ""), *required_backend(platforms))


def _version_name(documents: list[dict]) -> str:
    """Content-addressed: submitting the same pipeline twice reuses its version instead of failing. The hash is of
    the YAML's content, not its bytes: kfp's header comment prints a list or dict default (gpu_tolerations) in a
    protobuf map's order, which differs from one compiling process to the next."""
    canonical = json.dumps(documents, sort_keys=True, separators=(",", ":"))
    return "v-" + hashlib.sha256(canonical.encode()).hexdigest()[:12]


def upload(client, package: Path, target: SubmitTarget, documents: list[dict]) -> tuple[str, str]:
    """(pipeline_id, version_id) for `package` (its `documents`), uploading only what the server does not have
    yet."""
    version_name = _version_name(documents)
    pipeline_id = _pipeline_id(client, target)
    if pipeline_id is None:
        pipeline = client.upload_pipeline(str(package), pipeline_name=target.pipeline_name, namespace=target.namespace)
        pipeline_id = pipeline.pipeline_id
    else:
        versions = client.list_pipeline_versions(pipeline_id, page_size=200).pipeline_versions or []
        for version in versions:
            if version.display_name == version_name:
                return pipeline_id, version.pipeline_version_id
        version = client.upload_pipeline_version(str(package), version_name, pipeline_id=pipeline_id)
        return pipeline_id, version.pipeline_version_id
    # A new pipeline gets one version from the upload itself; look it up (the upload response has no version id).
    versions = (
        client.list_pipeline_versions(pipeline_id, sort_by="created_at desc", page_size=1).pipeline_versions or []
    )
    if not versions:
        raise GreenfmError(f"{target.host}: pipeline {target.pipeline_name} was uploaded but has no version")
    return pipeline_id, versions[0].pipeline_version_id


def _pipeline_id(client, target: SubmitTarget) -> str | None:
    """The pipeline's id in the target's namespace (kfp.Client.get_pipeline_id sees only shared pipelines)."""
    name_filter = json.dumps(
        {"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": target.pipeline_name}]}
    )
    found = client.list_pipelines(filter=name_filter, namespace=target.namespace, page_size=2).pipelines or []
    if len(found) > 1:
        raise GreenfmError(f"{target.host}: {len(found)} pipelines named {target.pipeline_name}; names must be unique")
    return found[0].pipeline_id if found else None


@dataclass
class _Prepared:
    client: object
    pipeline_id: str
    version_id: str
    experiment_id: str

    def template(self, target: SubmitTarget, params: dict) -> dict:
        """The arguments run_pipeline and create_recurring_run share: which version, with what, as whom."""
        return {
            "params": params,
            "pipeline_id": self.pipeline_id,
            "version_id": self.version_id,
            "service_account": target.service_account,
        }

    def submitted(self, params: dict, run_id: str = "", recurring_run_id: str = "") -> Submitted:
        return Submitted(
            self.pipeline_id, self.version_id, self.experiment_id, run_id, recurring_run_id, parameters=params
        )


@contextlib.contextmanager
def _server_errors(host: str):
    """Server and network failures as one-line user errors (the CLI shows them without a traceback)."""
    from kfp_server_api.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        yield
    except ApiException as error:
        detail = (error.body or "").strip().replace("\n", " ")[:300]
        raise GreenfmError(f"{host}: KFP API answered {error.status} {error.reason}: {detail}") from None
    except HTTPError as error:
        raise GreenfmError(f"{host}: cannot reach the KFP API ({type(error).__name__})") from None


@contextlib.contextmanager
def _prepared(target: SubmitTarget, package: Path | None):
    """Pipeline version and experiment ready on the server; kfp.Client's printed UI links go to stderr so
    stdout keeps only the ids a script reads."""
    with (
        tempfile.TemporaryDirectory(prefix="greenfm-submit-") as tmp,
        contextlib.redirect_stdout(sys.stderr),
        _server_errors(target.host),
    ):
        client = _client(target)
        package = package or compile_pipeline(Path(tmp) / "greenfm-pipeline.yaml")
        documents = _package_documents(Path(package))
        check_server(client, target, documents)
        pipeline_id, version_id = upload(client, Path(package), target, documents)
        experiment = client.create_experiment(target.experiment, namespace=target.namespace)  # get-or-create
        yield _Prepared(client, pipeline_id, version_id, experiment.experiment_id)


def submit_run(target: SubmitTarget, params: dict, run_name: str, package: Path | None = None) -> Submitted:
    """Upload (if needed) and start one run; returns the ids the server assigned."""
    with _prepared(target, package) as ready:
        run = ready.client.run_pipeline(ready.experiment_id, run_name, **ready.template(target, params))
    return ready.submitted(params, run_id=run.run_id)


def run_state(target: SubmitTarget, run_id: str) -> str:
    """The server's state of a run (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED, ...)."""
    with contextlib.redirect_stdout(sys.stderr), _server_errors(target.host):
        return str(_client(target).get_run(run_id).state or "")


# A one-off schedule: KFP has no one-time trigger (a schedule without one runs when it is created), but the
# ScheduledWorkflow controller starts a periodic schedule's first run at start_time + interval and none after
# end_time (backend/src/crd/controller/scheduledworkflow/util/periodic_schedule.go), so start_time = T − interval
# and end_time = T run it exactly once, at T.
ONE_OFF_INTERVAL_S = 3600


def one_off_trigger(start: datetime) -> dict:
    """create_recurring_run's trigger arguments for a single run at `start` (whole seconds, UTC)."""
    at = start.astimezone(UTC).replace(microsecond=0)
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    return {
        "start_time": (at - timedelta(seconds=ONE_OFF_INTERVAL_S)).strftime(stamp),
        "end_time": at.strftime(stamp),
        "interval_second": ONE_OFF_INTERVAL_S,
    }


def schedule_once(
    target: SubmitTarget, params: dict, name: str, start: datetime, package: Path | None = None
) -> Submitted:
    """Upload (if needed) and create a schedule that starts one run at `start` (a time shift for a cleaner grid,
    instead of a pod that sleeps until then). The run it starts is found by its recurring_run_id."""
    with _prepared(target, package) as ready:
        recurring = ready.client.create_recurring_run(
            ready.experiment_id,
            name,
            max_concurrency=1,
            no_catchup=False,  # a controller that was down still starts the run when it is back
            **one_off_trigger(start),
            **ready.template(target, params),
        )
    return ready.submitted(params, recurring_run_id=recurring.recurring_run_id)


def scheduled_run_state(target: SubmitTarget, recurring_run_id: str) -> tuple[str, str]:
    """(run id, state) of the run a one-off schedule started; ("", "") while it has not started yet."""
    predicate = {"operation": "EQUALS", "key": "recurring_run_id", "stringValue": recurring_run_id}
    with contextlib.redirect_stdout(sys.stderr), _server_errors(target.host):
        runs = (
            _client(target)
            .list_runs(namespace=target.namespace, filter=json.dumps({"predicates": [predicate]}), page_size=10)
            .runs
            or []
        )
    if not runs:
        return "", ""
    newest = max(runs, key=lambda run: str(run.created_at or ""))
    return str(newest.run_id), str(newest.state or "")


def validate_cron(cron: str) -> str:
    """KFP's scheduler takes 6 fields (seconds first); a 5-field crontab line is a common mistake."""
    fields = cron.split()
    if len(fields) != 6:
        raise GreenfmError(
            f"--cron {cron!r}: KFP needs 6 fields (seconds minutes hours day month weekday), got {len(fields)}"
        )
    return " ".join(fields)


def schedule_run(
    target: SubmitTarget, params: dict, name: str, cron: str, package: Path | None = None, catch_up: bool = False
) -> Submitted:
    """Upload (if needed) and create a recurring run; one at a time (max_concurrency=1)."""
    cron = validate_cron(cron)
    with _prepared(target, package) as ready:
        recurring = ready.client.create_recurring_run(
            ready.experiment_id,
            name,
            cron_expression=cron,
            max_concurrency=1,  # a pretraining run must not overlap the next one on the same data
            no_catchup=not catch_up,
            **ready.template(target, params),
        )
    return ready.submitted(params, recurring_run_id=recurring.recurring_run_id)
