"""The pretraining stage's energy when the workers measure themselves: one record per node and attempt,
written beside the model, and the stage's total built from them."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from components.carbon.records import EnergyRecord
from components.common.contracts import ENERGY_DIR
from components.pretrain.config import TrainResult


def measure_node(model_dir: str | Path, location_json: str, work: Callable[[], TrainResult]) -> None:
    """One tracker per node (its local rank 0) in machine mode: the node's GPUs are the job's, and one tracker
    per node counts every GPU and core once. Each attempt (torchrun restarts the workers after a failure) writes its own
    record, also when it fails, so the energy of lost work is counted too."""
    from components.carbon.tracking import Location, measure

    node, attempt = os.environ.get("GROUP_RANK", "0"), os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    folder = Path(model_dir) / ENERGY_DIR
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"node{node}-attempt{attempt}.json"
    try:
        _, record = measure(f"pretrain-node{node}", Location(**json.loads(location_json)), work, "machine")
    except Exception as error:
        failed = getattr(error, "energy_record", None)
        target.write_text(failed.dumps() if failed else "{}")
        raise
    target.write_text(record.dumps())


def node_energy_records(model_dir: str | Path) -> list[EnergyRecord]:
    """The per-node (per-attempt) records the workers wrote; empty when the workers did not measure. An empty
    file is an attempt killed before its tracker stopped (nothing to count)."""
    folder = Path(model_dir) / ENERGY_DIR
    paths = sorted(folder.glob("node*-attempt*.json")) if folder.is_dir() else []
    texts = [(p, p.read_text()) for p in paths]
    return [EnergyRecord.from_json(text, str(p)) for p, text in texts if text.strip() not in ("", "{}")]


def with_node_energy(energy: EnergyRecord, model_dir: str | Path) -> EnergyRecord:
    """The stage's energy: the sum of the worker nodes' records when the workers measured themselves (a
    PyTorchJob or TrainJob; one machine-mode tracker per node), else the launching pod's own.

    The launching pod only waits (its record is process mode). When every record names its node, it counts
    unless it shares a node with a worker, whose machine-mode record already covers it (aggregate_ranks); when
    a node is unknown it might, so it is left out and kept as a note: no node is counted twice either way."""
    from components.carbon.tracking import aggregate_ranks

    nodes = node_energy_records(model_dir)
    if not nodes:
        return energy
    named = all(r.host and not r.host.startswith("pod:") for r in [energy, *nodes])
    total = aggregate_ranks([*nodes, energy] if named else nodes)
    launcher_counted = named and not any(
        d["stage"] == energy.stage for d in total.notes.get("left_out_double_counts", [])
    )
    total.stage = energy.stage
    total.scope = f"{len(nodes)} node tracker(s), one per node (machine mode)" + (
        " + the launcher pod (process mode, on another node)" if launcher_counted else ""
    )
    if not launcher_counted:
        why = "on a worker's node: in its record" if named else "its node or a worker's is unknown"
        total.notes["launcher_process_kwh_not_counted"] = energy.energy_kwh
        total.notes["launcher_not_counted_because"] = why
    return total
