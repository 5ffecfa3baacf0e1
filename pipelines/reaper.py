"""Nothing of a run outlives it: a watchdog process that ends every process the run started when the run ends,
however it ends (kill -9 of its pid or of its process group included).

kfp.local starts each task in `sh -c python ...`, the task starts Spark's JVM (which forks Python workers) or
torchrun (which starts one worker per rank); none of them dies with its parent, and a run killed by SIGKILL
cannot clean up. So `greenfm run` puts a token in the environment its children inherit and starts this
watchdog in a session of its own, holding the read end of a pipe whose write end only the run holds. When
the run ends the pipe reads EOF; the watchdog then SIGKILLs every process carrying the token (until none is
left, so a child forked meanwhile is caught too) and, when RUN_STATUS still says running, marks the run
interrupted.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psutil

from components.common.run_status import FAILED, INTERRUPTED, RUNNING, recorded_status, write_record, write_status

TOKEN_ENV = "GREENFM_RUN_TOKEN"
_SWEEPS = 50  # a process tree forks faster than one sweep kills only in a pathological case


def processes_of(token: str) -> list[psutil.Process]:
    """Every process (but this one) whose environment carries the run's token."""
    found = []
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error, OSError):
            if process.environ().get(TOKEN_ENV) == token:
                found.append(process)
    return found


def kill_all(token: str) -> int:
    """SIGKILL every process of the run until a sweep finds none; return how many were killed."""
    killed = 0
    for _ in range(_SWEEPS):
        alive = processes_of(token)
        if not alive:
            break
        for process in alive:
            with contextlib.suppress(psutil.Error):
                process.kill()
                killed += 1
        psutil.wait_procs(alive, timeout=2)
    return killed


@contextlib.contextmanager
def reaped(run_dir: Path) -> Iterator[str]:
    """Within the block, every process started from here carries the run's token, and a watchdog ends them
    all when this process ends (the block's end, an exception, or a kill)."""
    token = uuid.uuid4().hex
    read_end, write_end = os.pipe()  # not inherited: only this process holds the write end
    with open(run_dir / "reaper.log", "ab") as log:
        watchdog = subprocess.Popen(
            [sys.executable, "-m", "pipelines.reaper", token, str(run_dir), str(read_end), str(os.getpid())],
            pass_fds=(read_end,),
            start_new_session=True,  # a kill of the run's process group spares it
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={k: v for k, v in os.environ.items() if k != TOKEN_ENV},
        )
    os.close(read_end)
    previous = os.environ.get(TOKEN_ENV)
    os.environ[TOKEN_ENV] = token
    try:
        yield token
    finally:
        if previous is None:
            os.environ.pop(TOKEN_ENV, None)
        else:
            os.environ[TOKEN_ENV] = previous
        os.close(write_end)  # the watchdog sweeps now: anything of the run still alive is a straggler
        watchdog.wait()


@contextlib.contextmanager
def supervised(run_dir: Path) -> Iterator[None]:
    """The run in `run_dir` is "running" within the block, and its processes end with it (see `reaped`).
    An exception records it as interrupted (Ctrl-C) or failed; the block records its own verdict."""
    write_status(run_dir, RUNNING)
    with reaped(run_dir):
        try:
            yield
        except KeyboardInterrupt:
            write_status(run_dir, INTERRUPTED, "interrupted (Ctrl-C)")
            raise
        except BaseException as error:
            write_status(run_dir, FAILED, str(error) or type(error).__name__)
            raise


def watch(token: str, run_dir: Path, read_end: int, owner: int) -> int:
    """Block until the owner's end of the pipe closes, then end its processes and settle its status."""
    while os.read(read_end, 1):
        pass
    killed = kill_all(token)
    record = recorded_status(run_dir)
    if record is not None and record.status == RUNNING and record.pid == owner:
        write_record(run_dir, replace(record, status=INTERRUPTED, error="the run ended without a verdict"))
    if killed:
        print(f"reaper: ended {killed} processes of the run in {run_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    token, run_dir, read_end, owner = sys.argv[1:5]
    sys.exit(watch(token, Path(run_dir), int(read_end), int(owner)))
