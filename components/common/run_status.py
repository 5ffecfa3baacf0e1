"""A run directory's state, in its `RUN_STATUS` file: running, failed, interrupted or succeeded.

`greenfm run` writes "running" (with its pid) before the first task starts and its verdict when it ends; the
run's reaper (pipelines/reaper.py) writes "interrupted" when the run dies first. A "running" whose owner
process is gone reads as interrupted, so even a run whose reaper died with it is never taken for a live or a
finished one. Whatever takes a model from a run (lineage, `greenfm watch`, a warm start) asks `finished_ok`.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import psutil

from components.common.atomic import atomic_write_text

RUN_STATUS = "RUN_STATUS"
RUNNING, FAILED, INTERRUPTED, SUCCEEDED = "running", "failed", "interrupted", "succeeded"
STATES = (RUNNING, FAILED, INTERRUPTED, SUCCEEDED)


@dataclass(frozen=True)
class RunStatus:
    status: str
    pid: int = 0  # the `greenfm run` process that owns the directory
    pid_started: float = 0.0  # its start time: a recycled pid is not mistaken for the owner
    host: str = ""
    updated_at: str = ""
    error: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def process_started(pid: int) -> float:
    return psutil.Process(pid).create_time()


def write_status(run_dir: str | Path, status: str, error: str = "", pid: int | None = None) -> RunStatus:
    """Record `status` for the run in `run_dir`, owned by the live process `pid` (default: this one)."""
    pid = os.getpid() if pid is None else pid
    return write_record(run_dir, RunStatus(status, pid, process_started(pid), socket.gethostname(), error=error))


def write_record(run_dir: str | Path, record: RunStatus) -> RunStatus:
    if record.status not in STATES:
        raise ValueError(f"run status {record.status!r}: expected one of {', '.join(STATES)}")
    record = replace(record, updated_at=_now(), error=record.error.strip())
    atomic_write_text(Path(run_dir) / RUN_STATUS, record.to_json())
    return record


def owner_alive(record: RunStatus) -> bool:
    if record.host and record.host != socket.gethostname():
        return True  # another machine's process: not ours to judge
    try:
        return abs(process_started(record.pid) - record.pid_started) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def recorded_status(run_dir: str | Path) -> RunStatus | None:
    """The RUN_STATUS file as written; None for a directory that never had one."""
    path = Path(run_dir) / RUN_STATUS
    try:
        data = json.loads(path.read_text())
        return RunStatus(**{k: v for k, v in data.items() if k in RunStatus.__dataclass_fields__})
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as error:  # written atomically, so only tampering gets here
        return RunStatus(INTERRUPTED, error=f"{path}: unreadable ({error})")


def read_status(run_dir: str | Path) -> RunStatus | None:
    """The run's state as it stands now: a "running" whose owner is gone is interrupted."""
    record = recorded_status(run_dir)
    if record is not None and record.status == RUNNING and not owner_alive(record):
        return replace(record, status=INTERRUPTED, error=f"its process {record.pid} ended without a verdict")
    return record


def is_run_dir(folder: Path) -> bool:
    """A `greenfm run` directory: one with a RUN_STATUS, or (written before RUN_STATUS existed) artifacts
    beside a manifest or a pipeline log."""
    if (folder / RUN_STATUS).is_file():
        return True
    return (folder / "artifacts").is_dir() and any(
        (folder / name).is_file() for name in ("manifest.json", "pipeline.log")
    )


def run_dirs_under(root: str | Path) -> list[Path]:
    """Every run directory under `root`, itself included."""
    root = Path(root)
    candidates = {root} | {p.parent for name in (RUN_STATUS, "pipeline.log") for p in root.rglob(name)}
    return sorted(folder for folder in candidates if is_run_dir(folder))


def run_dir_of(path: str | Path) -> Path | None:
    """The run directory `path` lies in, if any."""
    path = Path(path).absolute()
    return next((folder for folder in (path, *path.parents) if is_run_dir(folder)), None)


def run_state(run_dir: str | Path) -> str:
    """running / failed / interrupted / succeeded. A run from before RUN_STATUS existed is judged by its
    manifest; without one it never finished."""
    record = read_status(run_dir)
    if record is not None:
        return record.status
    manifest = Path(run_dir) / "manifest.json"
    try:
        return SUCCEEDED if json.loads(manifest.read_text()).get("succeeded") else FAILED
    except (OSError, ValueError):
        return INTERRUPTED


def finished_ok(path: str | Path) -> bool:
    """Whether a model (or any output) at `path` may be used: it lies outside every run directory (a model
    store, a folder of its own), or in a run that succeeded."""
    run_dir = run_dir_of(path)
    return run_dir is None or run_state(run_dir) == SUCCEEDED
