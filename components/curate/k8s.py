"""Spark on Kubernetes for the curation step, chosen by configuration (environment variables on the step's pod):

- local (default): Spark inside the step's container, master local[*].
- client: the step's pod is the Spark driver; executors are pods started against a k8s://https://... master.
  They reach the driver at its pod IP and are owned by its pod (downward API: POD_IP, POD_NAME), so they go
  away with it.
- operator: the step creates a SparkApplication (Spark Operator, sparkoperator.k8s.io/v1beta2), waits for it,
  and copies the result from the shared workspace volume into the step's output. The operator only acts on
  SparkApplications in the namespaces of its Helm value `spark.jobNamespaces` (default: `default`): the
  namespace pipeline runs use must be among them.

In both cluster modes, input and output live where every executor can read and write them: the workspace
volume (mounted at the same path on the step, the driver and every executor) or an object-store URI; a local
input of the step is staged onto the volume first, and the result is written there, then copied into the
step's output artifact (a path only the step's pod has).

Executors run images/spark.Dockerfile, which carries the same Python and greenfm as the driver, so the
Python UDFs of the curation steps behave the same as locally.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import yaml

from components.carbon.records import EnergyRecord
from components.carbon.spark_executors import ExecutorMeasurement, read_records
from components.carbon.tracking import NODE_NAME, Location, StageTracker
from components.common.cluster import WORKSPACE_MOUNT, WORKSPACE_PVC, pod_namespace
from components.common.errors import GreenfmError
from components.common.images import SPARK_UID, image
from components.common.k8s_jobs import (
    CustomResource,
    create_custom_object,
    custom_objects_api,
    deleted_on_sigterm,
    owned,
    owner_reference,
)
from components.curate.inputs import stored_bytes
from components.curate.job import REPORT_JSON, CurateConfig, CurateResult, curate
from components.curate.spark_session import get_spark, is_small_input

BACKENDS = ("local", "client", "operator")
SPARK_APP_GROUP, SPARK_APP_VERSION, SPARK_APP_PLURAL = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"
SPARK_APPLICATION = CustomResource(SPARK_APP_GROUP, SPARK_APP_VERSION, SPARK_APP_PLURAL, "SparkApplication")
# Where images/spark.Dockerfile puts this file: the SparkApplication driver runs it.
DRIVER_SCRIPT = "local:///opt/greenfm/components/curate/k8s.py"
SUCCEEDED, FAILED = {"COMPLETED"}, {"FAILED", "SUBMISSION_FAILED"}
# Every driver and executor pod's energy record names its node (downward API), so no node is counted twice.
NODE_NAME_ENV = {"name": NODE_NAME, "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
OBJECT_STORE_SCHEMES = ("s3a://", "s3://", "gs://", "abfss://", "hdfs://")
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

# Restricted Pod Security Standard: what every pod greenfm creates declares.
RESTRICTED_CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": SPARK_UID,
    "fsGroup": SPARK_UID,
    "seccompProfile": {"type": "RuntimeDefault"},
}


# SparkK8sConfig field -> environment variable (the deployment's ConfigMap greenfm-spark sets them). The image
# is not among them: it comes from the image template the pipeline was compiled with (components.common.images).
_ENV_FIELDS = {
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
    # local backend: the master of this process's Spark session, "" for local[*]; a Spark master outside the
    # process (a standalone spark://HOST:7077) makes this process a client-mode driver of that cluster.
    local_master: str = ""
    namespace: str = field(default_factory=pod_namespace)  # the step's own: the only one its account may use
    image: str = field(default_factory=lambda: image("spark"))
    service_account: str = "greenfm-spark"  # the SparkApplication driver's: may create executor pods
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
        """GREENFM_SPARK_* variables; a k8s:// GREENFM_SPARK_MASTER alone selects client mode, any other master
        (spark://HOST:7077, local[N]) is the local backend's."""
        env = os.environ if env is None else env
        master = env.get("GREENFM_SPARK_MASTER", "")
        backend = env.get("GREENFM_SPARK_BACKEND") or ("client" if master.startswith("k8s://") else "local")
        values: dict = {"backend": backend, "namespace": pod_namespace(env)}
        if master:
            values["master" if master.startswith("k8s://") else "local_master"] = master
        defaults = cls.__dataclass_fields__
        for attr, var in _ENV_FIELDS.items():
            if var in env:
                values[attr] = int(env[var]) if defaults[attr].type == "int" else env[var]
        if env.get("GREENFM_NODE_SELECTOR"):
            values["node_selector"] = json.loads(env["GREENFM_NODE_SELECTOR"])
        return cls(**values)


def from_pipeline(
    backend: str, executors: int, node_selector: dict | None, env: Mapping[str, str] | None = None
) -> SparkK8sConfig:
    """The curate step's Spark settings: the run chooses the backend, executor count and placement (the
    select-region step's node selector); the deployment's ConfigMap greenfm-spark, as GREENFM_* environment
    variables, supplies the cluster details (namespace, service account, volume, sizes)."""
    env = os.environ if env is None else env
    cfg = SparkK8sConfig.from_env({**env, "GREENFM_SPARK_BACKEND": backend} if backend else env)
    return replace(
        cfg,
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
        "metadata": {"labels": {"app.kubernetes.io/part-of": "greenfm", "app.kubernetes.io/component": "curate"}},
        "spec": {
            "securityContext": RESTRICTED_POD_SECURITY,
            "automountServiceAccountToken": False,  # executors never call the API
            "containers": [
                {
                    "name": "spark-kubernetes-executor",
                    "securityContext": RESTRICTED_CONTAINER_SECURITY,
                    "env": [NODE_NAME_ENV],
                }
            ],
        },
    }


def client_mode_conf(
    cfg: SparkK8sConfig, template_dir: str | Path | None = None, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Spark conf for a driver in this pod and executor pods in `cfg.namespace`. The pod's IP and name come from
    the downward API (POD_IP, POD_NAME): without them executors could neither connect back nor be cleaned up."""
    env = os.environ if env is None else env
    missing = [var for var in ("POD_IP", "POD_NAME") if not env.get(var)]
    if missing:
        raise GreenfmError(f"spark client mode: {', '.join(missing)} not set (downward API on the curate step)")
    template_dir = Path(template_dir or tempfile.mkdtemp(prefix="greenfm-spark-"))
    template = template_dir / "executor-pod.yaml"
    template.write_text(yaml.safe_dump(executor_pod_template(cfg)))
    volume = "spark.kubernetes.executor.volumes.persistentVolumeClaim.workspace"
    conf = {
        "spark.kubernetes.namespace": cfg.namespace,
        "spark.kubernetes.container.image": cfg.image,
        "spark.kubernetes.executor.podTemplateFile": str(template),
        "spark.kubernetes.executor.deleteOnTermination": "true",
        # The driver pod owns the executors: deleting the step's pod deletes them.
        "spark.kubernetes.driver.pod.name": env["POD_NAME"],
        # The driver's own API client: the step pod's service account.
        "spark.kubernetes.authenticate.caCertFile": f"{SERVICE_ACCOUNT_DIR}/ca.crt",
        "spark.kubernetes.authenticate.oauthTokenFile": f"{SERVICE_ACCOUNT_DIR}/token",
        "spark.executor.instances": str(cfg.executors),
        "spark.executor.cores": str(cfg.executor_cores),
        "spark.executor.memory": cfg.executor_memory,
        "spark.driver.memory": cfg.driver_memory,
        # Executors dial back to the driver: advertise the pod IP, listen everywhere.
        "spark.driver.host": env["POD_IP"],
        "spark.driver.bindAddress": "0.0.0.0",
        # Python workers on the executors run the driver's interpreter (the images share /opt/venv).
        "spark.pyspark.python": sys.executable,
        "spark.executorEnv.PYSPARK_PYTHON": sys.executable,
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


def build_spark_application(
    cfg: SparkK8sConfig,
    name: str,
    input_uri: str,
    output_dir: str,
    config: dict,
    measurement: ExecutorMeasurement | None = None,
) -> dict:
    """The SparkApplication that runs the curation job (this module's main) on the cluster; with `measurement`,
    its driver and every executor measure their energy (components/carbon/spark_executors.py)."""
    volume = {"name": "workspace", "persistentVolumeClaim": {"claimName": cfg.workspace_pvc}}
    mount = [{"name": "workspace", "mountPath": cfg.workspace_mount}]
    pod = {
        "serviceAccount": cfg.service_account,
        "securityContext": RESTRICTED_CONTAINER_SECURITY,
        "podSecurityContext": RESTRICTED_POD_SECURITY,
        "volumeMounts": mount,
        "labels": {"app.kubernetes.io/part-of": "greenfm", "app.kubernetes.io/component": "curate"},
        "env": [NODE_NAME_ENV],
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
            "arguments": ["--input", input_uri, "--output", output_dir, "--config", json.dumps(config, sort_keys=True)]
            + (measurement_arguments(measurement) if measurement else []),
            "sparkVersion": cfg.spark_version,
            "sparkConf": {
                "spark.ui.enabled": "false",
                "spark.sql.session.timeZone": "UTC",
                **(measurement.conf() if measurement else {}),
            },
            "restartPolicy": {"type": "Never"},  # KFP retries the step; the operator must not rerun it behind its back
            "timeToLiveSeconds": 3600,
            "volumes": [volume],
            "driver": {**pod, "cores": cfg.driver_cores, "memory": cfg.driver_memory},
            "executor": {**pod, "instances": cfg.executors, "cores": cfg.executor_cores, "memory": cfg.executor_memory},
        },
    }


def measurement_arguments(measurement: ExecutorMeasurement) -> list[str]:
    return [
        "--energy-dir",
        str(measurement.energy_dir),
        "--energy-location",
        json.dumps(asdict(measurement.location)),
        "--executors",
        str(measurement.executors),
    ]


def application_state(app: dict) -> str:
    return (app.get("status") or {}).get("applicationState", {}).get("state", "")


def run_spark_application(
    app: dict, api, timeout_s: float, poll_s: float, sleep: Callable[[float], None] = time.sleep
) -> str:
    """Create `app` and wait for a final state. A leftover of the same name that failed is replaced; one that
    runs or completed is the same work: adopted and waited for. SIGTERM while waiting deletes it."""
    from kubernetes.client.rest import ApiException

    namespace, name = app["metadata"]["namespace"], app["metadata"]["name"]
    args = SPARK_APPLICATION.args(namespace)
    create_custom_object(api, SPARK_APPLICATION, app, failed=lambda obj: application_state(obj) in FAILED)
    deadline = time.monotonic() + timeout_s
    with deleted_on_sigterm(api, SPARK_APPLICATION, namespace, name):
        while True:
            try:
                current = api.get_namespaced_custom_object(*args, name)
            except ApiException as error:
                if error.status >= 500:  # API server hiccup: keep waiting rather than failing hours of work
                    current = {}
                else:
                    raise
            state = application_state(current)
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


def on_shared_storage(input_uri: str, cfg: SparkK8sConfig, work_dir: Path) -> str:
    """`input_uri` where every executor can read it: object-store URIs and paths on the workspace volume as
    they are, any other local path copied onto the volume under `work_dir`."""
    if input_uri.startswith(OBJECT_STORE_SCHEMES):
        return input_uri
    if "://" in input_uri:
        raise GreenfmError(
            f"input {input_uri!r}: executors cannot read this scheme; use {', '.join(OBJECT_STORE_SCHEMES)}"
        )
    source = Path(input_uri).resolve()
    workspace = Path(cfg.workspace_mount).resolve()
    if source == workspace or workspace in source.parents:
        return str(source)
    if not source.exists():
        raise GreenfmError(f"input {input_uri}: not found")
    target = work_dir / "input" / source.name
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return str(target)


def _result_from(shared: Path, output_dir: Path) -> CurateResult:
    """Copy what the cluster wrote on the volume into the step's output, and read its report."""
    if shared.resolve() != output_dir.resolve():
        shutil.copytree(shared, output_dir, dirs_exist_ok=True)
    report = json.loads((output_dir / REPORT_JSON).read_text())
    return CurateResult(
        str(output_dir),
        report["documents"],
        report["quarantined"],
        report["fingerprint"],
        report["train_tokens"],
        report["val_tokens"],
        report,
    )


def curate_with_backend(
    input_uri: str,
    output_dir: str | Path,
    config: CurateConfig | None = None,
    cfg: SparkK8sConfig | None = None,
    api=None,
    template_dir: str | Path | None = None,
    energy_location: Location | None = None,
) -> CurateResult:
    """Run components.curate.job.curate with the configured Spark backend; returns its CurateResult. With
    `energy_location`, a cluster backend measures every executor (and the SparkApplication's driver) there:
    their records are the result's `energy_records`."""
    config = config or CurateConfig()
    cfg = cfg or SparkK8sConfig.from_env()
    if cfg.backend == "local":
        spark = get_spark(cfg.local_master or None, small_input=is_small_input(stored_bytes(input_uri)))
        return curate(input_uri, output_dir, config, spark=spark)
    settings = asdict(config)
    name = application_name(input_uri, str(output_dir), settings)
    shared = Path(cfg.workspace_mount) / "curate" / name  # where the driver and every executor can write
    shared_input = on_shared_storage(input_uri, cfg, shared)
    energy = ExecutorMeasurement(shared / "energy", energy_location, cfg.executors) if energy_location else None
    records: list[EnergyRecord] = []
    if cfg.backend == "client":
        spark = get_spark(cfg.master, conf={**client_mode_conf(cfg, template_dir), **(energy.conf() if energy else {})})
        if energy:
            energy.start(spark)
        curate(shared_input, shared / "output", config, spark=spark)
        records = energy.finish(spark) if energy else []
    else:
        app = owned(
            build_spark_application(cfg, name, shared_input, str(shared / "output"), settings, energy),
            owner_reference(cfg.namespace),
        )
        run_spark_application(app, api or custom_objects_api(), cfg.timeout_s, cfg.poll_s)
        records = read_records(energy.energy_dir) if energy else []  # the driver pod's and the executors'
    return replace(_result_from(shared / "output", Path(output_dir)), energy_records=records)


def main(argv: list[str] | None = None) -> None:
    """SparkApplication driver: spark-submit has set the master; curate with it. With --energy-dir, this driver
    pod measures itself and every executor, each record written there for the step to sum."""
    parser = argparse.ArgumentParser(description="greenfm curation (SparkApplication driver)")
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--config", default="{}", help="CurateConfig fields as JSON")
    parser.add_argument("--energy-dir", default="", help="folder for the driver's and executors' energy records")
    parser.add_argument("--energy-location", default="{}", help="Location JSON the energy is measured at")
    parser.add_argument("--executors", type=int, default=0, help="executors the application asked for")
    args = parser.parse_args(argv)
    config = CurateConfig.from_dict(json.loads(args.config))
    if not args.energy_dir:
        curate(args.input, args.output, config)
        return
    energy = ExecutorMeasurement(Path(args.energy_dir), Location(**json.loads(args.energy_location)), args.executors)
    driver = StageTracker("curate-driver", energy.location, "process").start()
    spark = get_spark()
    driver_record = energy.energy_dir / f"{spark.sparkContext.applicationId}-driver.json"
    try:
        energy.start(spark)
        curate(args.input, args.output, config, spark=spark)
    except BaseException:  # a failed job's energy counts too
        energy.finish(spark)
        driver_record.write_text(driver.stop(failed=True).dumps())
        raise
    energy.finish(spark)
    driver_record.write_text(driver.stop().dumps())


if __name__ == "__main__":
    main()
