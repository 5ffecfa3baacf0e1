"""The run manifest: everything needed to reproduce a run and to check that a rerun matched it."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

from components.common.fingerprint import tree_sha256
from pipelines.config import RunConfig
from pipelines.local_run import LocalRun
from pipelines.tasks import task_key

MANIFEST = "manifest.json"
PACKAGES = (
    "greenfm",
    "torch",
    "kfp",
    "kfp-kubernetes",
    "pyspark",
    "great-expectations",
    "codecarbon",
    "tokenizers",
    "pandas",
    "pyarrow",
)
# Files whose bytes carry timestamps or run ids by design; their meaning is hashed elsewhere.
_VOLATILE = {"executor_output.json"}


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(repo: Path) -> dict | None:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def executor_outputs(task_dir: Path) -> dict:
    path = task_dir / "executor_output.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text()).get("parameterValues", {})


def stage_outputs(run: LocalRun) -> dict[str, dict]:
    """Per task: the hash of each output artifact and its output parameters (energy records aside)."""
    stages = {}
    for task_dir in sorted(p for p in run.artifacts_dir.iterdir() if p.is_dir()):
        artifacts = {
            child.name: tree_sha256(child) for child in sorted(task_dir.iterdir()) if child.name not in _VOLATILE
        }
        parameters = {k: v for k, v in executor_outputs(task_dir).items() if k != "energy"}
        stages[task_dir.name] = {
            "status": run.tasks.get(task_dir.name, "unknown"),
            "artifacts": artifacts,
            "parameters": parameters,
        }
    return stages


def build_manifest(config: RunConfig, run: LocalRun, started_at: str, finished_at: str, repo: Path) -> dict:
    stages = stage_outputs(run)
    curate = stages.get(task_key("curate"), {}).get("parameters", {})
    pretrain = stages.get(task_key("pretrain"), {}).get("parameters", {})
    return {
        "greenfm_manifest": 1,
        "run_dir": str(run.run_dir),
        "started_at": started_at,
        "finished_at": finished_at,
        "succeeded": run.succeeded,
        "error": run.error,
        "config": asdict(config),
        "seeds": {"seed": config.seed},
        "input_fingerprint": config.data_fingerprint,
        "curated_data_sha256": curate.get("fingerprint"),
        "checkpoint_sha256": pretrain.get("checkpoint_sha256"),
        "versions": package_versions(),
        "platform": {"python": sys.version.split()[0], "machine": platform.machine(), "system": platform.platform()},
        "git": git_commit(repo),
        "stages": stages,
    }


def write_manifest(manifest: dict, run_dir: Path) -> Path:
    path = run_dir / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return path
