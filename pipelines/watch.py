"""Retrain on data change: fingerprint the input, and when it differs from the last accepted run's, submit
exactly one run with the fingerprint as a parameter and a warm start from the last model.

A change counts as handled only when its run succeeded. A run that is still going (KFP runs are not waited
for) is recorded as pending: later watches ask its state, accept it once it succeeded, and submit the change
again when it failed or was cancelled; while it runs, nothing else is submitted.

KFP has no data-change trigger (kubeflow/pipelines#651), so a CronJob runs `greenfm watch` on a schedule.
Two watchers may overlap (a slow run, a manual run beside the CronJob): the state store makes the
check-submit-record sequence exclusive, so at most one of them submits for a given fingerprint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from components.common.errors import GreenfmError
from components.curate.inputs import discover_inputs, input_fingerprint
from pipelines.config import RunConfig


class WatcherBusy(GreenfmError):
    """Another watcher holds the state: it decides; this one submits nothing."""


@dataclass(frozen=True)
class WatchState:
    """What the last accepted run was started from."""

    fingerprint: str = ""
    input_uri: str = ""
    run_id: str = ""
    model_uri: str = ""  # where that run's model is; the next run warm-starts from it
    submitted_at: str = ""
    # A submitted run not known to have finished: accepted (moved into the fields above) when it succeeds.
    pending_fingerprint: str = ""
    pending_run_id: str = ""
    pending_model_uri: str = ""
    last_failed_run_id: str = ""  # the newest run that failed; its change was submitted again

    def settled(self, succeeded: bool) -> WatchState:
        """The state once the pending run ended: accepted if it succeeded, else dropped (to be retried)."""
        cleared = {"pending_fingerprint": "", "pending_run_id": "", "pending_model_uri": ""}
        if not succeeded:
            return replace(self, last_failed_run_id=self.pending_run_id, **cleared)
        return replace(
            self,
            fingerprint=self.pending_fingerprint,
            run_id=self.pending_run_id,
            model_uri=self.pending_model_uri or self.model_uri,
            **cleared,
        )

    @classmethod
    def from_dict(cls, data: dict) -> WatchState:
        return cls(**{k: str(v) for k, v in data.items() if k in cls.__dataclass_fields__})

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SubmittedRun:
    run_id: str
    model_uri: str = ""  # empty when the run is asynchronous (KFP) and its model is not known yet
    finished: bool = True  # False: started, not waited for (the submitter's run_state tells how it ended)


RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"


class Submitter(Protocol):
    def __call__(self, config: RunConfig) -> SubmittedRun: ...

    def run_state(self, run_id: str) -> str:
        """RUNNING, SUCCEEDED or FAILED (cancelled counts as failed) for a run this submitter started."""
        ...


class Transaction(Protocol):
    """An exclusive hold on the state: read `current`, then commit a new state or abort."""

    current: WatchState | None

    def commit(self, state: WatchState) -> None: ...

    def abort(self) -> None: ...


class StateStore(Protocol):
    def begin(self) -> Transaction:
        """Raises WatcherBusy when another watcher holds the state."""
        ...


@dataclass(frozen=True)
class WatchResult:
    action: str  # unchanged | submitted | busy | running (the last change's run has not finished)
    fingerprint: str
    run_id: str = ""
    previous: WatchState | None = None


def fingerprint_input(input_uri: str) -> str:
    """The same content hash `greenfm run` passes as data_fingerprint, so the two agree on "changed"."""
    return input_fingerprint(discover_inputs(input_uri))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def watch_once(input_uri: str, store: StateStore, submit: Submitter, base: RunConfig | None = None) -> WatchResult:
    """One check: submit a run only when the input's fingerprint differs from the last accepted run's."""
    fingerprint = fingerprint_input(input_uri)  # hash before taking the state: hashing a big corpus is slow
    try:
        txn = store.begin()
    except WatcherBusy:
        return WatchResult("busy", fingerprint)
    previous = txn.current
    if previous is not None and previous.pending_run_id:
        try:
            outcome = submit.run_state(previous.pending_run_id)
        except BaseException:
            txn.abort()
            raise
        if outcome == RUNNING:
            txn.abort()  # one run at a time: the next watch looks again
            return WatchResult("running", fingerprint, previous.pending_run_id, previous)
        previous = previous.settled(outcome == SUCCEEDED)
    if previous is not None and previous.fingerprint == fingerprint:
        if previous == txn.current:
            txn.abort()
        else:
            txn.commit(previous)  # the pending run ended: record how
        return WatchResult("unchanged", fingerprint, previous.run_id, previous)
    config = replace(
        base or RunConfig(),
        input_uri=input_uri,
        data_fingerprint=fingerprint,
        warm_start_model=(previous.model_uri if previous else "") or (base.warm_start_model if base else ""),
    )
    try:
        run = submit(config)
    except BaseException:
        if previous is not None and previous != txn.current:
            txn.commit(previous)  # keep what was learned about the last run; this change is retried
        else:
            txn.abort()  # not accepted: the next watch retries this fingerprint
        raise
    model_uri = run.model_uri or (previous.model_uri if previous else "")
    if run.finished:
        state = replace(previous or WatchState(), fingerprint=fingerprint, input_uri=input_uri, run_id=run.run_id)
        state = replace(state, model_uri=model_uri, submitted_at=_now())
    else:
        state = replace(
            previous or WatchState(),
            pending_fingerprint=fingerprint,
            pending_run_id=run.run_id,
            pending_model_uri=model_uri,
            input_uri=input_uri,
            submitted_at=_now(),
        )
    txn.commit(state)
    return WatchResult("submitted", fingerprint, run.run_id, previous)
