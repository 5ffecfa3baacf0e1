"""A local stand-in for the Kubernetes API server, faithful where greenfm depends on it:

- authentication: a bearer token names a service account (system:serviceaccount:NS:NAME); none or an
  unknown one is 401 Unauthorized;
- authorization: RBAC as the real authorizer evaluates it (plugin/pkg/auth/authorizer/rbac): a RoleBinding
  grants its Role's (or ClusterRole's) rules in the binding's namespace only, a ClusterRoleBinding grants a
  ClusterRole's everywhere; a rule matches on verb, API group, resource[/subresource] and resourceNames (list
  and watch carry a name only through a metadata.name field selector, create never does). The rules are
  the ones our kustomize overlays render. A request no rule allows is 403 with the server's Status message;
- namespaces: a namespaced request in a namespace that does not exist is 404, a body whose namespace
  differs from the URL's is 400;
- objects: ConfigMaps, nodes, pods/log and custom objects; 404 NotFound, 409 AlreadyExists on re-create, 409
  Conflict on a stale resourceVersion, 410 Expired for a watch from a compacted resourceVersion; JSON merge
  patches, and 415 for a strategic merge patch of a custom resource;
- every request recorded, as (method, path, body) and as the authorizer's attributes (`calls`).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests import http_fake

ROOT = Path(__file__).resolve().parent.parent
# The accounts KFP runs a pipeline's pods as (created by KFP or the profile controller, not by greenfm).
STANDALONE = ("kubeflow", "pipeline-runner")  # manifests/overlays/standalone
MULTI_USER = ("kubeflow-user-example-com", "default-editor")  # manifests/overlays/multi-user

_CM = re.compile(r"^/api/v1/namespaces/([^/]+)/configmaps(?:/([^/]+))?$")
_CUSTOM = re.compile(r"^/apis/([^/]+)/([^/]+)/namespaces/([^/]+)/([^/]+)(?:/([^/]+))?$")
_CORE = re.compile(r"^/api/v1/(?:namespaces/([^/]+)/)?([^/]+)(?:/([^/]+))?(?:/([^/]+))?$")
_GROUP = re.compile(r"^/apis/([^/]+)/([^/]+)/(?:namespaces/([^/]+)/)?([^/]+)(?:/([^/]+))?(?:/([^/]+))?$")


def _status(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message}
    status.update({"reason": reason, "code": code})
    if details:
        status["details"] = details
    return status


@dataclass(frozen=True)
class Call:
    """A request as the authorizer sees it (k8s.io/apiserver RequestInfo + the user)."""

    user: str
    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str
    name: str

    @property
    def full_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def request_info(method: str, path: str, query: dict) -> Call | None:
    """Verb, group, resource, subresource, namespace and name of an API request (user left empty)."""
    if m := _CORE.match(path):
        namespace, resource, name, sub = m.groups()
        group = ""
    elif m := _GROUP.match(path):
        group, _version, namespace, resource, name, sub = m.groups()
    else:
        return None
    collection = not name  # no name segment in the URL
    watch = query.get("watch", [""])[0].lower() in ("true", "1")
    if collection and method == "GET":  # list/watch: a metadata.name field selector names the object
        selector = query.get("fieldSelector", [""])[0]
        if selector.startswith("metadata.name="):
            name = selector.partition("=")[2]
    verb = {
        ("GET", True): "watch" if watch else "list",
        ("GET", False): "watch" if watch else "get",
        ("POST", True): "create",
        ("PUT", False): "update",
        ("PATCH", False): "patch",
        ("DELETE", False): "delete",
        ("DELETE", True): "deletecollection",
    }.get((method, collection), method.lower())
    return Call("", verb, group, resource, sub or "", namespace or "", name or "")


@dataclass
class Rbac:
    """The Roles, ClusterRoles and bindings of rendered manifests, evaluated as the RBAC authorizer does."""

    roles: dict = field(default_factory=dict)  # (namespace, name) -> rules
    cluster_roles: dict = field(default_factory=dict)  # name -> rules
    bindings: list = field(default_factory=list)  # (namespace or "" for cluster bindings, roleRef, subjects)

    @classmethod
    def from_docs(cls, docs: list[dict]) -> Rbac:
        rbac = cls()
        for doc in docs:
            kind, meta = doc["kind"], doc["metadata"]
            if kind == "Role":
                rbac.roles[(meta["namespace"], meta["name"])] = doc.get("rules") or []
            elif kind == "ClusterRole":
                rbac.cluster_roles[meta["name"]] = doc.get("rules") or []
            elif kind in ("RoleBinding", "ClusterRoleBinding"):
                namespace = meta["namespace"] if kind == "RoleBinding" else ""
                rbac.bindings.append((namespace, doc["roleRef"], doc.get("subjects") or []))
        return rbac

    def rules_for(self, user: str, namespace: str) -> list[dict]:
        """Every rule that applies to `user` for a request in `namespace` ("" = cluster scope)."""
        rules: list[dict] = []
        for bound_in, ref, subjects in self.bindings:
            if bound_in and bound_in != namespace:
                continue  # a RoleBinding grants nothing outside its namespace
            if not any(_applies(subject, user, bound_in) for subject in subjects):
                continue
            if ref["kind"] == "Role":
                rules += self.roles.get((bound_in, ref["name"]), [])
            else:
                rules += self.cluster_roles.get(ref["name"], [])
        return rules

    def allows(self, call: Call) -> bool:
        return any(_rule_allows(rule, call) for rule in self.rules_for(call.user, call.namespace))

    def granted(self, user: str, namespace: str) -> set[tuple[str, str, str, str]]:
        """(verb, group, resource, resourceName or '') for every grant `user` has in `namespace`."""
        return {
            (verb, group, resource, name)
            for rule in self.rules_for(user, namespace)
            for verb in rule["verbs"]
            for group in rule.get("apiGroups", [""])
            for resource in rule.get("resources", [])
            for name in (rule.get("resourceNames") or [""])
        }


def _applies(subject: dict, user: str, binding_namespace: str) -> bool:
    if subject["kind"] == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return user == f"system:serviceaccount:{namespace}:{subject['name']}"
    return subject["kind"] == "User" and subject["name"] == user


def _rule_allows(rule: dict, call: Call) -> bool:
    verbs, groups, resources = rule.get("verbs", []), rule.get("apiGroups", []), rule.get("resources", [])
    if not ("*" in verbs or call.verb in verbs) or not ("*" in groups or call.group in groups):
        return False
    wanted = call.full_resource
    if not ("*" in resources or wanted in resources or (call.subresource and f"*/{call.subresource}" in resources)):
        return False
    names = rule.get("resourceNames") or []
    return not names or call.name in names


def service_account_user(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def token_for(namespace: str, name: str) -> str:
    """The bearer token the fake accepts for service account NAMESPACE/NAME (a real one is a signed JWT)."""
    return f"fake-sa-token.{namespace}.{name}"


def render(overlay: str) -> list[dict]:
    """`kubectl kustomize manifests/OVERLAY`: the objects a deployment creates."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with built-in kustomize) is not installed")
    out = subprocess.run(
        [kubectl, "kustomize", str(ROOT / "manifests" / overlay)], capture_output=True, text=True, check=True
    )
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def _merge(target, patch):
    """JSON merge patch (RFC 7386)."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merge(merged.get(key), value)
    return merged


MERGE_PATCH = "application/merge-patch+json"
# The apiserver's patch types; a custom resource has no strategic merge (it has no Go struct to carry the keys).
_CUSTOM_PATCH_TYPES = ("application/json-patch+json", MERGE_PATCH, "application/apply-patch+yaml")


def _patch_type_error(kind: tuple, content_type: str):
    """None for a JSON merge patch (all the fake applies); the apiserver's 415 for a strategic merge patch of a
    custom resource; a failure for any other patch type, which the fake does not implement."""
    content_type = content_type.split(";")[0].strip().lower()
    if content_type == MERGE_PATCH:
        return None
    if len(kind) > 1 and content_type not in _CUSTOM_PATCH_TYPES:
        accepted = ", ".join(_CUSTOM_PATCH_TYPES)
        message = f"the body of the request was in an unknown format - accepted media types include: {accepted}"
        return 415, _status(415, "UnsupportedMediaType", message)
    return 501, _status(501, "NotImplemented", f"fake API server: {content_type or 'no'} patch type not implemented")


@dataclass
class FakeApiServer:
    objects: dict = field(default_factory=dict)  # (kind-path, namespace, name) -> object
    requests: list = field(default_factory=list)  # (method, path, body)
    calls: list = field(default_factory=list)  # Call per request, with the answer's status code
    version: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_get: object = None  # optional hook(kind, obj) -> obj, e.g. to advance a status
    rbac: Rbac | None = None  # None: every authenticated request is allowed
    namespaces: set = field(default_factory=set)  # empty: any namespace exists
    accounts: set = field(default_factory=set)  # (namespace, name) of service accounts whose tokens are valid
    compacted: int = 0  # watches from an older resourceVersion get 410 Expired

    @classmethod
    def deployed(cls, overlay: str) -> FakeApiServer:
        """A cluster with KFP and greenfm's `overlay` applied: its namespace, accounts and RBAC."""
        docs = render(overlay)
        namespaces = {d["metadata"]["namespace"] for d in docs if d["metadata"].get("namespace")}
        accounts = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs if d["kind"] == "ServiceAccount"}
        accounts |= {STANDALONE, MULTI_USER, *((ns, "default") for ns in namespaces)}
        for doc in docs:
            for subject in doc.get("subjects") or []:
                if subject["kind"] == "ServiceAccount":
                    accounts.add((subject.get("namespace") or doc["metadata"]["namespace"], subject["name"]))
        return cls(rbac=Rbac.from_docs(docs), namespaces=namespaces | {"default"}, accounts=accounts)

    def _bump(self, obj: dict) -> dict:
        self.version += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.version)
        return obj

    # ------------------------------------------------------------ authentication, authorization, namespaces

    def _user(self, headers: dict) -> str | None:
        token = (headers or {}).get("authorization", "").removeprefix("Bearer ").strip()
        for namespace, name in self.accounts:
            if token == token_for(namespace, name):
                return service_account_user(namespace, name)
        if self.rbac is None and not self.accounts:
            return "system:admin"  # an unsecured fake: every request is the cluster admin's
        return None

    def admit(self, method: str, path: str, query: dict, headers: dict, body: dict | None):
        """None when the request may proceed, else (status, Status body) as the real server answers."""
        info = request_info(method, path, query or {})
        user = self._user(headers)
        if info is None:
            return 404, _status(404, "NotFound", "the server could not find the requested resource")
        call = Call(user or "", info.verb, info.group, info.resource, info.subresource, info.namespace, info.name)
        answer = self._admit(call, body)
        self.calls.append((call, answer[0] if answer else 200))
        return answer

    def _admit(self, call: Call, body: dict | None):
        if not call.user:
            return 401, _status(401, "Unauthorized", "Unauthorized")
        if self.rbac is not None and not self.rbac.allows(call):
            resource = f"{call.resource}.{call.group}" if call.group else call.resource
            subject = f'{resource} "{call.name}"' if call.name else resource
            scope = f'in the namespace "{call.namespace}"' if call.namespace else "at the cluster scope"
            what = f'"{call.resource}"' + (f' "{call.subresource}"' if call.subresource else "")
            kind = "subresource" if call.subresource else "resource"
            message = (
                f'{subject} is forbidden: User "{call.user}" cannot {call.verb} {kind} {what} '
                f'in API group "{call.group}" {scope}'
            )
            details = {"group": call.group, "kind": call.resource, **({"name": call.name} if call.name else {})}
            return 403, _status(403, "Forbidden", message, details)
        if call.namespace and self.namespaces and call.namespace not in self.namespaces:
            return 404, _status(404, "NotFound", f'namespaces "{call.namespace}" not found')
        if body and call.verb in ("create", "update"):
            declared = (body.get("metadata") or {}).get("namespace")
            if declared and declared != call.namespace:
                return 400, _status(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
        return None

    # ------------------------------------------------------------ resources

    def handle(
        self, method: str, path: str, body: dict | None, query: dict | None = None, headers: dict | None = None
    ) -> tuple[int, dict]:
        query = query or {}
        with self.lock:
            self.requests.append((method, path, body))
            if (denied := self.admit(method, path, query, headers or {}, body)) is not None:
                return denied
            watching = method == "GET" and query.get("watch", [""])[0].lower() in ("true", "1")
            if m := _CM.match(path):
                namespace, name = m.groups()
                kind = ("configmaps",)
            elif m := _CUSTOM.match(path):
                group, version, namespace, plural, name = m.groups()
                kind = (group, version, plural)
            elif path == "/api/v1/nodes" and method == "GET":
                nodes = [o for (k, _, _), o in sorted(self.objects.items()) if k == ("nodes",)]
                return 200, self._list("NodeList", nodes)
            else:
                return 404, _status(404, "NotFound", "the server could not find the requested resource")
            if watching:
                return self._watch(kind, namespace, query)
            if method == "PATCH" and (unsupported := _patch_type_error(kind, (headers or {}).get("content-type", ""))):
                return unsupported
            return self._crud(kind, namespace, name, method, body)

    def _list(self, kind: str, items: list) -> dict:
        return {"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": str(self.version)}, "items": items}

    def _watch(self, kind: tuple, namespace: str, query: dict):
        since = query.get("resourceVersion", [""])[0]
        if since and int(since) < self.compacted:
            error = _status(410, "Expired", f"too old resource version: {since} ({self.compacted})")
            return 200, json.dumps({"type": "ERROR", "object": error}).encode() + b"\n"
        selector = query.get("fieldSelector", [""])[0].partition("=")[2]
        events = []
        for (k, ns, name), obj in sorted(self.objects.items()):
            if k == kind and ns == namespace and (not selector or name == selector):
                obj = self.on_get(kind, obj) if self.on_get else obj
                if not since or int(obj["metadata"]["resourceVersion"]) > int(since):
                    events.append(json.dumps({"type": "ADDED", "object": obj}).encode() + b"\n")
        return 200, b"".join(events)  # then the server ends the watch, as at its timeout

    def _crud(self, kind: tuple, namespace: str, name: str | None, method: str, body: dict | None):
        if method == "POST":
            key = (kind, namespace, body["metadata"]["name"])
            if key in self.objects:
                resource = kind[-1] + (f".{kind[0]}" if len(kind) > 1 else "")
                return 409, _status(409, "AlreadyExists", f'{resource} "{key[2]}" already exists')
            body["metadata"]["namespace"] = namespace
            self.objects[key] = self._bump(body)
            return 201, body
        key = (kind, namespace, name)
        if key not in self.objects:
            resource = kind[-1] + (f".{kind[0]}" if len(kind) > 1 else "")
            return 404, _status(404, "NotFound", f'{resource} "{name}" not found')
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
        if method == "PATCH":  # JSON merge patch (the only type handle() lets through)
            self.objects[key] = self._bump(_merge(self.objects[key], body))
            return 200, self.objects[key]
        if method == "DELETE":
            del self.objects[key]
            return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
        return 405, _status(405, "MethodNotAllowed", method)

    def add_node(self, name: str, labels: dict) -> None:
        self.objects[(("nodes",), None, name)] = self._bump(
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": dict(labels)}}
        )


def handler(fake: FakeApiServer) -> http_fake.Handle:
    return lambda method, path, query, body, headers: fake.handle(
        method, path, json.loads(body) if body else None, query, headers
    )


def api_client(url: str, account: tuple[str, str] | None = STANDALONE):
    """A kubernetes ApiClient for the fake, authenticated as service account `account` (namespace, name)."""
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = url
    if account is not None:
        configuration.api_key = {"authorization": token_for(*account)}
        configuration.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(configuration)


def serve():
    """Yield (FakeApiServer, base URL) while it runs: the `api_server` fixture (tests/conftest.py), a cluster with
    KFP standalone and manifests/overlays/standalone applied; authenticate with api_client(url) (pipeline-runner)."""
    fake = FakeApiServer.deployed("overlays/standalone")
    yield from http_fake.running(fake, handler(fake))
