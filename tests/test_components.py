"""The KFP components as KFP runs them, and the stage policies their wrappers call."""

from __future__ import annotations

import builtins
import symtable
from datetime import UTC, datetime, timedelta

import pytest

from components.adapt.component import adapt_op
from components.carbon.component import select_region_op, statement_op
from components.curate.component import curate_op
from components.evaluate.component import evaluate_op
from components.pretrain.component import pretrain_op
from components.validate.component import gate_failed_op, validate_op

COMPONENTS = [
    select_region_op,
    statement_op,
    curate_op,
    validate_op,
    gate_failed_op,
    pretrain_op,
    adapt_op,
    evaluate_op,
]


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.name)
def test_component_program_defines_every_name_it_uses(component):
    """KFP runs the function's source alone (ephemeral_component.py: kfp's imports, then the function), not its
    module: a name imported at the top of component.py is undefined there."""
    program = component.component_spec.implementation.container.command[-1]
    namespace: dict = {}
    exec(compile(program, "ephemeral_component.py", "exec"), namespace)
    function = next(
        t for t in symtable.symtable(program, "ephemeral", "exec").get_children() if t.get_type() == "function"
    )
    used = set(function.get_globals())
    undefined = sorted(name for name in used if name not in namespace and not hasattr(builtins, name))
    assert undefined == []


def test_wait_for_start_sleeps_until_the_chosen_hour_but_not_past_the_limit():
    from components.carbon.placement import wait_for_start

    class Chosen:
        start = (datetime.now(UTC) + timedelta(hours=3)).isoformat()

    class Decision:
        chosen = Chosen()

    slept: list[float] = []
    assert wait_for_start(Decision(), max_wait_hours=1, sleep=slept.append) == 3600 and slept == [3600]
    Chosen.start = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    assert wait_for_start(Decision(), max_wait_hours=1, sleep=slept.append) == 0 and slept == [3600]


def test_mitigation_notes_count_the_deduplication_steps_only():
    from components.curate.job import CurateResult

    steps = [
        {"step": "exact_dedup", "removed": {"duplicate": 3}},
        {"step": "fuzzy_dedup", "removed": {"near duplicate": 2, "other": 1}},
        {"step": "dedup_like_name", "removed": {"x": 100}},  # a name that merely contains "dedup"
        {"step": "length", "removed": {"short": 7}},
    ]
    result = CurateResult(
        "out", documents=10, quarantined=0, fingerprint="f", train_tokens=500, val_tokens=0, report={"steps": steps}
    )
    assert result.mitigation_notes() == {"dedup_removed_documents": 6, "tokens_per_document": 50.0}


def test_pretrain_energy_sums_the_worker_nodes_once(tmp_path):
    from components.carbon.records import EnergyRecord
    from components.common.contracts import ENERGY_DIR
    from components.pretrain.node_energy import with_node_energy

    def record(stage: str, kwh: float, seconds: float) -> EnergyRecord:
        return EnergyRecord(
            stage=stage,
            started_at="2026-01-01T00:00:00+00:00",
            ended_at="2026-01-01T00:00:30+00:00",
            wall_seconds=seconds,
            failed=False,
            energy_kwh=kwh,
            cpu_kwh=kwh / 2,
            gpu_kwh=0.0,
            ram_kwh=kwh / 2,
            emissions_kg=kwh / 10,
            intensity_g_per_kwh=100.0,
            location="FRA",
            country="France",
            pue=1.0,
            cpu_model="cpu",
            cpu_count=2,
            gpu_model="",
            gpu_count=0,
            cpu_power_method="cpu_load",
            tracking_mode="machine",
            codecarbon_version="3.3.2",
        )

    pod = record("pretrain", 0.1, 10.0)
    assert with_node_energy(pod, tmp_path) is pod  # workers did not measure: the pod's record alone
    (tmp_path / ENERGY_DIR).mkdir()
    (tmp_path / ENERGY_DIR / "node0-attempt0.json").write_text(record("pretrain-node0", 0.5, 30.0).dumps())
    (tmp_path / ENERGY_DIR / "node1-attempt0.json").write_text("{}")  # an attempt killed before its tracker stopped
    total = with_node_energy(pod, tmp_path)
    # The waiting launcher pod may share a node with a worker: left out of the sum, kept as a note.
    assert total.stage == "pretrain" and total.energy_kwh == pytest.approx(0.5) and total.ranks == 1
    assert total.notes["launcher_process_kwh_not_counted"] == pytest.approx(0.1) and total.wall_seconds == 30.0
    assert total.notes["launcher_not_counted_because"] == "its node or a worker's is unknown"
    # Every record names its node: the launcher on a worker's node is in that node's machine-mode record ...
    for name, host in (("node0-attempt0", "gpu-a"), ("node1-attempt0", "gpu-b")):
        node = record(f"pretrain-{name[:5]}", 0.5, 30.0)
        node.host = host
        (tmp_path / ENERGY_DIR / f"{name}.json").write_text(node.dumps())
    pod.tracking_mode, pod.host = "process", "gpu-b"
    total = with_node_energy(pod, tmp_path)
    assert total.energy_kwh == pytest.approx(1.0) and total.ranks == 2 and total.nodes == 2
    assert total.notes["launcher_not_counted_because"] == "on a worker's node: in its record"
    # ... and on a node of its own, it counts (process mode: its own processes only).
    pod.host = "cpu-c"
    total = with_node_energy(pod, tmp_path)
    assert total.energy_kwh == pytest.approx(1.1) and total.ranks == 3 and total.nodes == 3
    assert total.scope.endswith("+ the launcher pod (process mode, on another node)")
    assert "launcher_process_kwh_not_counted" not in total.notes
