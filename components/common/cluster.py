"""Names the manifests (manifests/base) and the pipeline share: the workspace volume every heavy step mounts."""

WORKSPACE_PVC = "greenfm-workspace"  # manifests/base/workspace-pvc.yaml
WORKSPACE_MOUNT = "/workspace"  # input data, the model store, Spark operator output
