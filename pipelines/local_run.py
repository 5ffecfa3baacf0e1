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
from components.common.errors import exception_message, root_cause
from components.curate.inputs import discover_inputs, input_fingerprint
from pipelines.compile import pipeline_for
from pipelines.config import RunConfig
from pipelines.dag import PIPELINE_NAME
from pipelines.tasks import stage_of_task

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STARTED = re.compile(r"Executing task '([^']+)'")
_FINISHED = re.compile(r"Task '([^']+)' finished with status (\w+)")
_RANK_PREFIX = re.compile(r"^\s*\[[\w-]+\]:")  # torchrun's "[rank0]:" / "[default0]:" line prefixes


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
    """Receives kfp.local's printed log: writes it to a file, reports task starts and ends, keeps each task's
    last error message, and writes a traceback seen before (torchrun restarting the same failure) as one line."""

    def __init__(self, handle, on_event: Callable[[str, str], None] | None):
        self.handle, self.on_event, self._partial = handle, on_event, ""
        self.task = ""  # the task whose output is being printed
        self.task_errors: dict[str, str] = {}  # task -> its last exception's message
        self._traceback: list[str] = []  # the traceback being printed, held until its last line
        self._seen: dict[tuple[str, ...], int] = {}

    def write(self, text: str) -> int:
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            self._line(line)
        return len(text)

    def _line(self, raw: str) -> None:
        line = _ANSI.sub("", raw)
        self._scan(line)
        bare = _RANK_PREFIX.sub("", line).strip()
        if bare == "Traceback (most recent call last):" or self._traceback:
            self._traceback.append(raw)
            if bare != "Traceback (most recent call last):" and exception_message(bare):
                self._end_traceback(bare)
            return
        self.handle.write(raw + "\n")

    def _end_traceback(self, last: str) -> None:
        key = tuple(_RANK_PREFIX.sub("", _ANSI.sub("", line)).strip() for line in self._traceback)
        self._seen[key] = self._seen.get(key, 0) + 1
        if self._seen[key] == 1:
            self.handle.write("\n".join(self._traceback) + "\n")
        else:
            self.handle.write(f"    [the traceback above again, time {self._seen[key]}: {last}]\n")
        self._traceback = []
        cause = root_cause([last])
        if cause and self.task:
            self.task_errors[self.task] = cause

    def _scan(self, line: str) -> None:
        if match := _STARTED.search(line):
            self.task = match.group(1)
            if self.on_event:
                self.on_event(self.task, "RUNNING")
        elif (match := _FINISHED.search(line)) and self.on_event:
            self.on_event(match.group(1), match.group(2))

    def flush(self) -> None:
        self.handle.flush()

    def finish(self) -> None:
        """Write what is held back: a traceback the output ended in (every line of it), a last partial line."""
        self.handle.write("".join(line + "\n" for line in self._traceback) + self._partial)
        self._traceback, self._partial = [], ""
        self.handle.flush()


def new_run_dir(out_root: str | Path, fingerprint: str) -> Path:
    """A new directory `<UTC time>-<fingerprint>[-n]` under `out_root`. Creating it is the claim, so runs
    started at the same second into the same folder each get their own."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    root = Path(out_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    suffix = 0
    while True:
        run_dir = root / (f"{stamp}-{fingerprint[:8]}" + (f"-{suffix}" if suffix else ""))
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            suffix += 1


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


RUNNERS = ("subprocess", "docker")


def run_local(
    config: RunConfig,
    run_dir: Path,
    on_event: Callable[[str, str], None] | None = None,
    runner: str = "subprocess",
) -> LocalRun:
    """Run the whole DAG; return where everything is. Never raises for a failed task: see `succeeded`.
    runner: subprocess (each component in a subprocess of this Python) or docker (each in its image)."""
    from kfp import local

    artifacts_root = run_dir / "artifacts"
    # kfp.local rewrites paths containing "/kfp-workspace" and deletes the workspace when done.
    workspace = run_dir / "workspace"
    if runner == "docker":
        from pipelines.docker_runner import docker_runner

        kfp_runner = docker_runner(config, run_dir)
    else:
        kfp_runner = local.SubprocessRunner(use_venv=False)
    local.init(
        runner=kfp_runner,
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
    with open(log_file, "w", encoding="utf-8", buffering=1) as handle:  # line by line: a killed run keeps its log
        tee = _LogTee(handle, record)
        try:
            with contextlib.redirect_stdout(tee), contextlib.redirect_stderr(tee):
                pipeline_for(config)(**config.pipeline_arguments())  # its retries and timeouts too
        except Exception as exc:  # a failed task: kfp.local raises; say what the task itself said
            failed = [task for task, status in tasks.items() if status == "FAILURE"]
            cause = next((tee.task_errors[t] for t in reversed(failed) if t in tee.task_errors), None)
            stage = stage_of_task().get(failed[-1], failed[-1]) if failed else ""
            kfp_says = _ANSI.sub("", str(exc)).strip().splitlines()[:1] or [type(exc).__name__]
            error = f"{stage}: {cause}" if stage and cause else kfp_says[0]
        finally:
            tee.finish()
    runs = sorted(p for p in artifacts_root.glob(f"{PIPELINE_NAME}-*") if p.is_dir())
    artifacts_dir = runs[-1] if runs else artifacts_root
    shutil.rmtree(workspace, ignore_errors=True)
    return LocalRun(run_dir, artifacts_dir, log_file, succeeded=not error, error=error, tasks=tasks)
