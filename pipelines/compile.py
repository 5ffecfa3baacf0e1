"""Compile the DAG to KFP v2 IR YAML (what the Kubeflow UI uploads)."""

from __future__ import annotations

from pathlib import Path

from kfp import compiler, dsl

from pipelines.cluster_tasks import compiling_with
from pipelines.config import COMPILE_TIME, DEFAULTS, RunConfig
from pipelines.dag import PIPELINE_DESCRIPTION, PIPELINE_NAME, greenfm_pipeline


def pipeline_for(config: RunConfig):
    """The pipeline with `config`'s compile-time settings (timeouts, retries, /dev/shm size) in its tasks: what
    `compile_pipeline` writes and what a local run executes."""
    if all(getattr(config, name) == getattr(DEFAULTS, name) for name in COMPILE_TIME):
        return greenfm_pipeline  # decorated at import with these very settings; a graph costs seconds to build
    with compiling_with(config):
        # KFP builds a pipeline's graph when it is decorated: decorate again so the graph sees `config`.
        return dsl.pipeline(name=PIPELINE_NAME, description=PIPELINE_DESCRIPTION)(greenfm_pipeline.pipeline_func)


def compile_pipeline(out_file: str | Path, config: RunConfig | None = None) -> Path:
    """Write the IR. With `config`, its values become the pipeline's parameter defaults (what the UI's run form
    shows) and its compile-time settings (timeouts, retries, /dev/shm) are baked in."""
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    config = config or DEFAULTS
    compiler.Compiler().compile(pipeline_for(config), str(out_file), pipeline_parameters=config.pipeline_arguments())
    return out_file
