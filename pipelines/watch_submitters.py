"""How `greenfm watch` starts a run: on this machine (the `greenfm run` command in a subprocess, waited for)
or on Kubeflow Pipelines (pipelines.submit, not waited for)."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from components.common import run_status
from components.common.errors import GreenfmError
from pipelines.config import DEFAULTS, RunConfig
from pipelines.submit import SubmitTarget, run_state, submit_run
from pipelines.tasks import task_key
from pipelines.watch import FAILED, RUNNING, SUCCEEDED, SubmittedRun

_RUN_DIR_LINE = re.compile(r"^run directory: (.+)$", re.MULTILINE)


def changed_parameters(config: RunConfig) -> dict:
    """Only what differs from the pipeline's defaults: the rest stays as compiled/shown in the UI."""
    defaults = asdict(DEFAULTS)
    return {key: value for key, value in asdict(config).items() if value != defaults[key]}


@dataclass
class LocalSubmitter:
    """Runs `greenfm run` (kfp.local) to completion; the run is accepted only if it succeeds."""

    out: Path
    extra_env: dict = field(default_factory=dict)

    def __call__(self, config: RunConfig) -> SubmittedRun:
        out = Path(self.out).resolve()
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False, dir=out, prefix=".watch-") as handle:
            yaml.safe_dump(changed_parameters(config), handle)
        try:
            # A subprocess, as a user would run it: kfp.local redirects and initialises process-wide state.
            completed = subprocess.run(
                [sys.executable, "-m", "pipelines.cli", "run", "--config", handle.name, "--out", str(out)],
                capture_output=True,
                text=True,
            )
        finally:
            Path(handle.name).unlink(missing_ok=True)
        named = _RUN_DIR_LINE.search(completed.stderr)  # its own line: other runs may share `out`
        run_dir = Path(named.group(1).strip()) if named else None
        if completed.returncode != 0 or run_dir is None or run_status.run_state(run_dir) != run_status.SUCCEEDED:
            tail = (completed.stderr or completed.stdout).strip().splitlines()[-1:] or ["no output"]
            state = f", run {run_status.run_state(run_dir)}" if run_dir else ""
            raise GreenfmError(f"local run failed (exit {completed.returncode}{state}): {tail[0]}")
        models = sorted(run_dir.glob(f"artifacts/*/{task_key('pretrain')}/model"))
        return SubmittedRun(run_id=run_dir.name, model_uri=str(models[-1]) if models else "")


# KFP v2beta1 RuntimeState -> the watcher's view; anything else (PENDING, RUNNING, PAUSED, CANCELING) is running.
KFP_RUN_STATES = {"SUCCEEDED": SUCCEEDED, "FAILED": FAILED, "CANCELED": FAILED, "SKIPPED": FAILED}


@dataclass
class KfpSubmitter:
    """Starts one run on a Kubeflow Pipelines server; its model is not known until it finishes."""

    target: SubmitTarget

    def __call__(self, config: RunConfig) -> SubmittedRun:
        name = f"greenfm-data-{config.data_fingerprint[:12]}"
        submitted = submit_run(self.target, changed_parameters(config), name)
        # The run's own artifacts are not addressable from here; the model store is, and the next run resolves
        # it to the newest model that finished (a failed run never moves LATEST).
        return SubmittedRun(run_id=submitted.run_id, model_uri=config.model_store, finished=False)

    def run_state(self, run_id: str) -> str:
        return KFP_RUN_STATES.get(run_state(self.target, run_id), RUNNING)
