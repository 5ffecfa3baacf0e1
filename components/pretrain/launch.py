"""Launch pretraining with torchrun, on this machine or on Kubernetes, behind one function: `launch`.

- local (default): spawn `torchrun` here: `nodes` × `procs_per_node` processes, elastic restarts
  (`max_restarts`; a restarted worker resumes from the last DCP checkpoint). With nodes > 1, every node runs
  the same call with the same `rdzv_endpoint` (c10d rendezvous).
- kubernetes: a Kubeflow PyTorchJob of `nodes` pods × `procs_per_node` GPUs (components.pretrain.k8s).

Both run the same worker, `components.pretrain.train` (its `main`), and return the same TrainResult.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from components.common.contracts import TRAIN_REPORT_JSON
from components.common.errors import GreenfmError, root_cause
from components.pretrain.train import TrainConfig, TrainResult

BACKENDS = ("local", "kubernetes")
WORKER_MODULE = "components.pretrain.train"
# Workers of a restarted round must not join through the store the previous round used: its keys still hold
# the dead workers' addresses, and the new process group would try to connect to them. With this, rank 0 of
# every round hosts a fresh store on a fresh port.
TORCHRUN_ENV = {"TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}


@dataclass
class LaunchConfig:
    backend: str = "local"  # local | kubernetes
    nodes: int = 1
    procs_per_node: int = 0  # 0: one per visible GPU (one process on a CPU-only machine)
    max_restarts: int = 2  # torchrun restarts the workers this often; each resumes from the last checkpoint
    rdzv_endpoint: str = ""  # host:port of the c10d rendezvous; empty with one node: torchrun --standalone
    rdzv_id: str = "greenfm-pretrain"
    node_selector: dict = field(
        default_factory=dict
    )  # kubernetes: region placement, e.g. topology.kubernetes.io/region
    energy_location: str = ""  # JSON Location: each node measures its own energy there (train.ENERGY_DIR); empty: no

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


def worker_args(
    tokens_dir: str | Path, model_dir: str | Path, cfg: TrainConfig, energy_location: str = ""
) -> list[str]:
    args = [
        "--module",
        WORKER_MODULE,
        "--tokens",
        str(tokens_dir),
        "--model-dir",
        str(model_dir),
        "--config",
        json.dumps(asdict(cfg), sort_keys=True),
    ]
    return args + (["--energy-location", energy_location] if energy_location else [])


def run_local(
    tokens_dir: str | Path,
    model_dir: str | Path,
    cfg: TrainConfig,
    launch: LaunchConfig,
    on_log: Callable[[dict], None] | None = None,
    env: dict | None = None,
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


def log_entry(line: str) -> dict | None:
    """A worker's per-step log line (a JSON object with a step), else None. torchrun may prefix lines."""
    start = line.find("{")
    if start < 0:
        return None
    try:
        entry = json.loads(line[start:])
    except json.JSONDecodeError:
        return None
    return entry if isinstance(entry, dict) and "step" in entry else None


def launch(
    tokens_dir: str | Path,
    model_dir: str | Path,
    cfg: TrainConfig,
    launch_cfg: LaunchConfig | None = None,
    on_log: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Train with the configured backend; the trained model ends up in `model_dir` either way."""
    launch_cfg = launch_cfg or LaunchConfig()
    if launch_cfg.backend == "kubernetes":
        from components.pretrain.k8s import PyTorchJobConfig, run_pytorchjob

        return run_pytorchjob(tokens_dir, model_dir, cfg, PyTorchJobConfig.from_launch(launch_cfg), on_log=on_log)
    result = run_local(tokens_dir, model_dir, cfg, launch_cfg, on_log)
    if result is None:
        raise GreenfmError(f"{model_dir}: training finished but wrote no {TRAIN_REPORT_JSON} on this node")
    return result
