"""How `greenfm watch` starts a run: on this machine (the `greenfm run` command in a subprocess, waited for)
or on Kubeflow Pipelines (pipelines.submit, not waited for)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from components.common.errors import GreenfmError
from pipelines.config import DEFAULTS, RunConfig
from pipelines.submit import SubmitTarget, submit_run
from pipelines.tasks import task_key
from pipelines.watch import SubmittedRun


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
        before = set(out.iterdir())
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
        run_dirs = sorted(p for p in set(out.iterdir()) - before if p.is_dir() and not p.name.startswith("."))
        if completed.returncode != 0 or not run_dirs:
            tail = (completed.stderr or completed.stdout).strip().splitlines()[-1:] or ["no output"]
            raise GreenfmError(f"local run failed (exit {completed.returncode}): {tail[0]}")
        run_dir = run_dirs[-1]
        models = sorted(run_dir.glob(f"artifacts/*/{task_key('pretrain')}/model"))
        return SubmittedRun(run_id=run_dir.name, model_uri=str(models[-1]) if models else "")


@dataclass
class KfpSubmitter:
    """Starts one run on a Kubeflow Pipelines server; its model is not known until it finishes."""

    target: SubmitTarget

    def __call__(self, config: RunConfig) -> SubmittedRun:
        name = f"greenfm-data-{config.data_fingerprint[:12]}"
        submitted = submit_run(self.target, changed_parameters(config), name)
        # The run's own artifacts are not addressable from here; the model store is, and the next run resolves
        # it to the newest model that finished (a failed run never moves LATEST).
        return SubmittedRun(run_id=submitted.run_id, model_uri=config.model_store)
