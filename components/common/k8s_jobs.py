"""Custom-resource jobs on Kubernetes (SparkApplication, PyTorchJob): the API client, idempotent create,
a watch that survives dropped connections, deletion, and following a pod's log.

Watches drop: API servers end them after a timeout, proxies cut idle connections, the resourceVersion a
watch started from can expire (410 Gone). `watch_until` reconnects from the last version it saw and relists
after a 410, until its predicate holds or its deadline passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

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


def create_custom_object(api, resource: CustomResource, obj: dict) -> bool:
    """Create `obj`; an existing object of the same name is the same work (names are deterministic), so a
    409 AlreadyExists is success. Returns whether this call created it."""
    from kubernetes.client.rest import ApiException

    try:
        api.create_namespaced_custom_object(*resource.args(obj["metadata"]["namespace"]), obj)
        return True
    except ApiException as error:
        if error.status != 409:
            raise
        return False


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
