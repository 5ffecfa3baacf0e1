"""Pretraining as a Kubeflow Training Operator PyTorchJob (kubeflow.org/v1): `nodes` Worker pods × `gpus_per_node`
GPUs, each running torchrun in elastic mode (c10d rendezvous on worker 0; the operator injects PET_NNODES,
PET_RDZV_ENDPOINT, PET_NPROC_PER_NODE, PET_MAX_RESTARTS, which torchrun reads).

The pod template is built from the official `kubernetes` client models and serialized by its ApiClient; the
PyTorchJob around it is a plain dict (there is no client model for the CRD) validated in the tests against
manifests/crds/pytorchjob-kubeflow.org-v1.schema.yaml. Token shards and the model live on the shared
workspace volume. The job name is a hash of its inputs, so a retried pipeline step finds its own job (409 →
reuse) and waits for it instead of training twice; a failed or timed-out job is deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from components.common.cluster import WORKSPACE_MOUNT, WORKSPACE_PVC, pod_namespace
from components.common.contracts import TRAIN_REPORT_JSON
from components.common.errors import GreenfmError
from components.common.images import TRAINER_IMAGE
from components.common.k8s_jobs import (
    CustomResource,
    create_custom_object,
    custom_objects_api,
    default_api_client,
    delete_custom_object,
    follow_pod_log,
    watch_until,
)
from components.pretrain.launch import TORCHRUN_ENV, LaunchConfig, log_entry, worker_args
from components.pretrain.train import TrainConfig, TrainResult

PYTORCHJOB = CustomResource("kubeflow.org", "v1", "pytorchjobs", "PyTorchJob")
TRAINER_UID = 10001  # images/trainer.Dockerfile's user
# NCCL defaults for pods: the pod network interface (NCCL may otherwise pick one peers cannot reach),
# warnings in the log, and failing fast (instead of hanging) when a peer dies so torchrun can restart.
NCCL_ENV = {"NCCL_SOCKET_IFNAME": "eth0", "NCCL_DEBUG": "WARN", "TORCH_NCCL_ASYNC_ERROR_HANDLING": "1"}


@dataclass
class PyTorchJobConfig:
    namespace: str = field(default_factory=pod_namespace)  # the step's own: the only one its account may use
    image: str = TRAINER_IMAGE
    nodes: int = 1
    gpus_per_node: int = 1
    max_restarts: int = 2
    rdzv_port: int = 29400
    node_selector: dict = field(
        default_factory=dict
    )  # region placement, e.g. {"topology.kubernetes.io/region": "europe-north1"}
    service_account: str = "default"  # workers call no API (no token is mounted)
    workspace_pvc: str = WORKSPACE_PVC  # ReadWriteMany: every node reads the shards and writes checkpoints
    workspace_mount: str = WORKSPACE_MOUNT
    cpu: str = "8"
    memory: str = "64Gi"
    shm_size: str = "8Gi"
    nccl_env: dict = field(default_factory=lambda: dict(NCCL_ENV))
    timeout_s: int = 7 * 24 * 3600
    watch_timeout_s: int = 300
    energy_location: str = ""  # JSON Location each node measures its energy at; empty: not measured

    @classmethod
    def from_launch(cls, launch: LaunchConfig, env: Mapping[str, str] | None = None) -> PyTorchJobConfig:
        """Nodes, GPUs, restarts and placement from the launch config; cluster details from GREENFM_* variables."""
        env = os.environ if env is None else env
        values: dict = {
            "nodes": launch.nodes,
            "gpus_per_node": launch.procs_per_node or 1,
            "max_restarts": launch.max_restarts,
            "node_selector": dict(launch.node_selector),
            "energy_location": launch.energy_location,
            "namespace": pod_namespace(env),
        }
        for attr, var in {
            "image": "GREENFM_TRAINER_IMAGE",
            "workspace_pvc": "GREENFM_WORKSPACE_PVC",
            "workspace_mount": "GREENFM_WORKSPACE_MOUNT",
        }.items():
            if env.get(var):
                values[attr] = env[var]
        return cls(**values)


def job_name(tokens_dir: str | Path, cfg: TrainConfig, jcfg: PyTorchJobConfig) -> str:
    digest = hashlib.sha256(
        json.dumps([str(tokens_dir), asdict(cfg), jcfg.nodes, jcfg.gpus_per_node], sort_keys=True).encode()
    ).hexdigest()
    return f"greenfm-pretrain-{digest[:12]}"


def pod_template(name: str, command: list[str], jcfg: PyTorchJobConfig) -> dict:
    """The replica pod template, from kubernetes client models, as the API's JSON."""
    from kubernetes import client as k

    restricted = k.V1SecurityContext(
        allow_privilege_escalation=False,
        run_as_non_root=True,
        capabilities=k.V1Capabilities(drop=["ALL"]),
        seccomp_profile=k.V1SeccompProfile(type="RuntimeDefault"),
    )
    gpu = {"nvidia.com/gpu": str(jcfg.gpus_per_node)}
    env = [k.V1EnvVar(name=key, value=value) for key, value in sorted({**jcfg.nccl_env, **TORCHRUN_ENV}.items())]
    env += [k.V1EnvVar(name="HOME", value="/tmp"), k.V1EnvVar(name="PYTHONUNBUFFERED", value="1")]
    mounts = [
        k.V1VolumeMount(name="workspace", mount_path=jcfg.workspace_mount),
        k.V1VolumeMount(name="dshm", mount_path="/dev/shm"),
    ]
    trainer = k.V1Container(
        name="pytorch",  # the operator finds the training container by this name
        image=jcfg.image,
        command=command,
        env=env,
        ports=[k.V1ContainerPort(name="c10d", container_port=jcfg.rdzv_port)],
        resources=k.V1ResourceRequirements(
            requests={"cpu": jcfg.cpu, "memory": jcfg.memory, **gpu}, limits={"memory": jcfg.memory, **gpu}
        ),
        security_context=restricted,
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
        security_context=restricted,
    )
    spec = k.V1PodSpec(
        service_account_name=jcfg.service_account,
        automount_service_account_token=False,
        security_context=k.V1PodSecurityContext(
            run_as_non_root=True,
            run_as_user=TRAINER_UID,
            run_as_group=TRAINER_UID,
            fs_group=TRAINER_UID,
            seccomp_profile=k.V1SeccompProfile(type="RuntimeDefault"),
        ),
        init_containers=[wait],
        containers=[trainer],
        node_selector=dict(jcfg.node_selector) or None,
        volumes=[
            k.V1Volume(
                name="workspace",
                persistent_volume_claim=k.V1PersistentVolumeClaimVolumeSource(claim_name=jcfg.workspace_pvc),
            ),
            k.V1Volume(name="dshm", empty_dir=k.V1EmptyDirVolumeSource(medium="Memory", size_limit=jcfg.shm_size)),
        ],
    )
    labels = {"app.kubernetes.io/part-of": "greenfm", "app.kubernetes.io/component": "pretrain"}
    template = k.V1PodTemplateSpec(metadata=k.V1ObjectMeta(labels=labels), spec=spec)
    return k.ApiClient().sanitize_for_serialization(template)


