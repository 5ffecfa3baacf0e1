"""Every manifest validates against the Kubernetes OpenAPI schema (kubernetes-validate, strict: unknown fields
fail), CRD-based ones against the vendored CRD schemas, and the kustomize-rendered overlays too. Plus the
policy the issue asks for: restricted pod security, least-privilege RBAC, explicit storage class."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from components.carbon.catalog import parse_catalog

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "manifests"
CRDS = MANIFESTS / "crds"
K8S_VERSION = "1.33.0"  # a current Kubernetes minor; kubernetes-validate ships its schemas
CRD_SCHEMAS = {
    ("kubeflow.org/v1", "PyTorchJob"): CRDS / "pytorchjob-kubeflow.org-v1.schema.yaml",
    ("sparkoperator.k8s.io/v1beta2", "SparkApplication"): CRDS
    / "sparkapplication-sparkoperator.k8s.io-v1beta2.schema.yaml",
}
KUSTOMIZATIONS = [
    "base",
    "overlays/standalone",
    "overlays/multi-user",
    "overlays/dev",
    "overlays/multi-region",
    "jobs",
]
# Where each overlay deploys, and the account KFP runs that namespace's pipeline pods as.
OVERLAY_ACCOUNTS = {
    "overlays/standalone": ("kubeflow", "pipeline-runner"),
    "overlays/multi-user": ("kubeflow-user-example-com", "default-editor"),
    "overlays/dev": ("kubeflow", "pipeline-runner"),
    "overlays/multi-region": ("kubeflow", "pipeline-runner"),
}


def manifest_files() -> list[Path]:
    return sorted(
        p
        for p in MANIFESTS.rglob("*.yaml")
        if p.name != "kustomization.yaml"
        and CRDS not in p.parents
        and p.name != "regions.yaml"
        and not p.name.endswith("-patch.yaml")  # JSON patches, checked rendered
    )


def load_all(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def pod_template(template: dict) -> dict:
    """Wrap a pod template as a v1 PodTemplate so kubernetes-validate checks it with the core schema."""
    return {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}, "template": template}


def validate(doc: dict) -> None:
    key = (doc["apiVersion"], doc["kind"])
    if key in CRD_SCHEMAS:
        jsonschema.validate(doc, yaml.safe_load(CRD_SCHEMAS[key].read_text()))
        for spec in doc["spec"].get("pytorchReplicaSpecs", {}).values():
            kubernetes_validate.validate(pod_template(spec["template"]), K8S_VERSION, strict=True)
        return
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def pod_specs(doc: dict) -> list[dict]:
    if doc["kind"] == "CronJob":
        return [doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]]
    if doc["kind"] == "PyTorchJob":
        return [r["template"]["spec"] for r in doc["spec"]["pytorchReplicaSpecs"].values()]
    return []


def kustomize(path: str) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with built-in kustomize) is not installed")
    out = subprocess.run([kubectl, "kustomize", str(MANIFESTS / path)], capture_output=True, text=True, check=True)
    return load_all(out.stdout)


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(MANIFESTS)))
def test_manifest_file_validates(path):
    docs = load_all(path.read_text())
    assert docs
    for doc in docs:
        validate(doc)


@pytest.mark.parametrize("overlay", KUSTOMIZATIONS)
def test_rendered_kustomization_validates(overlay):
    docs = kustomize(overlay)
    assert docs
    for doc in docs:
        validate(doc)


@pytest.mark.parametrize("overlay", sorted(OVERLAY_ACCOUNTS))
def test_overlay_puts_everything_in_the_run_namespace_for_the_run_account(overlay):
    """KFP runs the pipeline's pods in the run's namespace as that namespace's pipeline account: the PVC,
    ConfigMaps and RBAC must be there, bound to that account."""
    namespace, account = OVERLAY_ACCOUNTS[overlay]
    docs = kustomize(overlay)
    assert not [d for d in docs if d["kind"] == "Namespace"]  # the run's namespace exists (KFP or the profile)
    for doc in docs:
        if doc["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"].get("namespace") == namespace, (doc["kind"], doc["metadata"]["name"])
    bindings = {d["metadata"]["name"]: d for d in docs if d["kind"].endswith("RoleBinding")}
    run_subject = {"kind": "ServiceAccount", "name": account}
    assert bindings["greenfm-run"]["subjects"] == [run_subject]
    assert run_subject in bindings["greenfm-spark-driver"]["subjects"]
    (nodes,) = [d for d in docs if d["kind"] == "ClusterRoleBinding"]
    assert nodes["metadata"]["name"] == f"greenfm-node-reader-{namespace}"  # one per namespace, cluster-wide
    assert nodes["subjects"] == [{**run_subject, "namespace": namespace}]
    (cron,) = [d for d in docs if d["kind"] == "CronJob"]
    assert cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["serviceAccountName"] == account


def test_multi_user_watcher_authenticates_with_a_projected_kfp_token():
    from kfp.client import KF_PIPELINES_SA_TOKEN_PATH

    (cron,) = [d for d in kustomize("overlays/multi-user") if d["kind"] == "CronJob"]
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (token,) = [v for v in pod["volumes"] if "projected" in v]
    (source,) = token["projected"]["sources"]
    assert source["serviceAccountToken"]["audience"] == "pipelines.kubeflow.org"
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == token["name"]]
    assert f"{mount['mountPath']}/{source['serviceAccountToken']['path']}" == KF_PIPELINES_SA_TOKEN_PATH


def test_schema_validation_catches_mistakes():
    cronjob = load_all((MANIFESTS / "base/watch-cronjob.yaml").read_text())[0]
    cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(cronjob)
    job = load_all((MANIFESTS / "jobs/pytorchjob-pretrain.yaml").read_text())[0]
    job["spec"]["pytorchReplicaSpecs"]["Chief"] = job["spec"]["pytorchReplicaSpecs"].pop("Worker")
    with pytest.raises(jsonschema.ValidationError):
        validate(job)


def _restricted(container_ctx: dict, pod_ctx: dict) -> None:
    assert container_ctx["allowPrivilegeEscalation"] is False
    assert container_ctx["capabilities"]["drop"] == ["ALL"]
    assert container_ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is True
    seccomp = container_ctx.get("seccompProfile") or pod_ctx.get("seccompProfile")
    assert seccomp == {"type": "RuntimeDefault"}


@pytest.mark.parametrize("overlay", KUSTOMIZATIONS)
def test_pods_meet_restricted_pod_security(overlay):
    pods = [spec for doc in kustomize(overlay) for spec in pod_specs(doc)]
    assert pods or overlay == "jobs"
    for spec in pods:
        ctx = spec.get("securityContext", {})
        assert ctx.get("runAsUser", 1) != 0
        for container in spec.get("initContainers", []) + spec["containers"]:
            _restricted(container["securityContext"], ctx)
            assert "resources" in container or container in spec.get("initContainers", [])


def test_rbac_is_least_privilege():
    docs = kustomize("base")
    (cluster_role,) = [d for d in docs if d["kind"] == "ClusterRole"]  # placement reads node labels, nothing else
    assert cluster_role["rules"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]
    roles = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Role"}
    for role in roles.values():
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], (role["metadata"]["name"], rule)
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])
            assert "secrets" not in rule["resources"]  # tokens arrive as env from secretKeyRef, never via the API
    launcher = roles["greenfm-run"]["rules"]  # exactly what the code calls: tests/test_rbac.py
    state_rules = [r for r in launcher if "configmaps" in r["resources"] and "update" in r["verbs"]]
    assert state_rules and all(r.get("resourceNames") == ["greenfm-watch-state"] for r in state_rules)


@pytest.mark.parametrize(
    "overlay,storage_class",
    [
        ("base", "standard-rwx"),
        ("overlays/standalone", "standard-rwx"),
        ("overlays/dev", "standard"),
        ("overlays/multi-region", "enterprise-multishare-rwx"),
    ],
)
def test_workspace_has_explicit_storage_class(overlay, storage_class):
    (pvc,) = [d for d in kustomize(overlay) if d["kind"] == "PersistentVolumeClaim"]
    assert pvc["spec"]["storageClassName"] == storage_class


def test_cronjob_watches_once_at_a_time_with_secret_references():
    (cron,) = [d for d in kustomize("base") if d["kind"] == "CronJob"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["greenfm"] and container["args"][0] == "watch"
    assert "configmap:greenfm-watch-state" in container["args"]
    secret_refs = [e["valueFrom"]["secretKeyRef"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})]
    assert secret_refs and {r["name"] for r in secret_refs} == {"greenfm-carbon-tokens"}
    assert not [d for d in kustomize("base") if d["kind"] == "Secret"]  # referenced, never committed


def test_multi_region_overlay_carries_region_catalog():
    docs = kustomize("overlays/multi-region")
    (catalog,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "greenfm-regions"]
    parsed = parse_catalog(catalog["data"]["regions.yaml"], "ConfigMap greenfm-regions")
    assert len(parsed.regions) >= 2 and all(region.location() for region in parsed.regions)
