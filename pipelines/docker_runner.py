"""`greenfm run --runner docker`: every component in its image (kfp.local's DockerRunner), the way a cluster runs
it: the container command is the compiled one (`python3 -m kfp.dsl.executor_main`), nothing is installed at run
time, the image's non-root user (uid 10001) runs it, and the run's folder is mounted at the same path in every
container, as a PVC is mounted in every pod of a run.
"""

from __future__ import annotations

import os
from pathlib import Path

from components.common import images
from pipelines.config import RunConfig

IMAGE_UID = 10001  # images/*.Dockerfile's USER
_patched = False


def docker_runner(config: RunConfig, run_dir: Path):
    """The kfp.local runner for this run: images checked against this checkout, volumes mounted and writable."""
    from docker.types import Mount
    from kfp import local

    from pipelines.images import check_current, find_engine

    check_current(find_engine(), sorted({images.BASE_IMAGE, images.TRAINER_IMAGE}))
    _run_without_auto_remove()
    out_root = Path(run_dir).resolve().parent
    mounts = [Mount(str(out_root), str(out_root), type="bind")]  # run dirs, input copy, profile store
    for path in _host_paths(config):
        if out_root not in (path, *path.parents):
            mounts.append(Mount(str(path), str(path), type="bind", read_only=True))
    for folder in (run_dir, run_dir / "artifacts", run_dir / "workspace"):  # run_local's pipeline and workspace roots
        writable_by_image_user(folder)
    if config.profile_store and not config.profile_store.startswith(("s3://", "gs://")):
        writable_by_image_user(Path(config.profile_store))
    return local.DockerRunner(mounts=mounts)


def _host_paths(config: RunConfig) -> list[Path]:
    """Local paths the steps read besides the run folder: the input, warm-start and model-store folders."""
    paths = []
    for value in (config.input_uri, config.warm_start_model, config.model_store, config.adapt_warm_start):
        if value and "://" not in value:
            path = Path(value).resolve()
            paths.append(path if path.is_dir() else path.parent)
    return paths


def writable_by_image_user(folder: Path) -> None:
    """Let the containers' user write into `folder` and what kfp.local creates in it, as a PVC with fsGroup would:
    owned by the image's uid where this process may chown (root), else open to everyone (a user's own folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(folder, IMAGE_UID, 0)
        folder.chmod(0o2775)
    else:
        folder.chmod(0o2777)


def _run_without_auto_remove() -> None:
    """kfp 2.17 starts each container with auto_remove=True and expects the engine to answer 404 for a container
    that exited and was removed. podman 4.3's Docker-compatible API answers 500 ("no such container") instead, so
    a step that ends quickly fails although it succeeded. Run them without auto-remove, wait for the exit code,
    then remove the container: the same result on Docker and podman."""
    global _patched
    if _patched:
        return
    from kfp.local import docker_task_handler

    docker_task_handler.run_docker_container = run_docker_container
    _patched = True


def run_docker_container(client, image: str, command: list[str], volumes: dict, **container_run_args) -> int:
    """kfp.local.docker_task_handler.run_docker_container without auto_remove: stream the logs, wait, remove."""
    from kfp.local.docker_task_handler import add_latest_tag_if_not_present

    image = add_latest_tag_if_not_present(image)
    if not any(image in (found.tags + found.attrs.get("RepoDigests", [])) for found in client.images.list()):
        client.images.pull(image)
    container = client.containers.run(
        image=image, command=command, detach=True, stdout=True, stderr=True, volumes=volumes, **container_run_args
    )
    try:
        for line in container.logs(stream=True):
            print(line.decode(), end="")
        return container.wait()["StatusCode"]
    finally:
        container.remove(force=True)