def build_pytorchjob(name: str, tokens_dir: str, model_dir: str, cfg: TrainConfig, jcfg: PyTorchJobConfig) -> dict:
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


def job_state(job: dict) -> str:
    """Succeeded or Failed once final, else the newest true condition (Created, Running, Restarting) or ''."""
    conditions = [c for c in (job.get("status") or {}).get("conditions") or [] if c.get("status") == "True"]
    types = [c.get("type", "") for c in conditions]
    for final in ("Succeeded", "Failed"):
        if final in types:
            return final
    return types[-1] if types else ""


def _stage(tokens_dir: Path, workspace: Path, shared: Path) -> Path:
    """Token shards where every pod can read them: in place when already on the workspace volume."""
    if workspace.resolve() in tokens_dir.resolve().parents:
        return tokens_dir
    target = shared / "tokens"
    shutil.copytree(tokens_dir, target, dirs_exist_ok=True)
    return target


def run_pytorchjob(
    tokens_dir: str | Path,
    model_dir: str | Path,
    cfg: TrainConfig,
    jcfg: PyTorchJobConfig,
    on_log: Callable[[dict], None] | None = None,
    api_client=None,
) -> TrainResult:
    """Create the PyTorchJob (or find it), stream worker 0's log, wait until it ends, and bring the model back."""
    from kubernetes import client

    api_client = api_client or default_api_client()
    custom, core = custom_objects_api(api_client), client.CoreV1Api(api_client)
    name = job_name(tokens_dir, cfg, jcfg)
    shared = Path(jcfg.workspace_mount) / "pretrain" / name
    shared_model = shared / "model"
    shared_tokens = _stage(Path(tokens_dir), Path(jcfg.workspace_mount), shared)
    cfg = replace(cfg, checkpoint_dir=cfg.checkpoint_dir or str(shared / "checkpoints"))  # stays on the volume
    job = build_pytorchjob(name, str(shared_tokens), str(shared_model), cfg, jcfg)
    create_custom_object(custom, PYTORCHJOB, job)

    finished = threading.Event()

    def relay_logs() -> None:
        for line in follow_pod_log(core, jcfg.namespace, f"{name}-worker-0", keep_going=lambda: not finished.is_set()):
            entry = log_entry(line)
            if entry is not None and on_log:
                on_log(entry)

    logs = threading.Thread(target=relay_logs, name=f"logs-{name}", daemon=True)
    logs.start()
    try:
        final = watch_until(
            custom,
            PYTORCHJOB,
            jcfg.namespace,
            name,
            lambda obj: job_state(obj) in ("Succeeded", "Failed"),
            jcfg.timeout_s,
            jcfg.watch_timeout_s,
        )
    except BaseException:
        delete_custom_object(custom, PYTORCHJOB, jcfg.namespace, name)
        raise
    finally:
        finished.set()
    logs.join(timeout=10)
    if job_state(final) == "Failed":
        message = next((c.get("message", "") for c in final["status"]["conditions"] if c.get("type") == "Failed"), "")
        delete_custom_object(custom, PYTORCHJOB, jcfg.namespace, name)
        raise GreenfmError(f"PyTorchJob {jcfg.namespace}/{name} failed: {message}".rstrip(": "))
    if Path(model_dir).resolve() != shared_model.resolve():
        shutil.copytree(shared_model, model_dir, dirs_exist_ok=True)
    result = TrainResult.load(model_dir)
    if result is None:
        raise GreenfmError(
            f"PyTorchJob {jcfg.namespace}/{name} succeeded but {shared_model} has no {TRAIN_REPORT_JSON}"
        )
    return result
