"""Submit the compiled pipeline to a Kubeflow Pipelines server: upload it (a new version when the pipeline
already exists), then start a run or create a recurring run, all through kfp.Client.

Parameters are checked against RunConfig before anything reaches the server, so a typo fails here in
milliseconds instead of as a failed run in the UI.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from components.common.errors import GreenfmError
from pipelines.compile import compile_pipeline
from pipelines.config import load_config
from pipelines.dag import PIPELINE_NAME

DEFAULT_EXPERIMENT = "greenfm"


@dataclass
class SubmitTarget:
    """Where and under which names a pipeline is submitted."""

    host: str
    experiment: str = DEFAULT_EXPERIMENT
    pipeline_name: str = PIPELINE_NAME
    namespace: str | None = None  # multi-user Kubeflow: the profile namespace
    service_account: str | None = None


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


def _client(target: SubmitTarget):
    import kfp

    return kfp.Client(host=target.host, namespace=target.namespace or "kubeflow")


def _version_name(package: Path) -> str:
    # Content-addressed: submitting the same compiled pipeline twice reuses its version instead of failing.
    return "v-" + hashlib.sha256(package.read_bytes()).hexdigest()[:12]


def upload(client, package: Path, target: SubmitTarget) -> tuple[str, str]:
    """(pipeline_id, version_id) for `package`, uploading only what the server does not have yet."""
    version_name = _version_name(package)
    pipeline_id = client.get_pipeline_id(target.pipeline_name)
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
        pipeline_id, version_id = upload(client, Path(package), target)
        experiment = client.create_experiment(target.experiment, namespace=target.namespace)  # get-or-create
        yield _Prepared(client, pipeline_id, version_id, experiment.experiment_id)


def submit_run(target: SubmitTarget, params: dict, run_name: str, package: Path | None = None) -> Submitted:
    """Upload (if needed) and start one run; returns the ids the server assigned."""
    with _prepared(target, package) as ready:
        run = ready.client.run_pipeline(ready.experiment_id, run_name, **ready.template(target, params))
    return Submitted(ready.pipeline_id, ready.version_id, ready.experiment_id, run_id=run.run_id, parameters=params)


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
    return Submitted(
        ready.pipeline_id,
        ready.version_id,
        ready.experiment_id,
        recurring_run_id=recurring.recurring_run_id,
        parameters=params,
    )
