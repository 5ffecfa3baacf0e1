"""Whole `greenfm run`s for the tests that need them (end to end, faults, containers): the tiny configuration
they all use, the command started as a user starts it, and what a run leaves behind."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

TINY = {
    "vocab_size": 512,
    "min_documents": 50,
    "model_size": "tiny",
    "seq_len": 64,
    "batch_size": 8,
    "train_steps": 30,
    "adapt_steps": 30,
    "quality_preset": "docstrings",  # the tiny corpus (tests/conftest.py) is docstrings
    "step_retries": 0,  # the fault cases' failures are deterministic: a retry after 1 min only slows them
}


def greenfm_run(tmp_path: Path, corpus: Path, config: dict, out: Path, *options: str, **popen) -> subprocess.Popen:
    """`greenfm run --input CORPUS --config FILE --out OUT --zone FIN [options]`, started and not waited for."""
    config_file = tmp_path / f"{out.name}.yaml"
    config_file.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "pipelines.cli", "run", "--input", str(corpus), "--config", str(config_file)]
    return subprocess.Popen(
        [*command, "--out", str(out), "--zone", "FIN", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def run_to_end(
    tmp_path: Path, corpus: Path, config: dict, name: str, *options: str, timeout: float = 900
) -> subprocess.CompletedProcess:
    """A whole run into tmp_path/NAME, waited for."""
    run = greenfm_run(tmp_path, corpus, config, tmp_path / name, *options)
    try:
        stdout, stderr = run.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        run.kill()
        raise
    return subprocess.CompletedProcess(run.args, run.returncode, stdout, stderr)


def only_run_dir(out: Path) -> Path:
    """The one run directory under --out (the profile store's files and dot-folders lie beside it)."""
    (run_dir,) = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return run_dir


def manifest_of(out: Path) -> dict:
    return json.loads((only_run_dir(out) / "manifest.json").read_text())


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """The predicate's first truthy value within `timeout` seconds, else an AssertionError naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
