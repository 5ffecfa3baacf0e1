"""Run the DAG on this machine with kfp.local: each component in a subprocess of this Python, artifacts kept
under the run's own directory, kfp's log captured to a file and turned into stage events."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from components.carbon.catalog import this_machine_catalog
from components.common.default_data import write_default_corpus
from components.curate.inputs import discover_inputs, input_fingerprint
from pipelines.config import RunConfig
from pipelines.dag import PIPELINE_NAME, greenfm_pipeline
from pipelines.tasks import stage_of_task

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STARTED = re.compile(r"Executing task '([^']+)'")
_FINISHED = re.compile(r"Task '([^']+)' finished with status (\w+)")

STAGES = stage_of_task()  # task key -> stage name shown to users


@dataclass
class LocalRun:
    run_dir: Path
    artifacts_dir: Path  # kfp's pipeline_root/<pipeline run>
    log_file: Path
    succeeded: bool
    error: str = ""
    tasks: dict[str, str] = field(default_factory=dict)  # task name -> final status

    def task_dir(self, task: str) -> Path:
        return self.artifacts_dir / task


class _LogTee(io.TextIOBase):
    """Receives kfp.local's printed log: writes it to a file and reports task starts and ends."""

    def __init__(self, handle, on_event: Callable[[str, str], None] | None):
        self.handle, self.on_event, self._partial = handle, on_event, ""

    def write(self, text: str) -> int:
        self.handle.write(text)
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            self._scan(_ANSI.sub("", line))
        return len(text)

    def _scan(self, line: str) -> None:
        if not self.on_event:
            return
        if match := _STARTED.search(line):
            self.on_event(match.group(1), "RUNNING")
        elif match := _FINISHED.search(line):
            self.on_event(match.group(1), match.group(2))

    def flush(self) -> None:
        self.handle.flush()


def new_run_dir(out_root: str | Path, fingerprint: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = Path(out_root).resolve() / f"{stamp}-{fingerprint[:8]}"
    suffix = 1
    while run_dir.exists():
        run_dir = run_dir.with_name(f"{stamp}-{fingerprint[:8]}-{suffix}")
        suffix += 1
    run_dir.mkdir(parents=True)
    return run_dir


def prepare_input(config: RunConfig, staging_dir: Path) -> RunConfig:
    """Resolve the input (writing the default corpus when none is given), check it, fingerprint it."""
    if not config.input_uri:
        config.input_uri = str(write_default_corpus(staging_dir / "input"))
        if config.quality_preset == "auto":  # the step sees a file path now: say that it is the built-in corpus
            config.quality_preset = "docstrings"
    files = discover_inputs(config.input_uri)
    config.input_uri = str(Path(config.input_uri).resolve())
    config.data_fingerprint = input_fingerprint(files)
    return config


def on_this_machine(config: RunConfig, zone: str = "USA", pue: float = 1.0) -> RunConfig:
    """Every stage of a local run runs here: without an explicit catalog, placement has one region, this
    machine on grid `zone` (ISO3 or ISO3/state), and the statement measures the run there."""
    if config.region_catalog:
        return config
    return replace(config, region_catalog=this_machine_catalog(zone, pue))


def run_local(config: RunConfig, run_dir: Path, on_event: Callable[[str, str], None] | None = None) -> LocalRun:
    """Run the whole DAG; return where everything is. Never raises for a failed task: see `succeeded`."""
    from kfp import local

    artifacts_root = run_dir / "artifacts"
    # kfp.local rewrites paths containing "/kfp-workspace" and deletes the workspace when done.
    workspace = run_dir / "workspace"
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(artifacts_root),
        workspace_root=str(workspace),
        raise_on_error=True,
    )
    log_file = run_dir / "pipeline.log"
    tasks: dict[str, str] = {}

    def record(task: str, status: str) -> None:
        tasks[task] = status
        if on_event:
            on_event(task, status)

    error = ""
    with open(log_file, "w", encoding="utf-8") as handle:
        tee = _LogTee(handle, record)
        try:
            with contextlib.redirect_stdout(tee), contextlib.redirect_stderr(tee):
                greenfm_pipeline(**config.pipeline_arguments())
        except Exception as exc:  # a failed task: kfp.local raises; the caller explains it
            error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    runs = sorted(p for p in artifacts_root.glob(f"{PIPELINE_NAME}-*") if p.is_dir())
    artifacts_dir = runs[-1] if runs else artifacts_root
    shutil.rmtree(workspace, ignore_errors=True)
    return LocalRun(run_dir, artifacts_dir, log_file, succeeded=not error, error=error, tasks=tasks)
