"""Launch pretraining with torchrun, on this machine or on Kubernetes, behind one function: `launch`.

- local (default): spawn `torchrun` here: `nodes` × `procs_per_node` processes, elastic restarts
  (`max_restarts`; a restarted worker resumes from the last DCP checkpoint). With nodes > 1, every node runs
  the same call with the same `rdzv_endpoint` (c10d rendezvous).
- kubernetes: a Kubeflow Training Operator v1 PyTorchJob of `nodes` pods × `procs_per_node` GPUs
  (components.pretrain.k8s).
- trainjob: the same as a Kubeflow Trainer v2 TrainJob (trainer.kubeflow.org/v1alpha1) on a torch runtime.

Both run the same worker, `components.pretrain.train` (its `main`), and return the same TrainResult.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from components.common.contracts import TRAIN_REPORT_JSON
from components.common.errors import GreenfmError, root_cause
from components.pretrain.config import TrainConfig, TrainResult
from components.pretrain.worker import TORCHRUN_ENV, log_entry, worker_args

if TYPE_CHECKING:
    from components.pretrain.k8s import ClusterTrainConfig

BACKENDS = ("local", "kubernetes", "trainjob")


@dataclass
class LaunchConfig:
    backend: str = "local"  # local | kubernetes (PyTorchJob) | trainjob (Trainer v2)
    nodes: int = 1
    procs_per_node: int = 0  # 0: one per visible GPU (one process on a CPU-only machine)
    max_restarts: int = 2  # torchrun restarts the workers this often; each resumes from the last checkpoint
    rdzv_endpoint: str = ""  # host:port of the c10d rendezvous; empty with one node: torchrun --standalone
    rdzv_id: str = "greenfm-pretrain"
    node_selector: dict = field(
        default_factory=dict
    )  # kubernetes: region placement, e.g. topology.kubernetes.io/region
    energy_location: str = ""  # JSON Location: each node measures its own energy there (train.ENERGY_DIR); empty: no
    # kubernetes / trainjob: what each replica asks for (the run's train_cpu, train_memory, gpu_* parameters)
    cpu: str = "8"
    memory: str = "32Gi"
    gpu_resource: str = "nvidia.com/gpu"
    tolerations: list = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise GreenfmError(f"launch backend {self.backend!r}: expected one of {', '.join(BACKENDS)}")
        if self.nodes < 1 or self.procs_per_node < 0:
            raise GreenfmError(
                f"launch: nodes must be ≥ 1 and procs_per_node ≥ 0, got {self.nodes} and {self.procs_per_node}"
            )
        if self.backend == "local" and self.nodes > 1 and not self.rdzv_endpoint:
            raise GreenfmError("launch: several local nodes need rdzv_endpoint (host:port of the rendezvous)")

    def procs(self) -> int:
        if self.procs_per_node:
            return self.procs_per_node
        import torch

        return max(1, torch.cuda.device_count())


def torchrun_command(
    tokens_dir: str | Path, model_dir: str | Path, cfg: TrainConfig, launch: LaunchConfig
) -> list[str]:
    """The torchrun command line one node runs."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        str(launch.nodes),
        "--nproc-per-node",
        str(launch.procs()),
        "--max-restarts",
        str(launch.max_restarts),
    ]
    if launch.nodes == 1 and not launch.rdzv_endpoint:
        command.append("--standalone")
    else:
        command += ["--rdzv-backend", "c10d", "--rdzv-endpoint", launch.rdzv_endpoint, "--rdzv-id", launch.rdzv_id]
    return command + worker_args(tokens_dir, model_dir, cfg, launch.energy_location)


def run_local(
    tokens_dir: str | Path,
    model_dir: str | Path,
    cfg: TrainConfig,
    launch: LaunchConfig,
    on_log: Callable[[dict], None] | None = None,
    env: Mapping[str, str] | None = None,
) -> TrainResult | None:
    """Run torchrun and wait; relay the workers' JSON log lines. Returns the result on the node that saved the
    model (rank 0's), None on the other nodes."""
    command = torchrun_command(tokens_dir, model_dir, cfg, launch)
    tail: deque[str] = deque(maxlen=40)
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **TORCHRUN_ENV, **(env or {})},
    ) as process:
        assert process.stdout is not None  # stdout=PIPE
        for line in process.stdout:
            sys.stdout.write(line)  # the step's log shows the workers' progress
            tail.append(line.rstrip())
            entry = log_entry(line)
            if entry is not None and on_log:
                on_log(entry)
    if process.returncode != 0:
        cause = root_cause(tail) or "no error printed"
        raise GreenfmError(f"torchrun exited with {process.returncode}: {cause}\nlast output:\n" + "\n".join(tail))
    return TrainResult.load(model_dir)


def cluster_config(launch_cfg: LaunchConfig, env: Mapping[str, str] | None = None) -> ClusterTrainConfig:
    """The PyTorchJob / TrainJob settings: topology, placement and resources from the launch config, the
    workspace volume from GREENFM_* variables (the deployment's), the namespace from the step's pod."""
    from components.common.cluster import WORKSPACE_MOUNT, WORKSPACE_PVC, pod_namespace
    from components.pretrain.k8s import ClusterTrainConfig

    env = os.environ if env is None else env
    return ClusterTrainConfig(
        api="trainjob" if launch_cfg.backend == "trainjob" else "pytorchjob",
        namespace=pod_namespace(env),
        nodes=launch_cfg.nodes,
        gpus_per_node=launch_cfg.procs_per_node or 1,
        max_restarts=launch_cfg.max_restarts,
        node_selector=dict(launch_cfg.node_selector),
        tolerations=list(launch_cfg.tolerations),
        cpu=launch_cfg.cpu,
        memory=launch_cfg.memory,
        gpu_resource=launch_cfg.gpu_resource,
        energy_location=launch_cfg.energy_location,
        workspace_pvc=env.get("GREENFM_WORKSPACE_PVC") or WORKSPACE_PVC,
        workspace_mount=env.get("GREENFM_WORKSPACE_MOUNT") or WORKSPACE_MOUNT,
    )


def launch(
    tokens_dir: str | Path,
    model_dir: str | Path,
    cfg: TrainConfig,
    launch_cfg: LaunchConfig | None = None,
    on_log: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Train with the configured backend; the trained model ends up in `model_dir` either way."""
    launch_cfg = launch_cfg or LaunchConfig()
    if launch_cfg.backend != "local":
        from components.pretrain.k8s import run_training_job

        return run_training_job(tokens_dir, model_dir, cfg, cluster_config(launch_cfg), on_log=on_log)
    result = run_local(tokens_dir, model_dir, cfg, launch_cfg, on_log)
    if result is None:
        raise GreenfmError(f"{model_dir}: training finished but wrote no {TRAIN_REPORT_JSON} on this node")
    return result
