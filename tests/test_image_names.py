"""One setting names every image; no image greenfm ships or builds into a pod is untagged."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from components.common import images
from components.common.errors import GreenfmError

ROOT = Path(__file__).resolve().parent.parent


def test_one_template_names_every_image():
    env = {images.IMAGE_TEMPLATE_ENV: "registry.example/ml/greenfm-{name}:2026.12"}
    assert [images.image(name, env) for name in images.NAMES] == [
        "registry.example/ml/greenfm-base:2026.12",
        "registry.example/ml/greenfm-trainer:2026.12",
        "registry.example/ml/greenfm-spark:2026.12",
    ]
    assert images.image("spark", {}) == f"ghcr.io/greenfm/greenfm-spark:{images.VERSION}"


@pytest.mark.parametrize(
    "template", ["registry:5000/greenfm-{name}", "ghcr.io/greenfm/greenfm-{name}:latest", "greenfm-base:1.0"]
)
def test_untagged_latest_or_fixed_templates_are_rejected(template):
    with pytest.raises(GreenfmError, match=images.IMAGE_TEMPLATE_ENV + "|release tag"):
        images.template({images.IMAGE_TEMPLATE_ENV: template})


def test_digests_are_accepted():
    digest = "sha256:" + "a" * 64
    assert images.pinned(f"registry:5000/greenfm-base@{digest}").endswith(digest)


def test_every_manifest_image_is_pinned():
    found = 0
    for path in (ROOT / "manifests").rglob("*.yaml"):
        if "crds" in path.parts:  # schemas, not objects
            continue
        for image in re.findall(r"^\s*(?:-\s*)?image:\s*(\S+)", path.read_text(), re.M):
            images.pinned(image)
            found += 1
    assert found >= 4


def test_pods_created_at_run_time_use_the_compiled_template(monkeypatch):
    """The compiled template reaches the step as an environment variable; the step's builders read it."""
    from components.curate.k8s import SparkK8sConfig
    from components.pretrain.k8s import ClusterTrainConfig

    monkeypatch.setenv(images.IMAGE_TEMPLATE_ENV, "registry.example/greenfm-{name}:rc1")
    assert SparkK8sConfig(backend="operator", namespace="ns").image == "registry.example/greenfm-spark:rc1"
    assert ClusterTrainConfig(namespace="ns").image == "registry.example/greenfm-trainer:rc1"
