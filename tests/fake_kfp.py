"""A local stand-in for the KFP v2beta1 REST API: the endpoints kfp.Client calls for upload, experiments, runs
and recurring runs, with responses shaped like a real server's, checked against kubeflow/pipelines'
backend/src/apiserver:

- healthz answers `commit_sha`, `tag_name` (the server's version), `multi_user`, `pipeline_store` (main.go);
- multi-user mode: a request without an identity (a `kubeflow-userid` header or a bearer service account
  token) is 401 Unauthenticated (auth/auth.go); an identity without access to the namespace is 403 (the
  server's SubjectAccessReview: a profile's default-editor may use its own namespace only); an experiment or a
  run with an empty namespace is 400 InvalidArgument (experiment_server.go, run_server.go); pipelines are
  namespaced (`namespace` on upload and list; an empty one lists the shared pipelines);
- a run's namespace is its experiment's (resource_manager.go CreateRun);
- recurring runs are checked as CreateRecurringRun checks them, and `advance(now)` starts the runs of periodic
  schedules as the ScheduledWorkflow controller does (first at start_time + interval, none after end_time), each
  with its recurring_run_id, which ListRuns can filter on;
- errors as the gRPC gateway writes them: {"error", "code" (gRPC), "message", "details"}.

Records every request for assertions.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tests import http_fake

API = "/apis/v2beta1"
CREATED = "2026-01-01T00:00:00Z"
# gRPC codes the gateway returns, with their HTTP statuses.
INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED, UNAUTHENTICATED = 3, 5, 6, 7, 16
_HTTP = {INVALID_ARGUMENT: 400, NOT_FOUND: 404, ALREADY_EXISTS: 409, PERMISSION_DENIED: 403, UNAUTHENTICATED: 401}


@dataclass
class Request:
    method: str
    path: str
    query: dict
    body: bytes
    headers: dict = field(default_factory=dict)


def _error(code: int, message: str) -> tuple[int, dict]:
    return _HTTP[code], {"error": message, "code": code, "message": message, "details": []}


@dataclass
class FakeKfp:
    pipelines: dict = field(default_factory=dict)  # id -> pipeline json
    versions: dict = field(default_factory=dict)  # pipeline id -> [version json]
    experiments: dict = field(default_factory=dict)
    runs: dict = field(default_factory=dict)
    recurring: dict = field(default_factory=dict)
    requests: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    tag_name: str = "2.15.0"  # the server's release (healthz)
    multi_user: bool = False
    tokens: dict = field(default_factory=dict)  # multi-user: bearer token -> the namespace it may use

    def calls(self, method: str | None = None, path: str | None = None) -> list[Request]:
        return [r for r in self.requests if (method is None or r.method == method) and (path is None or r.path == path)]

    def _identity_error(self, req: Request, namespace: str | None) -> tuple[int, dict] | None:
        """Multi-user: authenticate the caller, then check it may use `namespace` (None: not namespaced)."""
        if not self.multi_user:
            return None
        token = req.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if token not in self.tokens:
            if token:
                return _error(UNAUTHENTICATED, "Request header error: Failed to review the token provided")
            return _error(UNAUTHENTICATED, "Request header error: there is no user identity header.")
        if namespace and self.tokens[token] != namespace:
            return _error(PERMISSION_DENIED, f"PermissionDenied: not authorized to access namespace {namespace!r}")
        return None

    # -- handlers: (status, json)
    def handle(self, req: Request) -> tuple[int, dict]:
        with self.lock:
            self.requests.append(req)
            p, query = req.path, req.query
            if p == f"{API}/healthz":
                health = {"commit_sha": "0" * 40, "tag_name": self.tag_name, "multi_user": self.multi_user}
                return 200, {**health, "pipeline_store": "database"}
            namespace = self._namespace_of(req)
            if (denied := self._identity_error(req, namespace)) is not None:
                return denied
            if p == f"{API}/pipelines" and req.method == "GET":
                ns = query.get("namespace", [""])[0]
                items = [i for i in self.pipelines.values() if i.get("namespace", "") == ns]
                return 200, self._filtered("pipelines", items, query)
            if p == f"{API}/pipelines/upload":
                return self._upload(req)
            if p == f"{API}/pipelines/upload_version":
                return self._upload_version(req)
            if p.startswith(f"{API}/pipelines/") and p.endswith("/versions"):
                pid = p.split("/")[-2]
                versions = sorted(self.versions.get(pid, []), key=lambda v: v["created_at"], reverse=True)
                return 200, ({"pipeline_versions": versions, "total_size": len(versions)} if versions else {})
            if p == f"{API}/experiments" and req.method == "GET":
                ns = query.get("namespace", [""])[0]
                items = [e for e in self.experiments.values() if not ns or e["namespace"] == ns]
                return 200, self._filtered("experiments", items, query)
            if p == f"{API}/experiments" and req.method == "POST":
                body = json.loads(req.body)
                if self.multi_user and not body.get("namespace"):
                    return _error(INVALID_ARGUMENT, "An experiment cannot have an empty namespace in multi-user mode")
                exp = {
                    "experiment_id": str(uuid.uuid4()),
                    "display_name": body["display_name"],
                    "created_at": CREATED,
                    "storage_state": "AVAILABLE",
                    "namespace": body.get("namespace", "") or ("" if self.multi_user else "kubeflow"),
                }
                self.experiments[exp["experiment_id"]] = exp
                return 200, exp
            if p == f"{API}/runs" and req.method == "POST":
                return self._create("runs", req, {"state": "PENDING"}, "run_id")
            if p.startswith(f"{API}/runs/") and req.method == "GET":
                run = self.runs.get(p.rsplit("/", 1)[-1])
                return (200, run) if run else _error(NOT_FOUND, f"Run {p.rsplit('/', 1)[-1]} not found")
            if p == f"{API}/runs" and req.method == "GET":
                return self._list_runs(query)
            if p == f"{API}/recurringruns" and req.method == "POST":
                if (invalid := _recurring_run_error(json.loads(req.body))) is not None:
                    return invalid
                return self._create("recurring", req, {"status": "ENABLED"}, "recurring_run_id")
            if p.startswith(f"{API}/recurringruns/") and req.method == "GET":
                found = self.recurring.get(p.rsplit("/", 1)[-1])
                return (200, found) if found else _error(NOT_FOUND, f"RecurringRun {p.rsplit('/', 1)[-1]} not found")
            return _error(NOT_FOUND, f"no route {req.method} {p}")

    def _namespace_of(self, req: Request) -> str | None:
        """The namespace a request acts in, as the server authorizes it."""
        if "namespace" in req.query:
            return req.query["namespace"][0]
        if req.method == "POST" and req.path in (f"{API}/experiments",):
            return json.loads(req.body).get("namespace") or None
        if req.method == "POST" and req.path in (f"{API}/runs", f"{API}/recurringruns"):
            experiment = self.experiments.get(json.loads(req.body).get("experiment_id", ""))
            return experiment["namespace"] if experiment else None
        if req.method == "GET" and req.path.startswith(f"{API}/runs/"):
            run = self.runs.get(req.path.rsplit("/", 1)[-1])
            return run["namespace"] if run else None
        if req.method == "GET" and req.path.startswith(f"{API}/recurringruns/"):
            recurring = self.recurring.get(req.path.rsplit("/", 1)[-1])
            return recurring["namespace"] if recurring else None
        if req.method == "GET" and req.path == f"{API}/runs" and "experiment_id" in req.query:
            experiment = self.experiments.get(req.query["experiment_id"][0])
            return experiment["namespace"] if experiment else None
        if req.path == f"{API}/pipelines/upload_version":
            pipeline = self.pipelines.get(req.query.get("pipelineid", [""])[0])
            return pipeline.get("namespace") if pipeline else None
        return None

    def _create(self, store: str, req: Request, extra: dict, id_key: str) -> tuple[int, dict]:
        body = json.loads(req.body)
        experiment = self.experiments.get(body.get("experiment_id", ""))
        namespace = experiment["namespace"] if experiment else ""
        if self.multi_user and not namespace:
            what = "A run" if store == "runs" else "A recurring run"
            return _error(INVALID_ARGUMENT, f"{what} cannot have an empty namespace in multi-user mode")
        item = {**body, **extra, id_key: str(uuid.uuid4()), "created_at": CREATED, "namespace": namespace}
        getattr(self, store)[item[id_key]] = item
        return 200, item

    def _filtered(self, key: str, items: list, query: dict) -> dict:
        """Items matching the filter's EQUALS predicates (the only operation greenfm sends), as the server lists
        them: an empty list is an empty body (the gateway omits empty fields)."""
        if "filter" in query:
            for predicate in json.loads(query["filter"][0])["predicates"]:
                # filter.proto's Op enum, by name or number (the gateway's JSON accepts both; kfp.Client sends 1)
                assert predicate["operation"] in ("EQUALS", 1), predicate
                items = [i for i in items if i.get(predicate["key"], "") == predicate["stringValue"]]
        return {key: items, "total_size": len(items)} if items else {}

    def _list_runs(self, query: dict) -> tuple[int, dict]:
        """ListRuns (run_server.go listRuns): an experiment's runs or a namespace's; in multi-user mode, with
        neither, the SubjectAccessReview is for the whole cluster, which a profile's account may not list."""
        namespace = query.get("namespace", [""])[0]
        experiment = query.get("experiment_id", [""])[0]
        if self.multi_user and not namespace and not experiment:
            return _error(
                PERMISSION_DENIED,
                "Failed to list runs due to authorization error. Check if you have permission to access namespace ",
            )
        items = [
            r
            for r in self.runs.values()
            if (not namespace or r["namespace"] == namespace) and (not experiment or r["experiment_id"] == experiment)
        ]
        return 200, self._filtered("runs", items, query)

    # -- the ScheduledWorkflow controller (backend/src/crd/controller/scheduledworkflow), for periodic schedules
    def advance(self, now: datetime) -> list[dict]:
        """Start every run whose trigger time has come by `now`, as the controller does; returns them."""
        started = []
        with self.lock:
            for recurring in self.recurring.values():
                periodic = recurring.get("trigger", {}).get("periodic_schedule")
                if recurring.get("mode", "ENABLE") != "ENABLE" or periodic is None:
                    continue
                while True:
                    due = next_periodic_epoch(
                        periodic, recurring.get("_last_triggered"), _epoch(recurring["created_at"])
                    )
                    active = [
                        r for r in self.runs.values() if r.get("recurring_run_id") == recurring["recurring_run_id"]
                    ]
                    active = [r for r in active if r["state"] in ("PENDING", "RUNNING")]
                    if due is None or due > now.timestamp() or len(active) >= int(recurring.get("max_concurrency", 1)):
                        break
                    recurring["_last_triggered"] = due
                    started.append(self._scheduled_run(recurring, due))
        return started

    def _scheduled_run(self, recurring: dict, due: int) -> dict:
        index = sum(1 for r in self.runs.values() if r.get("recurring_run_id") == recurring["recurring_run_id"]) + 1
        run = {
            "run_id": str(uuid.uuid4()),
            "display_name": f"{recurring['display_name']}-{index}",
            "experiment_id": recurring["experiment_id"],
            "recurring_run_id": recurring["recurring_run_id"],
            "pipeline_version_reference": recurring.get("pipeline_version_reference"),
            "runtime_config": recurring.get("runtime_config"),
            "service_account": recurring.get("service_account", ""),
            "state": "PENDING",
            "namespace": recurring["namespace"],
            "created_at": CREATED,
            "scheduled_at": datetime.fromtimestamp(due, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        self.runs[run["run_id"]] = run
        return run

    def _new_version(self, pid: str, name: str) -> dict:
        version = {
            "pipeline_id": pid,
            "pipeline_version_id": str(uuid.uuid4()),
            "display_name": name,
            "created_at": f"2026-01-01T00:00:{len(self.versions.get(pid, [])):02d}Z",
        }
        self.versions.setdefault(pid, []).append(version)
        return version

    def _upload(self, req: Request) -> tuple[int, dict]:
        name, namespace = req.query["name"][0], req.query.get("namespace", [""])[0]
        if any(p["display_name"] == name and p["namespace"] == namespace for p in self.pipelines.values()):
            return _error(ALREADY_EXISTS, f"pipeline {name} already exists")
        assert b"pipelineSpec" in req.body or b"pipelineInfo" in req.body, "upload carries the compiled IR"
        pid = str(uuid.uuid4())
        self.pipelines[pid] = {"pipeline_id": pid, "display_name": name, "created_at": CREATED, "namespace": namespace}
        self._new_version(pid, name)
        return 200, self.pipelines[pid]

    def _upload_version(self, req: Request) -> tuple[int, dict]:
        pid, name = req.query["pipelineid"][0], req.query["name"][0]
        if pid not in self.pipelines:
            return _error(NOT_FOUND, "pipeline not found")
        return 200, self._new_version(pid, name)


def _epoch(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())


def next_periodic_epoch(periodic: dict, last_triggered: int | None, created: int) -> int | None:
    """PeriodicSchedule.GetNextScheduledEpoch (catch-up mode): the first run is at start_time + interval (or
    creation + interval), each next one an interval after the last, none after end_time (None)."""
    start = _epoch(periodic["start_time"]) if periodic.get("start_time") else None
    end = _epoch(periodic["end_time"]) if periodic.get("end_time") else None
    interval = int(periodic.get("interval_second") or 0) or 1
    effective = last_triggered if last_triggered is not None else (start if start is not None else created)
    if start is not None and start > effective:
        effective = start
    result = effective + interval
    return None if end is not None and end < result else result


def _recurring_run_error(body: dict) -> tuple[int, dict] | None:
    """CreateRecurringRun's checks (api_converter.go toModelJob)."""
    concurrency = int(body.get("max_concurrency") or 0)
    if not 1 <= concurrency <= 10:
        return _error(
            INVALID_ARGUMENT,
            f"Max concurrency of a recurring run must be at least 1 and at most 10. Received {concurrency}",
        )
    periodic = (body.get("trigger") or {}).get("periodic_schedule")
    if periodic is not None and int(periodic.get("interval_second") or 0) < 1:
        return _error(
            INVALID_ARGUMENT,
            f"Found invalid period schedule interval {periodic.get('interval_second')}. Set at interval to least 1 second",
        )
    return None


def _handler(fake: FakeKfp) -> http_fake.Handle:
    return lambda method, path, query, body, headers: fake.handle(Request(method, path, query, body, headers))


def serve(fake: FakeKfp | None = None):
    """Yield (FakeKfp, base URL) while it runs: the `kfp_server` fixture (tests/conftest.py) serves a standalone
    server, `kfp_multi_user` a multi-user one."""
    fake = fake or FakeKfp()
    yield from http_fake.running(fake, _handler(fake))
