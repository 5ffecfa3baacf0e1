"""Task names come from the compiled DAG: every task has a display name with a stage label, and the keys KFP
generated (`select-region-op-2`) are looked up, never spelled."""

import pytest

from pipelines.dag import greenfm_pipeline
from pipelines.tasks import STAGE_LABELS, run_artifact, stage_of_task, task_key, task_keys


def _all_tasks():
    spec = greenfm_pipeline().pipeline_spec
    dags = [spec.root.dag, *(c.dag for c in spec.components.values() if c.HasField("dag"))]
    return {
        key: task.task_info.name for dag in dags for key, task in dag.tasks.items() if task.HasField("component_ref")
    }


def test_every_component_task_has_a_labelled_display_name():
    components = {key: name for key, name in _all_tasks().items() if not key.startswith("condition-")}
    assert set(stage_of_task()) == set(components)  # a new task without a label fails here
    assert set(task_keys()) == set(STAGE_LABELS)
    # Only the carbon statement repeats: one in each branch of the gate.
    assert {name: keys for name, keys in task_keys().items() if len(keys) > 1} == {
        "carbon-statement": task_keys()["carbon-statement"]
    }


def test_each_placement_step_is_the_one_its_stage_reads():
    spec = greenfm_pipeline().pipeline_spec
    dags = [spec.root.dag, *(c.dag for c in spec.components.values() if c.HasField("dag"))]
    tasks = {key: task for dag in dags for key, task in dag.tasks.items()}
    for stage in ("curate", "pretrain", "adapt"):
        select = tasks[task_key(f"select-region-{stage}")]
        assert select.inputs.parameters["stage"].runtime_value.constant.string_value == stage
        location = tasks[task_key(stage)].inputs.parameters["location"].task_output_parameter
        assert location.producer_task == task_key(f"select-region-{stage}")


def test_a_stage_artifact_is_found_in_a_kept_run_by_the_stage_name(tmp_path):
    model = tmp_path / "artifacts" / "greenfm-2026-12-08" / task_key("pretrain") / "model"
    model.mkdir(parents=True)
    assert run_artifact(tmp_path, "pretrain", "model") == model
    with pytest.raises(FileNotFoundError, match=f"expected one artifacts/greenfm-\\*/{task_key('curate')}/curated"):
        run_artifact(tmp_path, "curate", "curated")
    (tmp_path / "artifacts" / "greenfm-2026-12-09" / task_key("pretrain") / "model").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="found 2"):  # two pipelines' artifacts: which one is ambiguous
        run_artifact(tmp_path, "pretrain", "model")
