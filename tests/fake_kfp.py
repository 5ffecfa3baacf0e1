"""A local stand-in for the KFP v2beta1 REST API: the endpoints kfp.Client calls for upload, experiments, runs
and recurring runs, with responses shaped like a real server's. Records every request for assertions."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field

from tests import http_fake

API = "/apis/v2beta1"
CREATED = "2026-01-01T00:00:00Z"


@dataclass
class Request:
    method: str
    path: str
    query: dict
    body: bytes


@dataclass
class FakeKfp:
    pipelines: dict = field(default_factory=dict)  # id -> pipeline json
    versions: dict = field(default_factory=dict)  # pipeline id -> [version json]
    experiments: dict = field(default_factory=dict)
    runs: dict = field(default_factory=dict)
    recurring: dict = field(default_factory=dict)
    requests: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def calls(self, method: str | None = None, path: str | None = None) -> list[Request]:
        return [r for r in self.requests if (method is None or r.method == method) and (path is None or r.path == path)]

    # -- handlers: (status, json)
    def handle(self, req: Request) -> tuple[int, dict]:
        with self.lock:
            self.requests.append(req)
            p = req.path
            if p == f"{API}/healthz":
                return 200, {"multi_user": False, "pipeline_store": "database"}
            if p == f"{API}/pipelines" and req.method == "GET":
                return 200, self._filtered("pipelines", list(self.pipelines.values()), req.query)
            if p == f"{API}/pipelines/upload":
                return self._upload(req)
            if p == f"{API}/pipelines/upload_version":
                return self._upload_version(req)
            if p.startswith(f"{API}/pipelines/") and p.endswith("/versions"):
                pid = p.split("/")[-2]
                versions = sorted(self.versions.get(pid, []), key=lambda v: v["created_at"], reverse=True)
                return 200, ({"pipeline_versions": versions, "total_size": len(versions)} if versions else {})
            if p == f"{API}/experiments" and req.method == "GET":
                return 200, self._filtered("experiments", list(self.experiments.values()), req.query)
            if p == f"{API}/experiments" and req.method == "POST":
                body = json.loads(req.body)
                exp = {
                    "experiment_id": str(uuid.uuid4()),
                    "display_name": body["display_name"],
                    "created_at": CREATED,
                    "storage_state": "AVAILABLE",
                    "namespace": body.get("namespace", ""),
                }
                self.experiments[exp["experiment_id"]] = exp
                return 200, exp
            if p == f"{API}/runs" and req.method == "POST":
                body = json.loads(req.body)
                run = {**body, "run_id": str(uuid.uuid4()), "state": "PENDING", "created_at": CREATED}
                self.runs[run["run_id"]] = run
                return 200, run
            if p == f"{API}/recurringruns" and req.method == "POST":
                body = json.loads(req.body)
                rec = {**body, "recurring_run_id": str(uuid.uuid4()), "status": "ENABLED", "created_at": CREATED}
                self.recurring[rec["recurring_run_id"]] = rec
                return 200, rec
            return 404, {"error": f"no route {req.method} {p}", "code": 5}

    def _filtered(self, key: str, items: list, query: dict) -> dict:
        if "filter" in query:
            wanted = json.loads(query["filter"][0])["predicates"][0]["stringValue"]
            items = [i for i in items if i["display_name"] == wanted]
        return {key: items, "total_size": len(items)} if items else {}

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
        name = req.query["name"][0]
        if any(p["display_name"] == name for p in self.pipelines.values()):
            return 409, {"error": f"pipeline {name} already exists", "code": 6}
        assert b"pipelineSpec" in req.body or b"pipelineInfo" in req.body, "upload carries the compiled IR"
        pid = str(uuid.uuid4())
        self.pipelines[pid] = {"pipeline_id": pid, "display_name": name, "created_at": CREATED}
        self._new_version(pid, name)
        return 200, self.pipelines[pid]

    def _upload_version(self, req: Request) -> tuple[int, dict]:
        pid, name = req.query["pipelineid"][0], req.query["name"][0]
        if pid not in self.pipelines:
            return 404, {"error": "pipeline not found", "code": 5}
        return 200, self._new_version(pid, name)


def _handler(fake: FakeKfp) -> http_fake.Handle:
    return lambda method, path, query, body: fake.handle(Request(method, path, query, body))


def serve():
    """Yield (FakeKfp, base URL) while it runs: the `kfp_server` fixture (tests/conftest.py)."""
    fake = FakeKfp()
    yield from http_fake.running(fake, _handler(fake))
