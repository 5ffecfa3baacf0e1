"""Retrain on data change: fingerprint the input, and when it differs from the last accepted run's, submit
exactly one run with the fingerprint as a parameter and a warm start from the last model.

KFP has no data-change trigger (kubeflow/pipelines#651), so a CronJob runs `greenfm watch` on a schedule.
Two watchers may overlap (a slow run, a manual run beside the CronJob): the state store makes the
check-submit-record sequence exclusive, so at most one of them submits for a given fingerprint.
"""

from __future__ import annotations

from collections.abc import Callable
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

    @classmethod
    def from_dict(cls, data: dict) -> WatchState:
        return cls(**{k: str(v) for k, v in data.items() if k in cls.__dataclass_fields__})

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SubmittedRun:
    run_id: str
    model_uri: str = ""  # empty when the run is asynchronous (KFP) and its model is not known yet


Submitter = Callable[[RunConfig], SubmittedRun]


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
    action: str  # unchanged | submitted | busy
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
    if previous is not None and previous.fingerprint == fingerprint:
        txn.abort()
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
        txn.abort()  # not accepted: the next watch retries this fingerprint
        raise
    txn.commit(
        WatchState(
            fingerprint, input_uri, run.run_id, run.model_uri or (previous.model_uri if previous else ""), _now()
        )
    )
    return WatchResult("submitted", fingerprint, run.run_id, previous)
