"""The RBAC of our manifests against what the code calls: every Kubernetes code path (curation's Spark
operator backend, the PyTorchJob and TrainJob launches, each with a retried step's 409 paths and cleanup, the
watcher's state) runs against an API server that enforces the
rendered overlay's Roles for the account KFP runs the pods as, in the run's namespace. Everything called must
be granted (no 403) and everything granted must be called (no spare verbs)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal

import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from components.common.errors import GreenfmError
from components.common.k8s_jobs import owned, owner_reference
from components.curate.k8s import SPARK_APPLICATION, SparkK8sConfig, build_spark_application, run_spark_application
from components.pretrain.k8s import APIS, BUILDERS, ClusterTrainConfig, job_name, run_training_job
from components.pretrain.train import TrainConfig
from pipelines.watch import WatchState
from pipelines.watch_state import ConfigMapStateStore
from tests import fake_k8s, http_fake

SPARK_KIND = (SPARK_APPLICATION.group, SPARK_APPLICATION.version, SPARK_APPLICATION.plural)
PROFILES = {"overlays/standalone": fake_k8s.STANDALONE, "overlays/multi-user": fake_k8s.MULTI_USER}


@pytest.fixture(params=sorted(PROFILES))
def cluster(request):
    """(fake, url, (namespace, account)) for a cluster with KFP and greenfm's overlay applied."""
    fake = fake_k8s.FakeApiServer.deployed(request.param)
    for served in http_fake.running(fake, fake_k8s.handler(fake)):
        yield (*served, PROFILES[request.param])


STEP_POD = {"POD_NAME": "greenfm-step-pod", "POD_UID": "uid-this-step"}  # the downward API of the step's pod
EARLIER_POD = {"apiVersion": "v1", "kind": "Pod", "name": "greenfm-step-pod-earlier", "uid": "uid-earlier-attempt"}


def _ours(obj: dict) -> bool:
    return [ref["uid"] for ref in obj["metadata"].get("ownerReferences", [])] == [STEP_POD["POD_UID"]]


def _operators(kind, obj):
    """The operators, for the jobs this step's pod owns: a SparkApplication completes, a training job fails.
    Leftovers of an earlier attempt keep the state they were left in."""
    if not _ours(obj):
        return obj
    if kind[-1] == "sparkapplications":
        obj["status"] = {"applicationState": {"state": "COMPLETED"}}
    if kind[-1] in ("pytorchjobs", "trainjobs"):
        obj["status"] = {"conditions": [{"type": "Failed", "status": "True", "message": "out of memory"}]}
    return obj


def _leftover(fake, resource, obj: dict, status: dict) -> None:
    """What an earlier attempt of the step left behind: the same job (same name), owned by that attempt's pod."""
    leftover = json.loads(json.dumps(obj))
    leftover["metadata"]["ownerReferences"] = [EARLIER_POD]
    leftover["status"] = status
    meta = leftover["metadata"]
    fake.objects[((resource.group, resource.version, resource.plural), meta["namespace"], meta["name"])] = leftover


def _spark_operator_path(fake, url: str, account, namespace: str) -> None:
    """A new application; a retry that finds it completed (adopted: get + patch of its owner); one that finds
    a failed leftover (get, delete, get until gone, create); SIGTERM while waiting (delete)."""
    cfg = SparkK8sConfig(backend="operator", namespace=namespace)
    custom = k8s.CustomObjectsApi(fake_k8s.api_client(url, account))

    def application(name: str) -> dict:
        app = build_spark_application(cfg, name, "/workspace/in", "/workspace/out", {})
        return owned(app, owner_reference(namespace))

    def run(app, sleep=lambda s: None) -> str:
        return run_spark_application(app, custom, 60, 0, sleep=sleep)

    assert run(application("greenfm-curate-abc")) == "COMPLETED"
    assert run(application("greenfm-curate-abc")) == "COMPLETED"  # adopted
    assert _ours(fake.objects[(SPARK_KIND, namespace, "greenfm-curate-abc")])

    failed = application("greenfm-curate-def")
    _leftover(fake, SPARK_APPLICATION, failed, {"applicationState": {"state": "FAILED", "errorMessage": "oom"}})
    assert run(failed) == "COMPLETED"  # replaced

    fake.on_get = None  # the operator never gets to it: the run is terminated while the step waits
    with pytest.raises(SystemExit):
        run(application("greenfm-curate-ghi"), sleep=lambda s: os.kill(os.getpid(), signal.SIGTERM))
    assert (SPARK_KIND, namespace, "greenfm-curate-ghi") not in fake.objects
    fake.on_get = _operators


