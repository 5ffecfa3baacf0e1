"""What the cluster a step runs in can actually place work on: the regions its nodes carry
(topology.kubernetes.io/region) and the GPUs there (NVIDIA GPU feature discovery's nvidia.com/gpu.product and
nvidia.com/gpu.count labels, GKE's cloud.google.com/gke-accelerator, or the nodes' allocatable nvidia.com/gpu).

A node selector on a region no node carries leaves the pod Pending forever, so the select-region step chooses
only among catalog regions this cluster has nodes in, and pins nothing when it cannot read the nodes (outside a
cluster, or without the greenfm-node-reader ClusterRole) or no node carries a region label.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from components.carbon.catalog import REGION_LABEL, Catalog
from components.common.errors import GreenfmError

GPU_PRODUCT_LABELS = ("nvidia.com/gpu.product", "cloud.google.com/gke-accelerator")
GPU_COUNT_LABEL = "nvidia.com/gpu.count"


@dataclass(frozen=True)
class ClusterNodes:
    """Per region of this cluster: GPU product -> GPUs of that product on its nodes, summed."""

    regions: dict[str, dict[str, int]] = field(default_factory=dict)
    unlabelled: int = 0  # nodes without a region label


def inventory(nodes: list[dict]) -> ClusterNodes:
    """The regions and GPUs `nodes` (Node objects as the API returns them) carry."""
    regions: dict[str, dict[str, int]] = {}
    unlabelled = 0
    for node in nodes:
        labels = (node.get("metadata") or {}).get("labels") or {}
        region = labels.get(REGION_LABEL)
        if not region:
            unlabelled += 1
            continue
        gpus = regions.setdefault(region, {})
        product = next((labels[key] for key in GPU_PRODUCT_LABELS if labels.get(key)), "")
        allocatable = ((node.get("status") or {}).get("allocatable") or {}).get("nvidia.com/gpu", 0)
        count = int(labels.get(GPU_COUNT_LABEL) or allocatable or 0)
        if product and count:
            gpus[product.lower()] = gpus.get(product.lower(), 0) + count
    return ClusterNodes(regions, unlabelled)


def read_nodes(core_api=None) -> list[dict] | str:
    """The cluster's Node objects, or why they cannot be read (a one-line reason)."""
    from kubernetes.client.rest import ApiException

    if core_api is None:
        if not os.environ.get("KUBERNETES_SERVICE_HOST"):
            return "not running in a Kubernetes cluster"
        from kubernetes import client, config

        config.load_incluster_config()  # never a local kubeconfig: that would be some other cluster
        core_api = client.CoreV1Api()
    try:
        listed = core_api.list_node(_preload_content=False)
    except ApiException as error:
        return f"cannot list nodes ({error.status} {error.reason}; grant ClusterRole greenfm-node-reader)"
    import json

    return json.loads(listed.data).get("items", [])


def _gpus_on_nodes(catalog_gpus: dict[str, int], node_gpus: dict[str, int]) -> dict[str, int]:
    """The catalog's GPU types the region's nodes have, at most as many as they have (GPU feature discovery
    names products like NVIDIA-H100-80GB-HBM3, the catalog nvidia-h100-80gb: a prefix match)."""
    kept = {}
    for name, count in catalog_gpus.items():
        have = sum(n for product, n in node_gpus.items() if product == name or product.startswith(name + "-"))
        if have:
            kept[name] = min(count, have)
    return kept


def restrict(catalog: Catalog, nodes: ClusterNodes) -> tuple[Catalog, dict[str, str]]:
    """The catalog cut to the regions this cluster has nodes in, with the GPUs those nodes have; the regions
    cut, with why. Fails when no catalog region is in the cluster (every selector would stay Pending)."""
    kept, cut = [], {}
    for region in catalog.regions:
        if region.name not in nodes.regions:
            cut[region.name] = f"no node in this cluster carries {REGION_LABEL}={region.name}"
            continue
        kept.append(replace(region, gpus=_gpus_on_nodes(region.gpus, nodes.regions[region.name])))
    if not kept:
        raise GreenfmError(
            f"region catalog: none of its regions ({', '.join(r.name for r in catalog.regions)}) has a node in "
            f"this cluster (node regions: {', '.join(sorted(nodes.regions))}); fix the catalog or the node labels"
        )
    names = {r.name for r in kept}
    return Catalog(kept, catalog.default_region if catalog.default_region in names else kept[0].name), cut


def place_in_cluster(catalog: Catalog, nodes: list[dict] | str) -> tuple[Catalog, bool, str]:
    """(catalog to choose from, whether to pin the stage with a node selector, a sentence saying which)."""
    if isinstance(nodes, str):
        return catalog, False, f"Not pinned to a region: {nodes}."
    found = inventory(nodes)
    if not found.regions:
        return catalog, False, f"Not pinned to a region: no node of this cluster carries {REGION_LABEL}."
    restricted, cut = restrict(catalog, found)
    regions = ", ".join(sorted(found.regions))
    note = f"Pinned with node selector {REGION_LABEL} among this cluster's node regions ({regions})"
    return restricted, True, note + (f"; {len(cut)} catalog region(s) have no node here." if cut else ".")
