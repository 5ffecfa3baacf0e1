"""How `greenfm watch` starts a run: on this machine (the `greenfm run` command in a subprocess, waited for)
or on Kubeflow Pipelines (pipelines.submit, not waited for)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import yaml

from components.common import run_status
from components.common.errors import GreenfmError
from pipelines.config import DEFAULTS, RunConfig
from pipelines.run_placement import submit_placed
from pipelines.submit import SubmitTarget, run_state, scheduled_run_state, submit_run
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

    def run_state(self, run_id: str) -> str:
        """A local run has finished when __call__ returns; its RUN_STATUS says how (interrupted counts as failed)."""
        state = run_status.run_state(Path(self.out).resolve() / run_id)
        return {run_status.SUCCEEDED: SUCCEEDED, run_status.RUNNING: RUNNING}.get(state, FAILED)


# KFP v2beta1 RuntimeState -> the watcher's view; anything else (PENDING, RUNNING, PAUSED, CANCELING) is running.
KFP_RUN_STATES = {"SUCCEEDED": SUCCEEDED, "FAILED": FAILED, "CANCELED": FAILED, "SKIPPED": FAILED}


@dataclass
class KfpSubmitter:
    """Starts one run on a Kubeflow Pipelines server; its model is not known until it finishes. With `place`,
    each run is placed first (pipelines.run_placement): the cluster and start of the least expected emissions,
    and a later start becomes a one-off schedule. The run id the watcher keeps is then a reference (JSON) to the
    cluster and to the run or the schedule that will start it."""

    target: SubmitTarget
    place: bool = False

    def __call__(self, config: RunConfig) -> SubmittedRun:
        name = f"greenfm-data-{config.data_fingerprint[:12]}"
        # The run's own artifacts are not addressable from here; the model store is, and the next run resolves
        # it to the newest model that finished (a failed run never moves LATEST).
        if not self.place:
            submitted = submit_run(self.target, changed_parameters(config), name)
            return SubmittedRun(run_id=submitted.run_id, model_uri=config.model_store, finished=False)
        submitted, placement = submit_placed(self.target, changed_parameters(config), name)
        reference = {"host": placement.host, "run_id": submitted.run_id, "recurring_run_id": submitted.recurring_run_id}
        return SubmittedRun(run_id=json.dumps(reference), model_uri=config.model_store, finished=False)

    def run_state(self, run_id: str) -> str:
        if not run_id.startswith("{"):
            return KFP_RUN_STATES.get(run_state(self.target, run_id), RUNNING)
        reference = json.loads(run_id)
        there = replace(self.target, host=reference["host"])
        if reference.get("run_id"):
            return KFP_RUN_STATES.get(run_state(there, reference["run_id"]), RUNNING)
        _, state = scheduled_run_state(there, reference["recurring_run_id"])
        return KFP_RUN_STATES.get(state, RUNNING)  # not started yet: still pending
