"""Pretraining on Kubernetes, as a Kubeflow Training Operator v1 `PyTorchJob` (kubeflow.org/v1, maintained on
the release-1.9 branch) or a Kubeflow Trainer v2 `TrainJob` (trainer.kubeflow.org/v1alpha1, the current API):
`nodes` pods × `gpus_per_node` GPUs, each running torchrun. The PyTorchJob runs it in elastic mode (c10d
rendezvous on worker 0; the operator injects PET_NNODES, PET_RDZV_ENDPOINT, PET_NPROC_PER_NODE,
PET_MAX_RESTARTS); the TrainJob refers to a torch runtime (`torch-distributed` by default), which injects
PET_NNODES, PET_NPROC_PER_NODE, PET_NODE_RANK, PET_MASTER_ADDR and PET_MASTER_PORT.

The pod template is built from the official `kubernetes` client models and serialized by its ApiClient; the
TrainJob from the Trainer's own API models (kubeflow-trainer-api); the PyTorchJob around the template is a
dict (Training Operator v1 has no model that installs beside our pins), validated in the tests against its CRD
schema. Token shards, checkpoints and the model live on the shared workspace volume, mounted on every replica.
The job is created in the step's namespace and owned by the step's pod; its name is a hash of its inputs, so a
retried step finds its own job: a failed leftover is replaced, a running or finished one adopted and waited
for. A failed, timed-out or terminated (SIGTERM) job is deleted.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from components.carbon.tracking import NODE_NAME
from components.common.cluster import WORKSPACE_MOUNT, WORKSPACE_PVC, pod_namespace
from components.common.contracts import TRAIN_REPORT_JSON
from components.common.errors import GreenfmError
from components.common.images import IMAGE_UID, image
from components.common.k8s_jobs import (
    CustomResource,
    create_custom_object,
    custom_objects_api,
    default_api_client,
    delete_custom_object,
    deleted_on_sigterm,
    follow_pod_log,
    owned,
    owner_reference,
    watch_until,
)
from components.pretrain.config import TrainConfig, TrainResult
from components.pretrain.worker import TORCHRUN_ENV, log_entry, worker_args

PYTORCHJOB = CustomResource("kubeflow.org", "v1", "pytorchjobs", "PyTorchJob")
TRAINJOB = CustomResource("trainer.kubeflow.org", "v1alpha1", "trainjobs", "TrainJob")
APIS = {"pytorchjob": PYTORCHJOB, "trainjob": TRAINJOB}
TRAINJOB_NODE = "node"  # the replicated job (and container) of the Trainer's torch runtimes
PATCH_MANAGER = "greenfm.io/pretrain"  # owner of our runtime patch entry (TrainJob runtimePatches)
# NCCL defaults for pods: the pod network interface (NCCL may otherwise pick one peers cannot reach),
# warnings in the log, and failing fast (instead of hanging) when a peer dies so torchrun can restart.
NCCL_ENV = {"NCCL_SOCKET_IFNAME": "eth0", "NCCL_DEBUG": "WARN", "TORCH_NCCL_ASYNC_ERROR_HANDLING": "1"}


@dataclass
class ClusterTrainConfig:
    api: str = "pytorchjob"  # pytorchjob (Training Operator v1) | trainjob (Trainer v2)
    namespace: str = field(default_factory=pod_namespace)  # the step's own: the only one its account may use
    image: str = field(default_factory=lambda: image("trainer"))
    runtime: str = "torch-distributed"  # TrainJob: the ClusterTrainingRuntime it runs on
    nodes: int = 1
    gpus_per_node: int = 1
    max_restarts: int = 2
    rdzv_port: int = 29400
    node_selector: dict = field(default_factory=dict)  # region placement, e.g. topology.kubernetes.io/region
    tolerations: list = field(default_factory=list)  # the GPU nodes' taints (the run's gpu_tolerations)
    service_account: str = "default"  # workers call no API (no token is mounted)
    workspace_pvc: str = WORKSPACE_PVC  # ReadWriteMany: every node reads the shards and writes checkpoints
    workspace_mount: str = WORKSPACE_MOUNT
    cpu: str = "8"
    memory: str = "32Gi"
    gpu_resource: str = "nvidia.com/gpu"
    shm_size: str = "8Gi"
    nccl_env: dict = field(default_factory=lambda: dict(NCCL_ENV))
    timeout_s: int = 7 * 24 * 3600
    watch_timeout_s: int = 300
    energy_location: str = ""  # JSON Location each node measures its energy at; empty: not measured

    def __post_init__(self) -> None:
        if self.api not in APIS:
            raise GreenfmError(f"training job api {self.api!r}: expected one of {', '.join(APIS)}")

    @property
    def resource(self) -> CustomResource:
        return APIS[self.api]


def job_name(tokens_dir: str | Path, cfg: TrainConfig, jcfg: ClusterTrainConfig) -> str:
    digest = hashlib.sha256(
        json.dumps([str(tokens_dir), asdict(cfg), jcfg.nodes, jcfg.gpus_per_node, jcfg.api], sort_keys=True).encode()
    ).hexdigest()
    return f"greenfm-pretrain-{digest[:12]}"


def _restricted():
    from kubernetes import client as k

    return k.V1SecurityContext(
        allow_privilege_escalation=False,
        run_as_non_root=True,
        run_as_user=IMAGE_UID,
        capabilities=k.V1Capabilities(drop=["ALL"]),
        seccomp_profile=k.V1SeccompProfile(type="RuntimeDefault"),
    )


def _pod_security():
    from kubernetes import client as k

    return k.V1PodSecurityContext(
        run_as_non_root=True,
        run_as_user=IMAGE_UID,
        run_as_group=IMAGE_UID,
        fs_group=IMAGE_UID,
        seccomp_profile=k.V1SeccompProfile(type="RuntimeDefault"),
    )


def _env(jcfg: ClusterTrainConfig) -> list:
    from kubernetes import client as k

    env = [k.V1EnvVar(name=key, value=value) for key, value in sorted({**jcfg.nccl_env, **TORCHRUN_ENV}.items())]
    # The node's name (downward API): each node's energy record names it, so no node is counted twice.
    node = k.V1EnvVar(
        name=NODE_NAME, value_from=k.V1EnvVarSource(field_ref=k.V1ObjectFieldSelector(field_path="spec.nodeName"))
    )
    return [*env, k.V1EnvVar(name="HOME", value="/tmp"), k.V1EnvVar(name="PYTHONUNBUFFERED", value="1"), node]


def _volumes(jcfg: ClusterTrainConfig) -> tuple[list, list]:
    """The workspace volume and a memory-backed /dev/shm (NCCL, DataLoader workers), with their mounts."""
    from kubernetes import client as k

    volumes = [
        k.V1Volume(
            name="workspace",
            persistent_volume_claim=k.V1PersistentVolumeClaimVolumeSource(claim_name=jcfg.workspace_pvc),
        ),
        k.V1Volume(name="dshm", empty_dir=k.V1EmptyDirVolumeSource(medium="Memory", size_limit=jcfg.shm_size)),
    ]
    mounts = [
        k.V1VolumeMount(name="workspace", mount_path=jcfg.workspace_mount),
        k.V1VolumeMount(name="dshm", mount_path="/dev/shm"),
    ]
    return volumes, mounts


def _resources(jcfg: ClusterTrainConfig):
    from kubernetes import client as k

    wanted = {"cpu": jcfg.cpu, "memory": jcfg.memory, jcfg.gpu_resource: str(jcfg.gpus_per_node)}
    return k.V1ResourceRequirements(requests=dict(wanted), limits=dict(wanted))


def _tolerations(jcfg: ClusterTrainConfig) -> list | None:
    from kubernetes import client as k

    return [k.V1Toleration(**{_snake(key): value for key, value in t.items()}) for t in jcfg.tolerations] or None


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def pod_template(name: str, command: list[str], jcfg: ClusterTrainConfig) -> dict:
    """The PyTorchJob replica pod template, from kubernetes client models, as the API's JSON."""
    from kubernetes import client as k

    volumes, mounts = _volumes(jcfg)
    trainer = k.V1Container(
        name="pytorch",  # the operator finds the training container by this name
        image=jcfg.image,
        command=command,
        env=_env(jcfg),
        ports=[k.V1ContainerPort(name="c10d", container_port=jcfg.rdzv_port)],
        resources=_resources(jcfg),
        security_context=_restricted(),
        volume_mounts=mounts,
    )
    # Workers that start before worker 0 (the rendezvous host) resolves fail in the rendezvous: wait for it.
    rendezvous_host = f"{name}-worker-0"
    wait = k.V1Container(
        name="wait-for-rendezvous",
        image=jcfg.image,
        command=[
            "python",
            "-c",
            "import socket, sys, time\n"
            "for _ in range(600):\n"
            "    try:\n        socket.getaddrinfo(sys.argv[1], None); break\n"
            "    except socket.gaierror:\n        time.sleep(1)\n"
            "else:\n    sys.exit(sys.argv[1] + ' did not resolve in 10 minutes')\n",
            rendezvous_host,
        ],
        resources=k.V1ResourceRequirements(
            requests={"cpu": "50m", "memory": "64Mi"}, limits={"cpu": "100m", "memory": "64Mi"}
        ),
        security_context=_restricted(),
    )
    spec = k.V1PodSpec(
        service_account_name=jcfg.service_account,
        automount_service_account_token=False,
        security_context=_pod_security(),
        init_containers=[wait],
        containers=[trainer],
        node_selector=dict(jcfg.node_selector) or None,
        tolerations=_tolerations(jcfg),
        volumes=volumes,
    )
    labels = {"app.kubernetes.io/part-of": "greenfm", "app.kubernetes.io/component": "pretrain"}
    template = k.V1PodTemplateSpec(metadata=k.V1ObjectMeta(labels=labels), spec=spec)
    return k.ApiClient().sanitize_for_serialization(template)


