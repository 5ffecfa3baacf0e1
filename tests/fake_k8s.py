"""A local stand-in for the Kubernetes API server: ConfigMaps (with resourceVersion conflicts, as the real
server does) and namespaced custom objects (create/get, 409 on re-create). Records requests."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field

from tests import http_fake

_CM = re.compile(r"^/api/v1/namespaces/([^/]+)/configmaps(?:/([^/]+))?$")
_CUSTOM = re.compile(r"^/apis/([^/]+)/([^/]+)/namespaces/([^/]+)/([^/]+)(?:/([^/]+))?$")


def _status(code: int, reason: str, message: str) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


@dataclass
class FakeApiServer:
    objects: dict = field(default_factory=dict)  # (kind-path, namespace, name) -> object
    requests: list = field(default_factory=list)  # (method, path, body)
    version: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_get: object = None  # optional hook(path, obj) -> obj, e.g. to advance a status

    def _bump(self, obj: dict) -> dict:
        self.version += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.version)
        return obj

    def handle(self, method: str, path: str, body: dict | None) -> tuple[int, dict]:
        with self.lock:
            self.requests.append((method, path, body))
            if m := _CM.match(path):
                namespace, name = m.groups()
                return self._crud(("configmaps",), namespace, name, method, body)
            if m := _CUSTOM.match(path):
                group, version, namespace, plural, name = m.groups()
                return self._crud((group, version, plural), namespace, name, method, body)
            return 404, _status(404, "NotFound", f"no route {path}")

    def _crud(self, kind: tuple, namespace: str, name: str | None, method: str, body: dict | None):
        if method == "POST":
            key = (kind, namespace, body["metadata"]["name"])
            if key in self.objects:
                return 409, _status(409, "AlreadyExists", f"{key[2]} already exists")
            body["metadata"]["namespace"] = namespace
            self.objects[key] = self._bump(body)
            return 201, body
        key = (kind, namespace, name)
        if key not in self.objects:
            return 404, _status(404, "NotFound", f"{name} not found")
        if method == "GET":
            obj = self.objects[key]
            if self.on_get:
                obj = self.on_get(kind, obj)
            return 200, obj
        if method == "PUT":
            current = self.objects[key]
            if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                return 409, _status(
                    409, "Conflict", "the object has been modified; please apply your changes to the latest version"
                )
            self.objects[key] = self._bump(body)
            return 200, body
        if method == "PATCH":  # JSON merge patch (RFC 7386), what the client sends for a dict body
            self.objects[key] = self._bump(_merge(self.objects[key], body))
            return 200, self.objects[key]
        if method == "DELETE":
            return 200, self.objects.pop(key)
        return 405, _status(405, "MethodNotAllowed", method)


def _merge(target, patch):
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merge(merged.get(key), value)
    return merged


def _handler(fake: FakeApiServer) -> http_fake.Handle:
    return lambda method, path, query, body: fake.handle(method, path, json.loads(body) if body else None)


def api_client(url: str):
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = url
    return client.ApiClient(configuration)


def serve():
    """Yield (FakeApiServer, base URL) while it runs: the `api_server` fixture (tests/conftest.py)."""
    fake = FakeApiServer()
    yield from http_fake.running(fake, _handler(fake))
