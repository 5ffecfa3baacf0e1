"""Where `greenfm watch` keeps the last accepted run: a JSON file (one machine, fcntl lock) or a ConfigMap
(a cluster: optimistic concurrency on resourceVersion, so two CronJob pods cannot both claim a change)."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from components.common.cluster import pod_namespace
from components.common.errors import GreenfmError
from components.common.k8s_jobs import default_api_client
from pipelines.watch import WatcherBusy, WatchState

STATE_KEY = "state.json"
CLAIM_KEY = "claim.json"
DEFAULT_CLAIM_TTL = timedelta(hours=6)  # a watcher that died mid-submit stops blocking others after this


# ---------------------------------------------------------------- JSON file + fcntl lock


class _FileTransaction:
    def __init__(self, path: Path, lock_handle, current: WatchState | None):
        self.path, self._lock, self.current = path, lock_handle, current

    def commit(self, state: WatchState) -> None:
        try:
            # Write-then-rename: a crash never leaves a half-written state that reads as "no previous run".
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(state.to_dict(), handle, indent=2, sort_keys=True)
            os.replace(tmp, self.path)
        finally:
            self.abort()

    def abort(self) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None


@dataclass
class FileStateStore:
    """State in `path`; `path`.lock is held (non-blocking) from the check until the run is recorded."""

    path: Path

    def begin(self) -> _FileTransaction:
        self.path = Path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # The lock file stays open (and locked) until the transaction ends in commit/abort: no `with` here.
        handle = open(self.path.with_name(self.path.name + ".lock"), "a+")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise WatcherBusy(f"{self.path}: another watcher holds the lock") from None
        current = None
        if self.path.is_file():
            try:
                current = WatchState.from_dict(json.loads(self.path.read_text(encoding="utf-8")))
            except (json.JSONDecodeError, TypeError) as error:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
                raise GreenfmError(f"{self.path}: unreadable watch state ({error})") from None
        return _FileTransaction(self.path, handle, current)


# ---------------------------------------------------------------- ConfigMap (Kubernetes)


def _now() -> datetime:
    return datetime.now(UTC)


class _ConfigMapTransaction:
    def __init__(self, store: ConfigMapStateStore, config_map, current: WatchState | None):
        self.store, self._cm, self.current = store, config_map, current

    def _write(self, data: dict) -> None:
        from kubernetes.client.rest import ApiException

        self._cm.data = data
        try:
            self._cm = self.store.api.replace_namespaced_config_map(self.store.name, self.store.namespace, self._cm)
        except ApiException as error:
            if error.status == 409:  # our claim was taken over (it expired): the other watcher owns the state
                raise WatcherBusy(f"configmap {self.store.name}: claim lost") from None
            raise

    def commit(self, state: WatchState) -> None:
        self._write({STATE_KEY: json.dumps(state.to_dict(), sort_keys=True)})

    def abort(self) -> None:
        # Drop our claim, keep the state as it was.
        data = {STATE_KEY: json.dumps(self.current.to_dict(), sort_keys=True)} if self.current else {}
        self._write(data)


@dataclass
class ConfigMapStateStore:
    """State in ConfigMap `name`. begin() writes a claim with the resourceVersion it read: the API server
    rejects the second of two racing writes with 409 Conflict, and that watcher backs off."""

    name: str
    namespace: str
    api: Any = None  # kubernetes.client.CoreV1Api; None: in-cluster config, else ~/.kube/config
    claim_ttl: timedelta = DEFAULT_CLAIM_TTL
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")

    def __post_init__(self) -> None:
        if self.api is None:
            from kubernetes import client

            self.api = client.CoreV1Api(default_api_client())

    def _read_or_create(self):
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        try:
            return self.api.read_namespaced_config_map(self.name, self.namespace)
        except ApiException as error:
            if error.status != 404:
                raise
        body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace), data={})
        try:
            return self.api.create_namespaced_config_map(self.namespace, body)
        except ApiException as error:
            if error.status == 409:  # created by a racing watcher a moment ago
                return self.api.read_namespaced_config_map(self.name, self.namespace)
            raise

    def begin(self) -> _ConfigMapTransaction:
        from kubernetes.client.rest import ApiException

        config_map = self._read_or_create()
        data = dict(config_map.data or {})
        if CLAIM_KEY in data:
            claim = json.loads(data[CLAIM_KEY])
            if _now() - datetime.fromisoformat(claim["at"]) < self.claim_ttl:
                raise WatcherBusy(f"configmap {self.name}: claimed by {claim['owner']} at {claim['at']}")
        current = WatchState.from_dict(json.loads(data[STATE_KEY])) if STATE_KEY in data else None
        data[CLAIM_KEY] = json.dumps({"owner": self.owner, "at": _now().isoformat(timespec="seconds")})
        config_map.data = data
        try:
            # replace carries metadata.resourceVersion from the read: a write in between makes this a 409.
            config_map = self.api.replace_namespaced_config_map(self.name, self.namespace, config_map)
        except ApiException as error:
            if error.status == 409:
                raise WatcherBusy(f"configmap {self.name}: another watcher claimed it first") from None
            raise
        return _ConfigMapTransaction(self, config_map, current)


def open_store(spec: str, namespace: str | None = None) -> FileStateStore | ConfigMapStateStore:
    """`configmap:NAME` (or `configmap` for greenfm-watch-state) → ConfigMap store; anything else is a file path."""
    if spec == "configmap" or spec.startswith("configmap:"):
        name = spec.partition(":")[2] or "greenfm-watch-state"
        return ConfigMapStateStore(name, namespace or pod_namespace())
    return FileStateStore(Path(spec))
