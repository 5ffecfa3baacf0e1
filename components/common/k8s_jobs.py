"""Custom-resource jobs on Kubernetes (SparkApplication, PyTorchJob, TrainJob): the API client, create (or
adopt, or replace a failed leftover), ownership by the step's pod, deletion when the step is terminated, a
watch that survives dropped connections, and following a pod's log.

Jobs are created in the step's own namespace (POD_NAMESPACE from the downward API) and owned by the step's
pod (POD_NAME, POD_UID): when KFP deletes a terminated or finished run's pods, the garbage collector deletes
their jobs too. A step that is terminated gets SIGTERM first and deletes its job itself (`deleted_on_sigterm`).

Watches drop: API servers end them after a timeout, proxies cut idle connections, the resourceVersion a
watch started from can expire (410 Gone). `watch_until` reconnects from the last version it saw and relists
after a 410, until its predicate holds or its deadline passes.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from components.common.cluster import NAMESPACE_ENV
from components.common.errors import GreenfmError


@dataclass(frozen=True)
class CustomResource:
    group: str
    version: str
    plural: str
    kind: str

    def args(self, namespace: str) -> tuple[str, str, str, str]:
        return self.group, self.version, namespace, self.plural


def custom_objects_api(api_client=None):
    """CustomObjectsApi for the given client; by default in-cluster config, else the local kubeconfig."""
    from kubernetes import client

    return client.CustomObjectsApi(api_client or default_api_client())


def default_api_client():
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


# The step's own pod, from the downward API (pipelines/cluster_tasks.py sets these on the steps that create pods).
POD_ENV = {"POD_NAME": "metadata.name", "POD_UID": "metadata.uid", "POD_IP": "status.podIP"}


def owner_reference(namespace: str, env: Mapping[str, str] | None = None) -> dict | None:
    """An ownerReference to the step's pod, if the step knows its pod and runs in `namespace` (owners must be
    in the same namespace as what they own). Not blockOwnerDeletion: that needs rights on pods/finalizers."""
    env = os.environ if env is None else env
    if not (env.get("POD_NAME") and env.get("POD_UID")) or env.get(NAMESPACE_ENV, namespace) != namespace:
        return None
    return {"apiVersion": "v1", "kind": "Pod", "name": env["POD_NAME"], "uid": env["POD_UID"]}


def owned(obj: dict, owner: dict | None) -> dict:
    """`obj` with `owner` as its only owner (a retried step's new pod takes over from the old one)."""
    if owner:
        obj["metadata"]["ownerReferences"] = [owner]
    return obj


def create_custom_object(
    api,
    resource: CustomResource,
    obj: dict,
    failed: Callable[[dict], bool] = lambda _: False,
    gone_timeout_s: float = 300.0,
    poll_s: float = 2.0,
) -> str:
    """Create `obj` (names are deterministic: the same name is the same work). On 409 AlreadyExists, a leftover
    that `failed` is deleted and created again (rerunning a failed job is what a retried step is for); any
    other is adopted: the step waits for it instead of starting the work twice, and takes over its ownership.
    Returns "created", "adopted" or "recreated"."""
    from kubernetes.client.rest import ApiException

    namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    try:
        api.create_namespaced_custom_object(*resource.args(namespace), obj)
        return "created"
    except ApiException as error:
        if error.status != 409:
            raise
    existing = api.get_namespaced_custom_object(*resource.args(namespace), name)
    if not failed(existing) and not existing["metadata"].get("deletionTimestamp"):
        if obj["metadata"].get("ownerReferences"):
            patch = {"metadata": {"ownerReferences": obj["metadata"]["ownerReferences"]}}
            api.patch_namespaced_custom_object(*resource.args(namespace), name, patch)
        return "adopted"
    delete_custom_object(api, resource, namespace, name)
    deadline = time.monotonic() + gone_timeout_s
    while True:  # foreground deletion: the object stays until its pods are gone
        try:
            api.get_namespaced_custom_object(*resource.args(namespace), name)
        except ApiException as error:
            if error.status == 404:
                break
            raise
        if time.monotonic() > deadline:
            raise GreenfmError(
                f"{resource.kind} {namespace}/{name}: failed leftover not gone after {gone_timeout_s:.0f} s"
            )
        time.sleep(poll_s)
    api.create_namespaced_custom_object(*resource.args(namespace), obj)
    return "recreated"


@contextmanager
def deleted_on_sigterm(api, resource: CustomResource, namespace: str, name: str) -> Iterator[None]:
    """While the block runs, SIGTERM (a run terminated in the UI, a pod deleted) deletes the job before the
    step exits, instead of leaving it training with nobody waiting. Only the main thread can take signals;
    elsewhere the pod's ownerReference is the only cleanup."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        delete_custom_object(api, resource, namespace, name)
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def delete_custom_object(api, resource: CustomResource, namespace: str, name: str) -> None:
    """Delete with its pods (foreground propagation); already gone is fine."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        api.delete_namespaced_custom_object(
            *resource.args(namespace), name, body=client.V1DeleteOptions(propagation_policy="Foreground")
        )
    except ApiException as error:
        if error.status != 404:
            raise