def build_pytorchjob(name: str, tokens_dir: str, model_dir: str, cfg: TrainConfig, jcfg: ClusterTrainConfig) -> dict:
    command = ["torchrun", *worker_args(tokens_dir, model_dir, cfg, jcfg.energy_location)]
    return {
        "apiVersion": f"{PYTORCHJOB.group}/{PYTORCHJOB.version}",
        "kind": PYTORCHJOB.kind,
        "metadata": {"name": name, "namespace": jcfg.namespace, "labels": {"app.kubernetes.io/part-of": "greenfm"}},
        "spec": {
            "nprocPerNode": str(jcfg.gpus_per_node),
            "elasticPolicy": {
                "rdzvBackend": "c10d",
                "rdzvPort": jcfg.rdzv_port,
                "minReplicas": jcfg.nodes,
                "maxReplicas": jcfg.nodes,
                "maxRestarts": jcfg.max_restarts,  # torchrun restarts; workers resume from the last checkpoint
            },
            "runPolicy": {
                "cleanPodPolicy": "Running",
                "backoffLimit": jcfg.max_restarts,
                "ttlSecondsAfterFinished": 86400,
            },
            "pytorchReplicaSpecs": {
                "Worker": {
                    "replicas": jcfg.nodes,
                    "restartPolicy": "OnFailure",
                    "template": pod_template(name, command, jcfg),
                },
            },
        },
    }


