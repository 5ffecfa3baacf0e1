"""What every training node runs, whoever starts it (torchrun here, a PyTorchJob or TrainJob replica there):
the worker's command-line arguments and the log lines it prints. Shared by components.pretrain.launch (local
torchrun) and components.pretrain.k8s (replica commands), neither of which imports the other for it."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from components.pretrain.config import TrainConfig

WORKER_MODULE = "components.pretrain.train"
# Workers of a restarted round must not join through the store the previous round used: its keys still hold
# the dead workers' addresses, and the new process group would try to connect to them. With this, rank 0 of
# every round hosts a fresh store on a fresh port.
TORCHRUN_ENV = {"TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}


def worker_args(
    tokens_dir: str | Path, model_dir: str | Path, cfg: TrainConfig, energy_location: str = ""
) -> list[str]:
    """torchrun's arguments after its own options: the worker module and its inputs."""
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
