"""Compile the DAG to KFP v2 IR YAML (what the Kubeflow UI uploads)."""

from __future__ import annotations

from pathlib import Path

from kfp import compiler
from kfp.dsl.graph_component import GraphComponent

from pipelines.config import COMPILE_TIME, DEFAULTS, RunConfig
from pipelines.dag import build_pipeline, greenfm_pipeline


def pipeline_for(config: RunConfig) -> GraphComponent:
    """The pipeline with `config`'s compile-time settings (timeouts, retries, /dev/shm size) in its tasks: what
    `compile_pipeline` writes and what a local run executes."""
    if all(getattr(config, name) == getattr(DEFAULTS, name) for name in COMPILE_TIME):
        return greenfm_pipeline()  # built once per process with these very settings
    return build_pipeline(config)


def compile_pipeline(out_file: str | Path, config: RunConfig | None = None) -> Path:
    """Write the IR. With `config`, its values become the pipeline's parameter defaults (what the UI's run form
    shows) and its compile-time settings (timeouts, retries, /dev/shm) are baked in."""
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    config = config or DEFAULTS
    compiler.Compiler().compile(pipeline_for(config), str(out_file), pipeline_parameters=config.pipeline_arguments())
    return out_file