def _training_job_paths(fake, url: str, account, namespace: str, tmp_path) -> None:
    """For each API (PyTorchJob, TrainJob): a retry that finds a failed leftover (get, delete, create, watch,
    delete on failure) and one that finds a running leftover (adopted: get + patch, watch, delete on failure)."""
    tokens = tmp_path / "tokens"
    tokens.mkdir(exist_ok=True)
    (tokens / "train.bin").write_bytes(b"\0" * 64)
    cfg = TrainConfig()
    for api in APIS:
        jcfg = ClusterTrainConfig(
            api=api, namespace=namespace, workspace_mount=str(tmp_path / "ws"), watch_timeout_s=1, timeout_s=30
        )
        name = job_name(tokens, cfg, jcfg)
        workspace = f"{jcfg.workspace_mount}/pretrain/{name}"
        job = BUILDERS[api](name, f"{workspace}/tokens", f"{workspace}/model", cfg, jcfg)
        key = ((jcfg.resource.group, jcfg.resource.version, jcfg.resource.plural), namespace, name)
        final, running = ("Failed", "Running") if api == "pytorchjob" else ("Failed", "Created")
        for condition in (final, running):
            _leftover(fake, jcfg.resource, job, {"conditions": [{"type": condition, "status": "True"}]})
            with pytest.raises(GreenfmError, match="failed: out of memory"):  # and the failed job is deleted
                run_training_job(tokens, tmp_path / "model", cfg, jcfg, api_client=fake_k8s.api_client(url, account))
            assert key not in fake.objects


def _watcher_path(url: str, account, namespace: str) -> None:
    store = ConfigMapStateStore("greenfm-watch-state", namespace, api=k8s.CoreV1Api(fake_k8s.api_client(url, account)))
    store.begin().commit(WatchState(fingerprint="f1", run_id="r1"))  # creates, claims, records
    store.begin().abort()


def test_every_call_is_granted_and_every_grant_is_used(cluster, tmp_path, monkeypatch):
    fake, url, (namespace, account) = cluster
    for var, value in {**STEP_POD, "POD_NAMESPACE": namespace}.items():
        monkeypatch.setenv(var, value)
    fake.on_get = _operators
    _spark_operator_path(fake, url, (namespace, account), namespace)
    _training_job_paths(fake, url, (namespace, account), namespace, tmp_path)
    _watcher_path(url, (namespace, account), namespace)

    denied = [(call, code) for call, code in fake.calls if code in (401, 403, 415, 501)]
    assert not denied
    user = fake_k8s.service_account_user(namespace, account)
    role = fake.rbac.roles[(namespace, "greenfm-run")]
    granted = fake_k8s.Rbac(roles={(namespace, "greenfm-run"): role}, bindings=fake.rbac.bindings).granted(
        user, namespace
    )
    named = {(v, g, r) for v, g, r, n in granted if n}
    called = {
        (c.verb, c.group, c.full_resource, c.name if (c.verb, c.group, c.full_resource) in named else "")
        for c, _ in fake.calls
    }
    assert called == granted, f"granted but never called: {granted - called}; called: {called - granted}"


def test_a_strategic_merge_patch_of_a_custom_resource_is_refused_like_the_apiserver(cluster):
    """Adopting a leftover job patches it; custom resources take merge patches only (415 otherwise), and the
    kubernetes client sends application/merge-patch+json for CustomObjectsApi patches."""
    fake, _, (namespace, account) = cluster
    path = f"/apis/kubeflow.org/v1/namespaces/{namespace}/pytorchjobs/job"
    headers = {"authorization": f"Bearer {fake_k8s.token_for(namespace, account)}"}
    strategic = {**headers, "content-type": "application/strategic-merge-patch+json"}
    status, body = fake.handle("PATCH", path, {"metadata": {}}, {}, strategic)
    assert status == 415 and body["reason"] == "UnsupportedMediaType"
    status, _ = fake.handle("PATCH", path, {"metadata": {}}, {}, {**headers, "content-type": fake_k8s.MERGE_PATCH})
    assert status == 404  # accepted, but there is no such job


