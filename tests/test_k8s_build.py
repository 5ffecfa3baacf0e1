"""skaffold.yaml parses and names only things that exist; the Dockerfiles follow the image rules (pinned
bases, non-root numeric users, everything installed at build time); components run in those images."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from components.common import images

ROOT = Path(__file__).resolve().parent.parent
SKAFFOLD = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
DOCKERFILES = sorted((ROOT / "images").glob("*.Dockerfile"))


def test_skaffold_parses_with_known_schema():
    assert SKAFFOLD["apiVersion"].startswith("skaffold/v4") and SKAFFOLD["kind"] == "Config"
    assert SKAFFOLD["deploy"] == {"kubectl": {}}


def _kustomize_paths(section: dict) -> list[str]:
    return section.get("manifests", {}).get("kustomize", {}).get("paths", [])


def test_every_artifact_and_manifest_named_exists():
    artifacts = SKAFFOLD["build"]["artifacts"]
    assert {a["docker"]["dockerfile"] for a in artifacts} == {str(p.relative_to(ROOT)) for p in DOCKERFILES}
    for artifact in artifacts:
        context = ROOT / artifact.get("context", ".")
        assert (context / artifact["docker"]["dockerfile"]).is_file()
    paths = _kustomize_paths(SKAFFOLD) + [p for prof in SKAFFOLD["profiles"] for p in _kustomize_paths(prof)]
    for path in paths:
        assert (ROOT / path / "kustomization.yaml").is_file(), path


def test_profiles_match_overlays():
    overlays = {p.name for p in (ROOT / "manifests/overlays").iterdir() if p.is_dir()}
    profiles = {p["name"]: _kustomize_paths(p) for p in SKAFFOLD["profiles"]}
    assert set(profiles) == overlays
    for name, paths in profiles.items():
        assert paths == [f"manifests/overlays/{name}"]


def test_skaffold_builds_the_images_components_use():
    built = {a["image"] for a in SKAFFOLD["build"]["artifacts"]}
    for image in (images.BASE_IMAGE, images.TRAINER_IMAGE, images.SPARK_IMAGE):
        assert image.rsplit(":", 1)[0] in built


def test_manifests_use_skaffold_images():
    """skaffold rewrites image names it builds; an image it does not build would be pulled as-is."""
    built = {a["image"] for a in SKAFFOLD["build"]["artifacts"]}
    for path in (ROOT / "manifests").rglob("*.yaml"):
        if "crds" in path.parts:
            continue
        for image in re.findall(r"^\s*(?:-\s*)?image:\s*(\S+)", path.read_text(), re.M):
            assert image.rsplit(":", 1)[0] in built, f"{path}: {image}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_rules(dockerfile):
    text = dockerfile.read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", text, re.M))
    stages = set(re.findall(r"^FROM \S+ AS (\S+)", text, re.M))
    for base in re.findall(r"^FROM (\S+)", text, re.M):
        if base in stages:  # an earlier stage of this Dockerfile
            continue
        base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
        _, _, tag = base.partition(":")
        assert tag and tag != "latest" and re.search(r"\d+\.\d+", tag), f"unpinned base {base}"
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1].isdigit() and users[-1] != "0", "must end as a numeric non-root user"
    for line in re.findall(r"^RUN .*pip install.*$", text, re.M):
        assert "--no-cache-dir" in line or "PIP_NO_CACHE_DIR=1" in text
    assert "apt-get install" not in text or "rm -rf /var/lib/apt/lists/*" in text
    assert "pip install" not in text or "pip check" in text  # a consistent environment, as the project's must be


def test_spark_image_is_built_on_the_base_image():
    """Executors must run the driver's Python, greenfm and Spark: the spark image is the base image plus Spark's
    entrypoint, and the SparkApplication's script path exists in it."""
    text = (ROOT / "images/spark.Dockerfile").read_text()
    assert re.search(r"^ARG GREENFM_BASE_IMAGE=(\S+)", text, re.M).group(1) == images.BASE_IMAGE
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["${GREENFM_BASE_IMAGE}"]
    assert "/opt/greenfm" in text and "/opt/entrypoint.sh" in text
    from components.curate.k8s import DRIVER_SCRIPT

    assert DRIVER_SCRIPT.startswith("local:///opt/greenfm/")
    spark = next(a for a in SKAFFOLD["build"]["artifacts"] if a["docker"]["dockerfile"] == "images/spark.Dockerfile")
    assert spark["requires"] == [{"image": images.BASE_IMAGE.rsplit(":", 1)[0], "alias": "GREENFM_BASE_IMAGE"}]


def test_skaffold_passes_the_dockerfiles_build_arguments_with_their_defaults():
    for artifact in SKAFFOLD["build"]["artifacts"]:
        text = (ROOT / artifact["docker"]["dockerfile"]).read_text()
        defaults = dict(re.findall(r"^ARG (\w+)=(\S+)", text, re.M))
        passed = artifact["docker"].get("buildArgs", {})
        aliases = {r["alias"] for r in artifact.get("requires", [])}
        assert set(passed) | aliases == set(defaults), artifact["image"]
        for key, value in passed.items():
            assert re.fullmatch(r'\{\{default "([^"]+)" \.GREENFM_BUILD_\w+\}\}', value).group(1) == defaults[key]


def test_torch_pins_agree():
    pin = re.search(r'"torch==([\d.]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    for dockerfile in DOCKERFILES:
        assert set(re.findall(r"torch==([\d.]+)", dockerfile.read_text())) <= {pin}


def test_components_install_nothing_at_run_time(tmp_path):
    from pipelines.compile import compile_pipeline

    spec = next(yaml.safe_load_all(compile_pipeline(tmp_path / "p.yaml").read_text()))  # then the platform spec
    executors = spec["deploymentSpec"]["executors"]
    assert executors
    for name, executor in executors.items():
        container = executor["container"]
        assert container["image"] in (images.BASE_IMAGE, images.TRAINER_IMAGE), name
        assert "pip install" not in " ".join(container.get("command", []) + container.get("args", [])), name


def test_steps_that_read_or_write_the_workspace_mount_it(tmp_path):
    from components.common.cluster import WORKSPACE_MOUNT, WORKSPACE_PVC
    from pipelines.compile import compile_pipeline

    platform = list(yaml.safe_load_all(compile_pipeline(tmp_path / "p.yaml").read_text()))[1]
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    mounted = {
        name
        for name, spec in executors.items()
        for pvc in spec.get("pvcMount", [])
        if pvc["mountPath"] == WORKSPACE_MOUNT and WORKSPACE_PVC in json.dumps(pvc)
    }
    assert mounted == {"exec-curate-op", "exec-validate-op", "exec-pretrain-op"}
