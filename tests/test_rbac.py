"""The RBAC of our manifests against what the code calls: every Kubernetes code path (curation's Spark
operator backend, the PyTorchJob launch, the watcher's state) runs against an API server that enforces the
rendered overlay's Roles for the account KFP runs the pods as, in the run's namespace. Everything called must
be granted (no 403) and everything granted must be called (no spare verbs)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from components.common.errors import GreenfmError
from components.curate.k8s import SparkK8sConfig, build_spark_application, run_spark_application
from components.pretrain.k8s import ClusterTrainConfig, run_training_job
from components.pretrain.train import TrainConfig
from pipelines.watch import WatchState
from pipelines.watch_state import ConfigMapStateStore
from tests import fake_k8s, http_fake

PROFILES = {"overlays/standalone": fake_k8s.STANDALONE, "overlays/multi-user": fake_k8s.MULTI_USER}


@pytest.fixture(params=sorted(PROFILES))
def cluster(request):
    """(fake, url, (namespace, account)) for a cluster with KFP and greenfm's overlay applied."""
    fake = fake_k8s.FakeApiServer.deployed(request.param)
    for served in http_fake.running(fake, fake_k8s.handler(fake)):
        yield (*served, PROFILES[request.param])


def _spark_operator_path(url: str, account, namespace: str) -> None:
    cfg = SparkK8sConfig(backend="operator", namespace=namespace)
    app = build_spark_application(cfg, "greenfm-curate-abc", "/workspace/in", "/workspace/out", {})
    run_spark_application(app, k8s.CustomObjectsApi(fake_k8s.api_client(url, account)), 60, 0, sleep=lambda s: None)


def _pytorchjob_path(url: str, account, namespace: str, tmp_path) -> None:
    tokens = tmp_path / "tokens"
    tokens.mkdir(exist_ok=True)
    (tokens / "train.bin").write_bytes(b"\0" * 64)
    jcfg = ClusterTrainConfig(
        namespace=namespace, workspace_mount=str(tmp_path / "ws"), watch_timeout_s=1, timeout_s=30
    )
    with pytest.raises(GreenfmError, match="failed: out of memory"):  # failed: the job is deleted
        run_training_job(tokens, tmp_path / "model", TrainConfig(), jcfg, api_client=fake_k8s.api_client(url, account))


def _watcher_path(url: str, account, namespace: str) -> None:
    store = ConfigMapStateStore("greenfm-watch-state", namespace, api=k8s.CoreV1Api(fake_k8s.api_client(url, account)))
    store.begin().commit(WatchState(fingerprint="f1", run_id="r1"))  # creates, claims, records
    store.begin().abort()


def _finish_jobs(kind, obj):
    """The operators: a SparkApplication completes, a PyTorchJob fails."""
    if kind[-1] == "sparkapplications":
        obj["status"] = {"applicationState": {"state": "COMPLETED"}}
    if kind[-1] == "pytorchjobs":
        obj["status"] = {"conditions": [{"type": "Failed", "status": "True", "message": "out of memory"}]}
    return obj


def test_every_call_is_granted_and_every_grant_is_used(cluster, tmp_path):
    fake, url, (namespace, account) = cluster
    fake.on_get = _finish_jobs
    _spark_operator_path(url, (namespace, account), namespace)
    _pytorchjob_path(url, (namespace, account), namespace, tmp_path)
    _watcher_path(url, (namespace, account), namespace)

    denied = [(call, code) for call, code in fake.calls if code in (401, 403)]
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


def test_jobs_outside_the_run_namespace_are_forbidden(cluster, tmp_path):
    """Today's bug: jobs created in a hard-coded `greenfm` namespace by the run's account get 403."""
    _, url, (namespace, account) = cluster
    with pytest.raises(ApiException) as error:
        _spark_operator_path(url, (namespace, account), "greenfm")
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
