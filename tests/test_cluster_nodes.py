"""Placement that can take effect: the select-region step chooses only among the regions its cluster's nodes
carry (and the GPUs on them), and pins nothing it cannot verify. The shipped catalog's pick
(northamerica-northeast1) on a cluster without nodes there would leave every heavy stage Pending forever."""

from __future__ import annotations

import json

import pytest
from kubernetes import client as k8s

from components.carbon import cluster_nodes
from components.carbon.catalog import REGION_LABEL, load_catalog
from components.carbon.cluster_nodes import inventory, place_in_cluster, read_nodes
from components.carbon.component import select_region_op
from components.common.errors import GreenfmError
from tests import fake_k8s, http_fake

ESTIMATES = json.dumps({"pretrain": {"kwh": 20.0, "hours": 2.0}})


def node(name: str, region: str | None, gpu: str = "", count: int = 0, gke: bool = False) -> dict:
    labels = {"kubernetes.io/hostname": name}
    if region:
        labels[REGION_LABEL] = region
    if gpu and gke:
        labels["cloud.google.com/gke-accelerator"] = gpu
    elif gpu:
        labels |= {"nvidia.com/gpu.product": gpu, "nvidia.com/gpu.count": str(count)}
    status = {"allocatable": {"nvidia.com/gpu": str(count)}} if gke and count else {}
    return {"metadata": {"name": name, "labels": labels}, "status": status}


def select(monkeypatch, nodes, gpu_type: str = "", gpu_count: int = 0) -> tuple[dict, dict]:
    """Run the select-region step's function as KFP would, on a cluster with `nodes`."""
    monkeypatch.setattr(cluster_nodes, "read_nodes", lambda: nodes)
    out = select_region_op.python_func(
        stage="pretrain",
        region_catalog="",
        intensity_provider="static",
        intensity_provider_url="",
        gpu_type=gpu_type,
        gpu_count=gpu_count,
        residency_tags="",
        deadline_hours=0.0,
        max_wait_hours=0.0,
        job_estimates=ESTIMATES,
    )
    return out.node_selector, json.loads(out.decision)


@pytest.mark.parametrize(
    "regions", [["europe-north1"], ["us-central1"], ["us-central1", "europe-north1"], ["europe-central2"]]
)
def test_the_selector_names_only_a_region_some_node_carries(monkeypatch, regions):
    nodes = [node(f"n{i}", region) for i, region in enumerate(regions)] + [node("unlabelled", None)]
    selector, decision = select(monkeypatch, nodes)
    assert selector[REGION_LABEL] in regions
    assert decision["node_selector"] == selector and "Pinned with node selector" in decision["reason"]


def test_gpus_come_from_the_nodes_labels(monkeypatch):
    nodes = [
        node("a", "europe-north1", "NVIDIA-H100-80GB-HBM3", 8),  # GPU feature discovery
        node("b", "us-central1", "nvidia-l4", 4, gke=True),  # GKE label + allocatable
    ]
    assert inventory(nodes).regions == {"europe-north1": {"nvidia-h100-80gb-hbm3": 8}, "us-central1": {"nvidia-l4": 4}}
    selector, _ = select(monkeypatch, nodes, "nvidia-h100-80gb", 8)
    assert selector == {REGION_LABEL: "europe-north1"}
    selector, _ = select(monkeypatch, nodes, "nvidia-l4", 4)
    assert selector == {REGION_LABEL: "us-central1"}  # the catalog lists L4s elsewhere too, the nodes do not
    with pytest.raises(GreenfmError):  # 16 L4s: the catalog says 16 in us-central1, the nodes have 4
        select(monkeypatch, nodes, "nvidia-l4", 16)


def test_nothing_is_pinned_when_the_nodes_cannot_be_verified(monkeypatch):
    selector, decision = select(monkeypatch, "cannot list nodes (403 Forbidden; grant ClusterRole greenfm-node-reader)")
    assert selector == {} and decision["node_selector"] == {}
    assert decision["chosen"]["region"] == "northamerica-northeast1"  # the catalog's pick, which it cannot pin
    assert "Not pinned to a region: cannot list nodes (403" in decision["reason"]
    selector, decision = select(monkeypatch, [node("kind-control-plane", None)])  # kind: no region labels
    assert selector == {} and f"no node of this cluster carries {REGION_LABEL}" in decision["reason"]


def test_a_catalog_without_any_of_the_clusters_regions_fails_in_one_line():
    with pytest.raises(GreenfmError, match=r"none of its regions .* has a node in this cluster \(node regions: mars\)"):
        place_in_cluster(load_catalog(), [node("x", "mars")])


def test_outside_a_cluster_nothing_is_read(monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert read_nodes() == "not running in a Kubernetes cluster"


@pytest.mark.parametrize(
    "overlay,account", [("overlays/standalone", fake_k8s.STANDALONE), ("overlays/multi-user", fake_k8s.MULTI_USER)]
)
def test_the_run_account_may_list_nodes_and_others_may_not(overlay, account):
    fake = fake_k8s.FakeApiServer.deployed(overlay)
    fake.add_node("gpu-1", {REGION_LABEL: "europe-north1"})
    for _, url in http_fake.running(fake, fake_k8s.handler(fake)):
        nodes = read_nodes(k8s.CoreV1Api(fake_k8s.api_client(url, account)))
        assert [n["metadata"]["name"] for n in nodes] == ["gpu-1"]
        other = read_nodes(k8s.CoreV1Api(fake_k8s.api_client(url, (account[0], "default"))))
        assert other.startswith("cannot list nodes (403")