def build_trainjob(name: str, tokens_dir: str, model_dir: str, cfg: TrainConfig, jcfg: ClusterTrainConfig) -> dict:
    """The TrainJob (Trainer v2), from the Trainer's API models: the runtime supplies the torchrun topology
    (PET_* variables); our runtime patch supplies security, volumes, placement and tolerations."""
    from kubeflow_trainer_api import models as t
    from kubernetes import client as k

    serialize = k.ApiClient().sanitize_for_serialization
    volumes, mounts = _volumes(jcfg)
    pod = {
        "securityContext": serialize(_pod_security()),
        "serviceAccountName": jcfg.service_account,
        "volumes": serialize(volumes),
        "containers": [
            {"name": TRAINJOB_NODE, "securityContext": serialize(_restricted()), "volumeMounts": serialize(mounts)}
        ],
    }
    if jcfg.node_selector:
        pod["nodeSelector"] = dict(jcfg.node_selector)
    if jcfg.tolerations:
        pod["tolerations"] = serialize(_tolerations(jcfg))
    patch = {"spec": {"replicatedJobs": [{"name": TRAINJOB_NODE, "template": {"spec": {"template": {"spec": pod}}}}]}}
    job = {
        "apiVersion": f"{TRAINJOB.group}/{TRAINJOB.version}",
        "kind": TRAINJOB.kind,
        "metadata": {"name": name, "namespace": jcfg.namespace, "labels": {"app.kubernetes.io/part-of": "greenfm"}},
        "spec": {
            "runtimeRef": {"name": jcfg.runtime, "kind": "ClusterTrainingRuntime", "apiGroup": TRAINJOB.group},
            "trainer": {
                "image": jcfg.image,
                "command": ["torchrun", *worker_args(tokens_dir, model_dir, cfg, jcfg.energy_location)],
                "numNodes": jcfg.nodes,
                "numProcPerNode": jcfg.gpus_per_node,
                "resourcesPerNode": serialize(_resources(jcfg)),
                "env": serialize(_env(jcfg)),
            },
            "runtimePatches": [{"manager": PATCH_MANAGER, "trainingRuntimeSpec": {"template": patch}}],
        },
    }
    # Round trip through the Trainer's models: a misspelt or mistyped field fails here, not in the cluster.
    return t.TrainerV1alpha1TrainJob.from_dict(job).to_dict()


