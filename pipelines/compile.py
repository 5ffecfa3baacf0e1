"""Compile the DAG to KFP v2 IR YAML (what the Kubeflow UI uploads)."""

from __future__ import annotations

from pathlib import Path

from kfp import compiler

from pipelines.dag import greenfm_pipeline


def compile_pipeline(out_file: str | Path) -> Path:
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(greenfm_pipeline, str(out_file))
    return out_file
