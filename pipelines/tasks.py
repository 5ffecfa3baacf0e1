"""The DAG's task names, read from the compiled pipeline instead of spelled out: KFP names tasks after their
component and numbers repeats (`select-region-op-2`), so one more call would shift every number. dag.py gives
each task a display name; this maps those names to KFP's task keys (what kfp.local names artifact folders
and reports in its log) and to the stage names shown to users."""

from __future__ import annotations

from functools import cache
from pathlib import Path

# Display name (dag.py's set_display_name) -> the stage name users see.
STAGE_LABELS = {
    "select-region-curate": "placement (curate)",
    "select-region-pretrain": "placement (pretrain)",
    "select-region-adapt": "placement (adapt)",
    "curate": "curate",
    "validate": "validate",
    "pretrain": "pretrain",
    "adapt": "adapt",
    "adapt-from-scratch": "adapt (from scratch)",
    "evaluate": "evaluate",
    "carbon-statement": "carbon statement",
    "gate-failed": "gate failed",
}


@cache
def task_keys() -> dict[str, tuple[str, ...]]:
    """Display name -> the keys of the tasks carrying it, in every sub-DAG of the compiled pipeline (the carbon
    statement has one in each branch of the gate)."""
    from pipelines.dag import greenfm_pipeline

    spec = greenfm_pipeline().pipeline_spec
    dags = [spec.root.dag, *(c.dag for c in spec.components.values() if c.HasField("dag"))]
    keys: dict[str, list[str]] = {}
    for dag in dags:
        for key, task in dag.tasks.items():
            if task.HasField("component_ref") and not key.startswith("condition-"):
                keys.setdefault(task.task_info.name, []).append(key)
    return {name: tuple(sorted(found)) for name, found in keys.items()}


def task_key(display_name: str) -> str:
    """The one task key of a stage that runs once per run."""
    keys = task_keys()[display_name]
    if len(keys) != 1:
        raise ValueError(f"{display_name}: {len(keys)} tasks carry this name ({', '.join(keys)})")
    return keys[0]


def run_artifact(run_dir: str | Path, display_name: str, artifact: str) -> Path:
    """An output artifact of a stage in a kept run directory (`greenfm run`: artifacts/<pipeline>/<task>/)."""
    pattern = f"artifacts/greenfm-*/{task_key(display_name)}/{artifact}"
    found = sorted(Path(run_dir).glob(pattern))
    if len(found) != 1:
        raise FileNotFoundError(f"{run_dir}: expected one {pattern}, found {len(found)}")
    return found[0]


@cache
def stage_of_task() -> dict[str, str]:
    """Task key -> stage name shown to users."""
    return {key: STAGE_LABELS[name] for name, keys in task_keys().items() for key in keys if name in STAGE_LABELS}