BUILDERS = {"pytorchjob": build_pytorchjob, "trainjob": build_trainjob}
FINAL = {"pytorchjob": ("Succeeded", "Failed"), "trainjob": ("Complete", "Failed")}


def job_state(job: dict, api: str = "pytorchjob") -> str:
    """The final condition (PyTorchJob: Succeeded/Failed; TrainJob: Complete/Failed) once there is one, else the
    newest true condition (Created, Running, Restarting) or ''."""
    conditions = [c for c in (job.get("status") or {}).get("conditions") or [] if c.get("status") == "True"]
    types = [c.get("type", "") for c in conditions]
    for final in FINAL[api]:
        if final in types:
            return final
    return types[-1] if types else ""


def _stage(tokens_dir: Path, workspace: Path, shared: Path) -> Path:
    """Token shards where every pod can read them: in place when already on the workspace volume."""
    if _on_volume(tokens_dir, workspace):
        return tokens_dir
    target = shared / "tokens"
    shutil.copytree(tokens_dir, target, dirs_exist_ok=True)
    return target


def _on_volume(path: Path, workspace: Path) -> bool:
    return workspace.resolve() in Path(path).resolve().parents


def run_training_job(
    tokens_dir: str | Path,
    model_dir: str | Path,
    cfg: TrainConfig,
    jcfg: ClusterTrainConfig,
    on_log: Callable[[dict], None] | None = None,
    api_client=None,
) -> TrainResult:
    """Create the job (or find it), stream worker 0's log (PyTorchJob), wait until it ends, bring the model back."""
    from kubernetes import client

    api_client = api_client or default_api_client()
    custom, core = custom_objects_api(api_client), client.CoreV1Api(api_client)
    resource, kind = jcfg.resource, jcfg.resource.kind
    name = job_name(tokens_dir, cfg, jcfg)
    shared = Path(jcfg.workspace_mount) / "pretrain" / name
    shared_model = shared / "model"
    shared_tokens = _stage(Path(tokens_dir), Path(jcfg.workspace_mount), shared)
    if not (cfg.checkpoint_dir and _on_volume(Path(cfg.checkpoint_dir), Path(jcfg.workspace_mount))):
        # Every replica writes and a restart reads checkpoints: only the volume is shared (a path of the step's
        # own pod, such as its output artifact's, exists nowhere else).
        cfg = replace(cfg, checkpoint_dir=str(shared / "checkpoints"))
    job = owned(
        BUILDERS[jcfg.api](name, str(shared_tokens), str(shared_model), cfg, jcfg), owner_reference(jcfg.namespace)
    )
    create_custom_object(custom, resource, job, failed=lambda obj: job_state(obj, jcfg.api) == "Failed")

    finished = threading.Event()

    def relay_logs() -> None:
        for line in follow_pod_log(core, jcfg.namespace, f"{name}-worker-0", keep_going=lambda: not finished.is_set()):
            entry = log_entry(line)
            if entry is not None and on_log:
                on_log(entry)

    # TrainJob pods are named by JobSet with a random suffix: their logs stay in the cluster's log store.
    logs = threading.Thread(target=relay_logs, name=f"logs-{name}", daemon=True) if jcfg.api == "pytorchjob" else None
    if logs:
        logs.start()
    try:
        with deleted_on_sigterm(custom, resource, jcfg.namespace, name):
            final = watch_until(
                custom,
                resource,
                jcfg.namespace,
                name,
                lambda obj: job_state(obj, jcfg.api) in FINAL[jcfg.api],
                jcfg.timeout_s,
                jcfg.watch_timeout_s,
            )
    except BaseException:
        delete_custom_object(custom, resource, jcfg.namespace, name)
        raise
    finally:
        finished.set()
    if logs:
        logs.join(timeout=10)
    if job_state(final, jcfg.api) == "Failed":
        message = next((c.get("message", "") for c in final["status"]["conditions"] if c.get("type") == "Failed"), "")
        delete_custom_object(custom, resource, jcfg.namespace, name)
        raise GreenfmError(f"{kind} {jcfg.namespace}/{name} failed: {message}".rstrip(": "))
    if Path(model_dir).resolve() != shared_model.resolve():
        shutil.copytree(shared_model, model_dir, dirs_exist_ok=True)
    result = TrainResult.load(model_dir)
    if result is None:
        raise GreenfmError(f"{kind} {jcfg.namespace}/{name} succeeded but {shared_model} has no {TRAIN_REPORT_JSON}")
    return result