def watch_until(
    api,
    resource: CustomResource,
    namespace: str,
    name: str,
    done: Callable[[dict], bool],
    timeout_s: float,
    watch_timeout_s: int = 300,
    retry_wait_s: float = 1.0,
) -> dict:
    """Watch one object until `done(object)`; return that object. Reconnects on dropped or expired watches and
    on API-server errors (5xx); fails if the object is deleted or the deadline passes."""
    import urllib3
    from kubernetes import watch
    from kubernetes.client.rest import ApiException

    deadline = time.monotonic() + timeout_s
    version: str | None = None
    last: dict = {}
    while time.monotonic() < deadline:
        stream = watch.Watch()
        server_timeout = max(1, min(watch_timeout_s, int(deadline - time.monotonic())))
        # the client-side read timeout catches connections that die silently (no FIN from a proxy)
        kwargs = {
            "field_selector": f"metadata.name={name}",
            "timeout_seconds": server_timeout,
            "_request_timeout": server_timeout + 30,
        }
        if version:
            kwargs["resource_version"] = version
        try:
            for event in stream.stream(api.list_namespaced_custom_object, *resource.args(namespace), **kwargs):
                obj = event["object"]
                if event["type"] == "DELETED":
                    raise GreenfmError(f"{resource.kind} {namespace}/{name} was deleted while it ran")
                version, last = obj.get("metadata", {}).get("resourceVersion", version), obj
                if done(obj):
                    return obj
        except ApiException as error:
            if error.status == 410:
                version = None  # expired: start over from the current state
            elif error.status < 500:
                raise
            else:
                time.sleep(retry_wait_s)
        except (urllib3.exceptions.HTTPError, ConnectionError):
            time.sleep(retry_wait_s)  # dropped connection: reconnect from the last version seen
        finally:
            stream.stop()
    state = last.get("status", {}) if last else "never seen"
    raise GreenfmError(f"{resource.kind} {namespace}/{name} not finished after {timeout_s:.0f} s (status: {state})")


def follow_pod_log(
    core_api, namespace: str, pod: str, keep_going: Callable[[], bool], retry_wait_s: float = 2.0
) -> Iterator[str]:
    """Lines of a pod's log as they come; waits for the pod to start and re-follows after a disconnect (asking
    only for lines newer than the last one seen) while `keep_going()`."""
    import urllib3
    from kubernetes import watch
    from kubernetes.client.rest import ApiException

    last_line: float | None = None
    while keep_going():
        kwargs: dict[str, bool | int] = {"follow": True}
        if last_line is not None:
            kwargs["since_seconds"] = max(1, int(time.time() - last_line) + 1)
        try:
            for line in watch.Watch().stream(core_api.read_namespaced_pod_log, pod, namespace, **kwargs):
                last_line = time.time()
                yield line
        except ApiException as error:
            if error.status not in (400, 404) and error.status < 500:  # 400/404: container not started yet
                raise
        except (urllib3.exceptions.HTTPError, ConnectionError):
            pass
        time.sleep(retry_wait_s)
