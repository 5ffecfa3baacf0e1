"""What each pipeline task needs from Kubernetes, in one place: dag.py calls one function per task.

Every task runs as the images' non-root user (`set_security_context`; the KFP backend adds the rest of the
restricted profile itself: no privilege escalation, all capabilities dropped, seccomp RuntimeDefault), asks
for CPU and memory (requests equal limits) from the run's parameters, has a deadline (`set_timeout`, so a
mistake ends instead of hanging) and retries transient failures (`set_retry`). The torch steps get a
memory-backed /dev/shm; pretrain and adapt request GPUs (`gpus_per_node` of `gpu_resource`) and tolerate the
GPU nodes' taints. Steps that create pods (curate's Spark executors or SparkApplication, pretrain's
PyTorchJob / TrainJob) learn their own pod from the downward API, to own what they create and to be reachable
by their executors, and get the compiled image template so those pods run the same release as the step.

Timeouts, retries and the /dev/shm size are constants to KFP: they come from the config `greenfm compile`
compiled with (`compiling_with`), not from run parameters.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from kfp import kubernetes
from kfp.dsl.pipeline_channel import PipelineChannel

from components.common.images import IMAGE_TEMPLATE_ENV, IMAGE_UID, template
from components.common.k8s_jobs import POD_ENV
from pipelines.config import DEFAULTS, RunConfig

_compile_config: ContextVar[RunConfig] = ContextVar("greenfm_compile_config", default=DEFAULTS)
SHM_VOLUME = "dshm"


@contextmanager
def compiling_with(config: RunConfig) -> Iterator[None]:
    """Compile-time settings (timeouts, retries, /dev/shm size) for pipelines compiled inside this block."""
    token = _compile_config.set(config)
    try:
        yield
    finally:
        _compile_config.reset(token)


def _hours(hours: float) -> int:
    return max(1, round(hours * 3600))


def _consumes(task, *values) -> None:
    """Declare the run parameters a task uses only in its resources: KFP's compiler passes a parameter into a
    condition's sub-DAG only for the channels its tasks declare, and a task inside dsl.If whose resources name
    an undeclared one cannot resolve them (the driver, and kfp.local, fail on the missing input)."""
    task.register_pipeline_channels([v for v in values if isinstance(v, PipelineChannel)])


def _common(task, cpu, memory, timeout_hours: float, retries: bool = True):
    config = _compile_config.get()
    kubernetes.set_security_context(task, run_as_user=IMAGE_UID, run_as_non_root=True)
    task.set_cpu_request(cpu).set_cpu_limit(cpu).set_memory_request(memory).set_memory_limit(memory)
    _consumes(task, cpu, memory)
    kubernetes.set_timeout(task, _hours(timeout_hours))
    if retries and config.step_retries:
        task.set_retry(num_retries=config.step_retries, backoff_duration="60s", backoff_factor=2.0)
    task.set_env_variable(IMAGE_TEMPLATE_ENV, template())
    return task


def _creates_pods(task):
    """The step creates pods: tell it its own pod (owner of what it creates; the Spark driver's address)."""
    for env, field_path in POD_ENV.items():
        kubernetes.use_field_path_as_env(task, env, field_path)
    return task


def _torch(task):
    kubernetes.empty_dir_mount(task, SHM_VOLUME, "/dev/shm", medium="Memory", size_limit=_compile_config.get().shm_size)
    return task


def control_task(task, p: dict, retries: bool = True):
    """select-region, carbon statement, gate-failed (which fails on purpose: `retries=False`)."""
    return _common(task, p["control_cpu"], p["control_memory"], _compile_config.get().control_timeout_hours, retries)


def curate_task(task, p: dict):
    return _creates_pods(_common(task, p["data_cpu"], p["data_memory"], _compile_config.get().data_timeout_hours))


def validate_task(task, p: dict):
    return _common(task, p["data_cpu"], p["data_memory"], _compile_config.get().data_timeout_hours)


def evaluate_task(task, p: dict):
    return _torch(_common(task, p["train_cpu"], p["train_memory"], _compile_config.get().train_timeout_hours))


def gpu_task(task, p: dict):
    """pretrain and adapt: GPUs on the step's pod, the GPU nodes' taints tolerated."""
    _torch(_common(task, p["train_cpu"], p["train_memory"], _compile_config.get().train_timeout_hours))
    task.set_accelerator_type(p["gpu_resource"]).set_accelerator_limit(p["gpus_per_node"])
    _consumes(task, p["gpu_resource"], p["gpus_per_node"])
    kubernetes.add_toleration_json(task, p["gpu_tolerations"])
    return task


def pretrain_task(task, p: dict):
    return _creates_pods(gpu_task(task, p))
