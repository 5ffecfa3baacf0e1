"""Spark on Kubernetes for the curation step, chosen by configuration (environment variables on the step's pod):

- local (default): Spark inside the step's container, master local[*].
- client: the step's pod is the Spark driver; executors are pods started against a k8s://https://... master.
- operator: the step creates a SparkApplication (Spark Operator, sparkoperator.k8s.io/v1beta2), waits for it,
  and copies the result from the shared workspace volume into the step's output.

Executors run images/spark.Dockerfile, which carries the same Python and greenfm as the driver, so the
Python UDFs of the curation steps behave the same as locally.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import yaml

from components.common.cluster import WORKSPACE_MOUNT, WORKSPACE_PVC, pod_namespace
from components.common.errors import GreenfmError
from components.common.images import SPARK_IMAGE
from components.common.k8s_jobs import CustomResource, create_custom_object, custom_objects_api

BACKENDS = ("local", "client", "operator")
SPARK_APP_GROUP, SPARK_APP_VERSION, SPARK_APP_PLURAL = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"
SPARK_APPLICATION = CustomResource(SPARK_APP_GROUP, SPARK_APP_VERSION, SPARK_APP_PLURAL, "SparkApplication")
# Where images/spark.Dockerfile puts this file: the SparkApplication driver runs it.
DRIVER_SCRIPT = "local:///opt/greenfm/components/curate/k8s.py"
SUCCEEDED, FAILED = {"COMPLETED"}, {"FAILED", "SUBMISSION_FAILED"}

# Restricted Pod Security Standard: what every pod in the greenfm namespace must declare.
RESTRICTED_CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
SPARK_UID = 10001  # images/spark.Dockerfile's user, the driver's: both write the same output folder


# SparkK8sConfig field -> environment variable (the deployment's ConfigMap greenfm-spark sets them).
_ENV_FIELDS = {
    "image": "GREENFM_SPARK_IMAGE",
    "service_account": "GREENFM_SPARK_SERVICE_ACCOUNT",
    "executors": "GREENFM_SPARK_EXECUTORS",
    "executor_cores": "GREENFM_SPARK_EXECUTOR_CORES",
    "executor_memory": "GREENFM_SPARK_EXECUTOR_MEMORY",
    "driver_memory": "GREENFM_SPARK_DRIVER_MEMORY",
    "workspace_pvc": "GREENFM_WORKSPACE_PVC",
    "workspace_mount": "GREENFM_WORKSPACE_MOUNT",
}
SPARK_ENV = ("GREENFM_SPARK_MASTER", "GREENFM_SPARK_BACKEND", "GREENFM_NODE_SELECTOR", *_ENV_FIELDS.values())


@dataclass
class SparkK8sConfig:
    backend: str = "local"
    master: str = "k8s://https://kubernetes.default.svc:443"  # client mode: the in-cluster API server
    namespace: str = field(default_factory=pod_namespace)  # the step's own: the only one its account may use
    image: str = SPARK_IMAGE
    service_account: str = "greenfm-spark"  # may create executor pods (manifests/base/rbac-spark.yaml)
    executors: int = 2
    executor_cores: int = 1
    executor_memory: str = "4g"
    driver_cores: int = 1
    driver_memory: str = "4g"
    workspace_pvc: str = WORKSPACE_PVC
    workspace_mount: str = WORKSPACE_MOUNT
    node_selector: dict = field(default_factory=dict)  # e.g. {"topology.kubernetes.io/region": "europe-north1"}
    spark_version: str = ""  # default: the driver's pyspark version, which executors must match
    timeout_s: int = 6 * 3600
    poll_s: float = 10.0

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise GreenfmError(f"spark backend {self.backend!r}: expected one of {', '.join(BACKENDS)}")
        if self.backend == "client" and not self.master.startswith("k8s://"):
            raise GreenfmError(f"spark master {self.master!r}: client mode needs k8s://https://HOST:PORT")
        if not self.spark_version:
            import pyspark

            self.spark_version = pyspark.__version__

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SparkK8sConfig:
        """GREENFM_SPARK_* variables; a k8s:// GREENFM_SPARK_MASTER alone selects client mode."""
        env = os.environ if env is None else env
        master = env.get("GREENFM_SPARK_MASTER", "")
        backend = env.get("GREENFM_SPARK_BACKEND") or ("client" if master.startswith("k8s://") else "local")
        values: dict = {"backend": backend, "namespace": pod_namespace(env)}
        if master:
            values["master"] = master
        defaults = cls.__dataclass_fields__
        for attr, var in _ENV_FIELDS.items():
            if var in env:
                values[attr] = int(env[var]) if defaults[attr].type == "int" else env[var]
        if env.get("GREENFM_NODE_SELECTOR"):
            values["node_selector"] = json.loads(env["GREENFM_NODE_SELECTOR"])
        return cls(**values)


