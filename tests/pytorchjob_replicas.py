"""The replicas of a PyTorchJob as containers, with the environment Kubeflow's Training Operator injects.

The Training Operator (kubeflow/training-operator, release-1.9: pkg/controller.v1/pytorch/envvar.go and
elastic.go) starts one pod per Worker replica, named `<job>-worker-<i>`, reachable by that name through a
headless service, and appends to the training container's environment PYTHONUNBUFFERED=0 and, for an
elasticPolicy, PET_RDZV_ENDPOINT=<rdzvHost or job-worker-0>:<rdzvPort>, PET_RDZV_BACKEND, PET_NNODES=min:max,
PET_MAX_RESTARTS, and PET_NPROC_PER_NODE (spec.nprocPerNode); torchrun reads each --x-y option from PET_X_Y.
Here a container engine plays the operator and kubelet: a container per replica on a user-defined network,
its name and hostname the pod's, the workspace volume mounted where the pod template mounts it.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Replica:
    name: str
    image: str
    command: list[str]
    env: dict[str, str]
    user: str
    mounts: dict[str, str]  # volume name -> mount path


def operator_env(job: dict) -> dict[str, str]:
    """What the operator appends to every Worker's training container (elastic mode)."""
    spec = job["spec"]
    elastic = spec["elasticPolicy"]
    name = job["metadata"]["name"]
    env = {
        "PYTHONUNBUFFERED": "0",
        "PET_RDZV_ENDPOINT": f"{elastic.get('rdzvHost', f'{name}-worker-0')}:{elastic['rdzvPort']}",
        "PET_RDZV_BACKEND": elastic.get("rdzvBackend", "c10d"),
        "PET_NNODES": f"{elastic['minReplicas']}:{elastic['maxReplicas']}",
    }
    if "maxRestarts" in elastic:
        env["PET_MAX_RESTARTS"] = str(elastic["maxRestarts"])
    if "nprocPerNode" in spec:
        env["PET_NPROC_PER_NODE"] = str(spec["nprocPerNode"])
    return env


def replicas(job: dict) -> list[Replica]:
    worker = job["spec"]["pytorchReplicaSpecs"]["Worker"]
    pod = worker["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "pytorch"]
    env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    env.update(operator_env(job))  # appended after the template's: the later duplicate wins, as in a pod
    user = str(pod["securityContext"]["runAsUser"]) + ":" + str(pod["securityContext"].get("runAsGroup", 0))
    mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
    name = job["metadata"]["name"]
    # The kubelet resolves downward-API fields; here each container stands in for a node of its own.
    node_fields = [e["name"] for e in container.get("env", []) if _field_path(e) == "spec.nodeName"]
    return [
        Replica(
            f"{name}-worker-{i}",
            container["image"],
            container["command"],
            {**env, **dict.fromkeys(node_fields, f"{name}-worker-{i}")},
            user,
            mounts,
        )
        for i in range(worker["replicas"])
    ]


def _field_path(env_var: dict) -> str:
    return ((env_var.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath", "")


def start(engine: str, replica: Replica, network: str, volumes: dict[str, Path]) -> None:
    """`engine run` the replica detached; `volumes` maps the pod's volume names to host folders."""
    command = [engine, "run", "-d", "--name", replica.name, "--hostname", replica.name, "--network", network]
    command += ["--user", replica.user, "--shm-size", "256m"]
    for key, value in replica.env.items():
        command += ["-e", f"{key}={value}"]
    for volume, path in replica.mounts.items():
        if volume in volumes:
            command += ["-v", f"{volumes[volume]}:{path}"]
    subprocess.run([*command, replica.image, *replica.command], check=True, capture_output=True, text=True)
