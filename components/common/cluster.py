"""Names the manifests (manifests/base) and the pipeline share: the workspace volume every heavy step mounts,
and the namespace a step creates its jobs in."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

WORKSPACE_PVC = "greenfm-workspace"  # manifests/base/workspace-pvc.yaml
WORKSPACE_MOUNT = "/workspace"  # input data, the model store, Spark operator output

# KFP runs a pipeline's pods in the run's namespace (standalone: the API server's; multi-user: the profile's).
# The pipeline sets this variable from the downward API (metadata.namespace) on every step that talks to the
# Kubernetes API: the run's account may create jobs there and nowhere else.
NAMESPACE_ENV = "POD_NAMESPACE"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def pod_namespace(env: Mapping[str, str] | None = None) -> str:
    """The namespace this pod runs in: $POD_NAMESPACE, else the mounted service account's namespace, else
    `default` (outside a cluster, as kubectl)."""
    environ: Mapping[str, str] = os.environ if env is None else env
    if environ.get(NAMESPACE_ENV):
        return environ[NAMESPACE_ENV]
    if SERVICE_ACCOUNT_NAMESPACE.is_file():
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    return "default"