def test_jobs_outside_the_run_namespace_are_forbidden(cluster, tmp_path):
    """Today's bug: jobs created in a hard-coded `greenfm` namespace by the run's account get 403."""
    _, url, (namespace, account) = cluster
    app = build_spark_application(SparkK8sConfig(backend="operator", namespace="greenfm"), "c", "/in", "/out", {})
    custom = k8s.CustomObjectsApi(fake_k8s.api_client(url, (namespace, account)))
    with pytest.raises(ApiException) as error:
        run_spark_application(app, custom, 60, 0, sleep=lambda s: None)
    message = json.loads(error.value.body)["message"]
    assert error.value.status == 403 and message == (
        'sparkapplications.sparkoperator.k8s.io is forbidden: User "system:serviceaccount:'
        f'{namespace}:{account}" cannot create resource "sparkapplications" in API group "sparkoperator.k8s.io" '
        'in the namespace "greenfm"'
    )


def test_the_jobs_go_to_the_step_namespace(monkeypatch):
    from components.pretrain.launch import LaunchConfig, cluster_config

    monkeypatch.setenv("POD_NAMESPACE", "kubeflow-user-example-com")  # set by the pipeline (downward API)
    assert SparkK8sConfig.from_env().namespace == "kubeflow-user-example-com"
    assert cluster_config(LaunchConfig(backend="kubernetes")).namespace == "kubeflow-user-example-com"


def test_fake_enforces_rbac_like_the_apiserver(cluster):
    fake, url, (namespace, account) = cluster
    core = k8s.CoreV1Api(fake_k8s.api_client(url, (namespace, account)))
    with pytest.raises(ApiException) as secrets:  # tokens reach pods as env from secretKeyRef, never via the API
        core.read_namespaced_secret("greenfm-carbon-tokens", namespace)
    assert secrets.value.status == 403
    assert json.loads(secrets.value.body)["message"] == (
        f'secrets "greenfm-carbon-tokens" is forbidden: User "system:serviceaccount:{namespace}:{account}" '
        f'cannot get resource "secrets" in API group "" in the namespace "{namespace}"'
    )
    with pytest.raises(ApiException) as anonymous:
        k8s.CoreV1Api(fake_k8s.api_client(url, None)).read_namespaced_config_map("greenfm-watch-state", namespace)
    assert anonymous.value.status == 401
    with pytest.raises(ApiException) as missing:  # allowed, but not there
        core.read_namespaced_config_map("greenfm-watch-state", namespace)
    assert missing.value.status == 404
    with pytest.raises(ApiException) as elsewhere:  # a RoleBinding grants nothing outside its namespace
        core.read_namespaced_config_map("greenfm-watch-state", "default")
    assert elsewhere.value.status == 403

    # resourceNames, as the authorizer applies them: get/update of that name only, never list or create.
    watcher_only = fake_k8s.Rbac(roles={(namespace, "greenfm-run"): fake.rbac.roles[(namespace, "greenfm-run")]})
    watcher_only.bindings = [b for b in fake.rbac.bindings if b[1]["name"] == "greenfm-run"]
    user = fake_k8s.service_account_user(namespace, account)

    def allowed(method, path, query=None):
        info = fake_k8s.request_info(method, path, query or {})
        return watcher_only.allows(dataclasses.replace(info, user=user))

    base = f"/api/v1/namespaces/{namespace}/configmaps"
    assert allowed("GET", f"{base}/greenfm-watch-state") and allowed("PUT", f"{base}/greenfm-watch-state")
    assert not allowed("GET", f"{base}/other") and not allowed("GET", base) and allowed("POST", base)
    assert not allowed("DELETE", f"{base}/greenfm-watch-state")
