"""The compiled pipeline (what the Kubeflow UI uploads) gives every task what a cluster needs: a non-root
security context, CPU and memory requests and limits, a deadline, retries, and (pretrain, adapt) GPUs, GPU
tolerations and a memory-backed /dev/shm. Read from the IR and its Kubernetes platform spec."""

from __future__ import annotations

import pytest
import yaml

from components.common.images import IMAGE_TEMPLATE_ENV, IMAGE_UID, template
from pipelines.compile import compile_pipeline
from pipelines.config import COMPILE_TIME, DEFAULTS, load_config

GPU_STEPS = {"exec-pretrain-op", "exec-adapt-op", "exec-adapt-from-scratch-op"}
TORCH_STEPS = GPU_STEPS | {"exec-evaluate-op"}
POD_CREATORS = {"exec-curate-op", "exec-pretrain-op"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    pipeline, platform = yaml.safe_load_all(compile_pipeline(tmp_path_factory.mktemp("ir") / "p.yaml").read_text())
    return pipeline, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def _all_tasks(pipeline: dict) -> dict:
    """Every task of the DAG and its branches, by task id."""
    tasks = {}
    for spec in [pipeline["root"], *pipeline["components"].values()]:
        tasks.update((spec.get("dag") or {}).get("tasks", {}))
    return tasks


def test_every_executor_has_security_context_resources_and_timeout(compiled):
    pipeline, platform = compiled
    executors = pipeline["deploymentSpec"]["executors"]
    assert len(executors) >= 10
    for name, executor in executors.items():
        settings = platform.get(name, {})
        assert settings.get("securityContext") == {"runAsNonRoot": True, "runAsUser": str(IMAGE_UID)}, name
        assert int(settings.get("activeDeadlineSeconds", 0)) > 0, name
        resources = executor["container"].get("resources", {})
        for key in ("resourceCpuRequest", "resourceCpuLimit", "resourceMemoryRequest", "resourceMemoryLimit"):
            assert resources.get(key, "").startswith("{{$.inputs.parameters['pipelinechannel--"), (name, key)
        env = {e["name"]: e["value"] for e in executor["container"].get("env", [])}
        assert env.get(IMAGE_TEMPLATE_ENV) == template(), name  # the pods it creates run the same release


def test_gpu_steps_request_gpus_tolerate_taints_and_have_shm(compiled):
    pipeline, platform = compiled
    executors = pipeline["deploymentSpec"]["executors"]
    for name, executor in executors.items():
        resources = executor["container"]["resources"]
        settings = platform[name]
        if name in GPU_STEPS:
            assert resources["accelerator"] == {
                "resourceCount": "{{$.inputs.parameters['pipelinechannel--gpus_per_node']}}",
                "resourceType": "{{$.inputs.parameters['pipelinechannel--gpu_resource']}}",
            }
            assert settings["tolerations"] == [
                {"tolerationJson": {"componentInputParameter": "pipelinechannel--gpu_tolerations"}}
            ]
        else:
            assert "accelerator" not in resources and "tolerations" not in settings, name
        shm = [m for m in settings.get("emptyDirMounts", []) if m["mountPath"] == "/dev/shm"]
        if name in TORCH_STEPS:
            assert shm == [
                {"medium": "Memory", "mountPath": "/dev/shm", "sizeLimit": DEFAULTS.shm_size, "volumeName": "dshm"}
            ]
        else:
            assert not shm, name


def test_pod_creators_know_their_pod(compiled):
    _, platform = compiled
    for name, settings in platform.items():
        paths = {e["name"]: e["fieldPath"] for e in settings.get("fieldPathAsEnv", [])}
        if name in POD_CREATORS:
            assert {
                "POD_NAME": "metadata.name",
                "POD_UID": "metadata.uid",
                "POD_IP": "status.podIP",
            }.items() <= paths.items()
        else:
            assert "POD_UID" not in paths, name


def test_every_task_but_the_gate_retries(compiled):
    pipeline, _ = compiled
    tasks = _all_tasks(pipeline)
    components = pipeline["components"]
    runnable = {name: task for name, task in tasks.items() if "dag" not in components[task["componentRef"]["name"]]}
    assert {"gate-failed-op", "pretrain-op", "select-region-op-3"} <= set(runnable)
    for name, task in runnable.items():
        policy = task.get("retryPolicy")
        if name == "gate-failed-op":
            assert policy is None
        else:
            assert policy and policy["maxRetryCount"] == DEFAULTS.step_retries and policy["backoffDuration"] == "60s", (
                name
            )


def test_every_input_a_branch_task_reads_reaches_the_branch(compiled):
    """A task inside dsl.If reads its resources from run parameters; the branch's sub-DAG must declare each one
    its tasks take from their parent (componentInputParameter), or the driver cannot resolve it."""
    pipeline, _ = compiled
    branches = {name: c for name, c in pipeline["components"].items() if "dag" in c}
    assert branches
    for name, component in branches.items():
        declared = set((component.get("inputDefinitions") or {}).get("parameters", {}))
        for task_name, task in component["dag"]["tasks"].items():
            wanted = {
                spec["componentInputParameter"]
                for spec in (task.get("inputs") or {}).get("parameters", {}).values()
                if "componentInputParameter" in spec
            }
            assert wanted <= declared, (name, task_name, sorted(wanted - declared))


def test_resource_defaults_are_run_parameters(compiled):
    pipeline, _ = compiled
    inputs = pipeline["root"]["inputDefinitions"]["parameters"]
    assert inputs["train_memory"]["defaultValue"] == DEFAULTS.train_memory
    assert inputs["gpu_tolerations"]["defaultValue"] == DEFAULTS.gpu_tolerations
    assert not set(COMPILE_TIME) & set(inputs)  # baked in, not parameters that would do nothing


def test_compile_config_bakes_timeouts_retries_and_defaults(tmp_path):
    config_file = tmp_path / "run.yaml"
    config_file.write_text("train_timeout_hours: 2\nstep_retries: 0\nshm_size: 1Gi\ntrain_cpu: '16'\n")
    pipeline, platform = yaml.safe_load_all(compile_pipeline(tmp_path / "p.yaml", load_config(config_file)).read_text())
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executors["exec-pretrain-op"]["activeDeadlineSeconds"] == "7200"
    assert executors["exec-curate-op"]["activeDeadlineSeconds"] == str(int(DEFAULTS.data_timeout_hours * 3600))
    assert executors["exec-adapt-op"]["emptyDirMounts"][0]["sizeLimit"] == "1Gi"
    assert not any("retryPolicy" in task for task in _all_tasks(pipeline).values())
    assert pipeline["root"]["inputDefinitions"]["parameters"]["train_cpu"]["defaultValue"] == "16"


def test_list_parameters_reject_other_types(tmp_path):
    from components.common.errors import GreenfmError

    config_file = tmp_path / "run.yaml"
    config_file.write_text("gpu_tolerations: nvidia\n")
    with pytest.raises(GreenfmError, match="gpu_tolerations must be a list"):
        load_config(config_file)


def test_greenfm_compile_output_is_ready_for_either_kubeflow_profile(tmp_path):
    """`greenfm compile` writes one IR for standalone and multi-user Kubeflow: the namespace and the service
    account are the run's (chosen at submission, `greenfm submit --namespace/--service-account`), and nothing
    in the IR names either profile's. Every task has a security context, resources and a deadline; the GPU
    steps an accelerator."""
    from typer.testing import CliRunner

    from pipelines.cli import app
    from tests.fake_k8s import MULTI_USER, STANDALONE

    out = tmp_path / "greenfm-pipeline.yaml"
    result = CliRunner().invoke(app, ["compile", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    for namespace, account in (STANDALONE, MULTI_USER):
        assert namespace not in text and account not in text
    pipeline, platform = yaml.safe_load_all(text)
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(executors) == set(pipeline["deploymentSpec"]["executors"])
    for name, executor in pipeline["deploymentSpec"]["executors"].items():
        assert executors[name]["securityContext"]["runAsNonRoot"] is True, name
        assert int(executors[name]["activeDeadlineSeconds"]) > 0, name
        resources = executor["container"]["resources"]
        assert {"resourceCpuLimit", "resourceMemoryLimit", "resourceCpuRequest", "resourceMemoryRequest"} <= set(
            resources
        ), name
        assert ("accelerator" in resources) == (name in GPU_STEPS), name


def test_no_import_builds_the_graph():
    """KFP's inspect.stack() per task setting costs seconds under an import (frozen importlib frames): the graph is
    built when first asked for, never as a side effect of importing the CLI or the DAG."""
    import subprocess
    import sys

    probe = "import pipelines.cli, pipelines.local_run, pipelines.compile, pipelines.dag as d; "
    probe += "print(d.greenfm_pipeline.cache_info().currsize)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "0"


def test_the_default_graph_serves_every_config_with_the_default_compile_time_settings():
    """A local run's config differs from the defaults in run parameters only: those are arguments of the graph
    built once per process, so it is reused; other timeouts, retries or /dev/shm need a graph of their own."""
    from dataclasses import replace

    from pipelines.compile import pipeline_for
    from pipelines.dag import greenfm_pipeline

    assert pipeline_for(replace(DEFAULTS, input_uri="/data/corpus.jsonl", train_steps=7)) is greenfm_pipeline()
    rebuilt = pipeline_for(replace(DEFAULTS, step_retries=DEFAULTS.step_retries + 1))
    assert rebuilt is not greenfm_pipeline() and rebuilt.pipeline_spec != greenfm_pipeline().pipeline_spec