def from_pipeline(backend: str, executors: int, node_selector: dict | None, env: dict | None = None) -> SparkK8sConfig:
    """The curate step's Spark settings: the run chooses the backend, executor count and placement (the
    select-region step's node selector); the deployment's ConfigMap greenfm-spark, as GREENFM_* environment
    variables, supplies the cluster details (namespace, image, service account, volume, sizes)."""
    cfg = SparkK8sConfig.from_env(env)
    return replace(
        cfg,
        backend=backend or cfg.backend,
        executors=executors if executors > 0 else cfg.executors,
        node_selector=dict(node_selector) if node_selector else cfg.node_selector,
    )


# ---------------------------------------------------------------- client mode: spark.kubernetes.* conf


def executor_pod_template(cfg: SparkK8sConfig) -> dict:
    """Executor pods must pass the namespace's restricted Pod Security admission; Spark has no conf keys for
    securityContext, only a pod template."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "spec": {
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": SPARK_UID,
                "fsGroup": SPARK_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [{"name": "spark-kubernetes-executor", "securityContext": RESTRICTED_CONTAINER_SECURITY}],
        },
    }


def client_mode_conf(cfg: SparkK8sConfig, template_dir: str | Path | None = None) -> dict[str, str]:
    """Spark conf for a driver in this pod and executor pods in `cfg.namespace`."""
    template_dir = Path(template_dir or tempfile.mkdtemp(prefix="greenfm-spark-"))
    template = template_dir / "executor-pod.yaml"
    template.write_text(yaml.safe_dump(executor_pod_template(cfg)))
    volume = "spark.kubernetes.executor.volumes.persistentVolumeClaim.workspace"
    conf = {
        "spark.kubernetes.namespace": cfg.namespace,
        "spark.kubernetes.container.image": cfg.image,
        "spark.kubernetes.authenticate.driver.serviceAccountName": cfg.service_account,
        "spark.kubernetes.executor.podTemplateFile": str(template),
        "spark.kubernetes.executor.deleteOnTermination": "true",
        "spark.executor.instances": str(cfg.executors),
        "spark.executor.cores": str(cfg.executor_cores),
        "spark.executor.memory": cfg.executor_memory,
        # Executors dial back to the driver: advertise the pod IP (downward API POD_IP), listen everywhere.
        "spark.driver.host": os.environ.get("POD_IP", os.environ.get("HOSTNAME", "localhost")),
        "spark.driver.bindAddress": "0.0.0.0",
        # Input and output live on the shared workspace volume, mounted at the same path as in the driver.
        f"{volume}.options.claimName": cfg.workspace_pvc,
        f"{volume}.mount.path": cfg.workspace_mount,
    }
    for key, value in cfg.node_selector.items():
        conf[f"spark.kubernetes.node.selector.{key}"] = value
    return conf


# ---------------------------------------------------------------- operator mode: SparkApplication


def application_name(input_uri: str, output_dir: str, config: dict) -> str:
    """Deterministic per (input, output, config): a retried step finds its own application (409 → reuse)."""
    digest = hashlib.sha256(json.dumps([input_uri, output_dir, config], sort_keys=True).encode()).hexdigest()
    return f"greenfm-curate-{digest[:12]}"


def build_spark_application(cfg: SparkK8sConfig, name: str, input_uri: str, output_dir: str, config: dict) -> dict:
    """The SparkApplication that runs the curation job (this module's main) on the cluster."""
    volume = {"name": "workspace", "persistentVolumeClaim": {"claimName": cfg.workspace_pvc}}
    mount = [{"name": "workspace", "mountPath": cfg.workspace_mount}]
    pod = {
        "serviceAccount": cfg.service_account,
        "securityContext": RESTRICTED_CONTAINER_SECURITY,
        "podSecurityContext": {
            "runAsNonRoot": True,
            "runAsUser": SPARK_UID,
            "fsGroup": SPARK_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mount,
        "labels": {"app.kubernetes.io/part-of": "greenfm", "app.kubernetes.io/component": "curate"},
    }
    if cfg.node_selector:
        pod["nodeSelector"] = dict(cfg.node_selector)
    return {
        "apiVersion": f"{SPARK_APP_GROUP}/{SPARK_APP_VERSION}",
        "kind": "SparkApplication",
        "metadata": {"name": name, "namespace": cfg.namespace, "labels": {"app.kubernetes.io/part-of": "greenfm"}},
        "spec": {
            "type": "Python",
            "mode": "cluster",
            "image": cfg.image,
            "imagePullPolicy": "IfNotPresent",
            "mainApplicationFile": DRIVER_SCRIPT,
            "arguments": ["--input", input_uri, "--output", output_dir, "--config", json.dumps(config, sort_keys=True)],
            "sparkVersion": cfg.spark_version,
            "sparkConf": {"spark.ui.enabled": "false", "spark.sql.session.timeZone": "UTC"},
            "restartPolicy": {"type": "Never"},  # KFP retries the step; the operator must not rerun it behind its back
            "timeToLiveSeconds": 3600,
            "volumes": [volume],
            "driver": {**pod, "cores": cfg.driver_cores, "memory": cfg.driver_memory},
            "executor": {**pod, "instances": cfg.executors, "cores": cfg.executor_cores, "memory": cfg.executor_memory},
        },
    }


def run_spark_application(
    app: dict, api, timeout_s: float, poll_s: float, sleep: Callable[[float], None] = time.sleep
) -> str:
    """Create `app` (an existing one of the same name is the same work: reuse it) and wait for a final state."""
    from kubernetes.client.rest import ApiException

    namespace, name = app["metadata"]["namespace"], app["metadata"]["name"]
    args = SPARK_APPLICATION.args(namespace)
    create_custom_object(api, SPARK_APPLICATION, app)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            current = api.get_namespaced_custom_object(*args, name)
        except ApiException as error:
            if error.status >= 500:  # API server hiccup: keep waiting rather than failing hours of work
                current = {}
            else:
                raise
        state = (current.get("status") or {}).get("applicationState", {}).get("state", "")
        if state in SUCCEEDED:
            return state
        if state in FAILED:
            message = current["status"]["applicationState"].get("errorMessage", "")
            raise GreenfmError(f"SparkApplication {namespace}/{name} {state}: {message}".rstrip(": "))
        if time.monotonic() > deadline:
            raise GreenfmError(
                f"SparkApplication {namespace}/{name} still {state or 'pending'} after {timeout_s:.0f} s"
            )
        sleep(poll_s)


# ---------------------------------------------------------------- the curation step's entry point


def curate_with_backend(
    input_uri: str, output_dir: str | Path, config=None, cfg: SparkK8sConfig | None = None, api=None
):
    """Run components.curate.job.curate with the configured Spark backend; returns its CurateResult."""
    from components.curate.job import REPORT_JSON, CurateConfig, CurateResult, curate

    config = config or CurateConfig()
    cfg = cfg or SparkK8sConfig.from_env()
    if cfg.backend == "local":
        return curate(input_uri, output_dir, config)
    if cfg.backend == "client":
        config.spark_master = cfg.master
        return curate(input_uri, output_dir, config)
    settings = {k: v for k, v in asdict(config).items() if k != "spark_master"}
    name = application_name(input_uri, str(output_dir), settings)
    shared = Path(cfg.workspace_mount) / "curate" / name  # the driver writes where this pod can read
    app = build_spark_application(cfg, name, input_uri, str(shared), settings)
    run_spark_application(app, api or custom_objects_api(), cfg.timeout_s, cfg.poll_s)
    shutil.copytree(shared, output_dir, dirs_exist_ok=True)
    report = json.loads((Path(output_dir) / REPORT_JSON).read_text())
    return CurateResult(
        str(output_dir),
        report["documents"],
        report["quarantined"],
        report["fingerprint"],
        report["train_tokens"],
        report["val_tokens"],
        report,
    )


def main(argv: list[str] | None = None) -> None:
    """SparkApplication driver: spark-submit has set the master; curate with it."""
    from components.curate.job import CurateConfig, curate

    parser = argparse.ArgumentParser(description="greenfm curation (SparkApplication driver)")
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--config", default="{}", help="CurateConfig fields as JSON")
    args = parser.parse_args(argv)
    curate(args.input, args.output, CurateConfig.from_dict(json.loads(args.config)))


if __name__ == "__main__":
    main()
