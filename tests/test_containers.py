"""The images, built and run in a container engine (Docker or podman): the whole DAG in its images (kfp.local's
DockerRunner) giving the subprocess runner's hashes, two trainer containers as PyTorchJob replicas (gloo),
and curation's Spark driver in one container with executors in others.

Run with `pytest -m containers` after `bash ../shared/containers/setup.sh` (or with Docker running). The images
are built once per session (`greenfm images build`; a build with unchanged inputs is skipped). Without a
container engine every case here is skipped, saying why.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from components.common import images
from components.common.errors import GreenfmError
from components.common.run_status import INTERRUPTED, read_status
from pipelines.docker_runner import writable_by_image_user
from pipelines.images import BuildOptions, _default_torch_wheel, build_images, find_engine
from pipelines.reaper import CONTAINER_LABEL
from tests import pytorchjob_replicas
from tests.greenfm_runs import TINY, greenfm_run, manifest_of, only_run_dir, run_to_end, wait_for
from tests.test_pretrain_distributed import TINY as TINY_TRAIN
from tests.test_pretrain_distributed import losses

pytestmark = [pytest.mark.containers, pytest.mark.slow]


def _engine_or_skip() -> str:
    try:
        engine = find_engine()
    except GreenfmError as error:
        pytest.skip(f"{error}: the container suite needs Docker or podman")
    info = subprocess.run([engine, "info"], capture_output=True, text=True)
    if info.returncode != 0:
        pytest.skip(
            f"{engine} cannot reach its engine ({info.stderr.strip()[:200]}); on this kind of machine run "
            "`bash ../shared/containers/setup.sh` and export DOCKER_HOST"
        )
    if engine == "podman" and not os.environ.get("DOCKER_HOST"):
        pytest.skip("podman: kfp's DockerRunner needs DOCKER_HOST=unix:///run/podman/podman.sock (setup.sh prints it)")
    return engine


@pytest.fixture(scope="session")
def engine() -> str:
    return _engine_or_skip()


@pytest.fixture(scope="session")
def built(engine):
    """Every image, built once per session: on the base $GREENFM_STANDIN_BASE names (else the public default),
    with the local CPU torch wheel where pip's find-links has one (else torch from the index)."""
    options = BuildOptions(
        base_image=os.environ.get("GREENFM_STANDIN_BASE", ""), torch_wheel=_default_torch_wheel(), engine=engine
    )
    started = time.monotonic()
    result = {image.name: image for image in build_images(options, on_event=print)}
    print(
        f"images ready in {time.monotonic() - started:.0f} s:",
        {n: f"{i.size_bytes / 1e9:.2f} GB" for n, i in result.items()},
    )
    return result


def _in_image(engine: str, image: str, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run([engine, "run", "--rm", image, *command], capture_output=True, text=True, timeout=600)


def test_images_run_as_their_non_root_user(engine, built):
    for image in built.values():
        run = _in_image(engine, image.ref, "id", "-u")
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == "10001", image.ref
    greenfm = _in_image(engine, images.BASE_IMAGE, "greenfm", "--help")
    assert greenfm.returncode == 0 and "run" in greenfm.stdout
    java = _in_image(engine, images.BASE_IMAGE, "java", "-version")
    assert java.returncode == 0 and "17" in java.stderr


def test_trainer_image_runs_torch_compile(engine, built):
    """torch.compile builds code with the image's compiler (Inductor's C++ on CPU; Triton's launcher on GPU)."""
    script = (
        "import torch\n"
        "f = torch.compile(lambda x: torch.sin(x) * 2 + x)\n"
        "x = torch.linspace(0, 1, 64)\n"
        "assert torch.allclose(f(x), torch.sin(x) * 2 + x)\n"
        "print('compiled', torch.__version__)\n"
    )
    run = _in_image(engine, images.TRAINER_IMAGE, "python3", "-c", script)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "compiled 2.13" in run.stdout


def test_spark_image_is_the_base_with_sparks_entrypoint(engine, built):
    run = _in_image(
        engine, images.SPARK_IMAGE, "python3", "-c", "import pyspark, components; print(pyspark.__version__)"
    )
    assert run.returncode == 0, run.stderr
    import pyspark

    assert run.stdout.strip() == pyspark.__version__
    assert _in_image(engine, images.SPARK_IMAGE, "test", "-f", "/opt/greenfm/components/curate/k8s.py").returncode == 0


def test_dag_in_its_images_matches_the_subprocess_runner(engine, built, tmp_path, tiny_corpus):
    """`greenfm run --runner docker`: every step in its image as uid 10001, the run folder mounted like a PVC;
    the curated data and the CPU checkpoint hash the same as with the subprocess runner."""
    # The input as a user shares it with a container (pytest's own folders are private to this process's user;
    # `--runner docker` refuses those in one line, tests/test_docker_runner.py).
    corpus = _workspace(tmp_path, tiny_corpus, "input") / "input"
    started = time.monotonic()
    in_containers = run_to_end(tmp_path, corpus, TINY, "docker", "--runner", "docker")
    container_seconds = time.monotonic() - started
    assert in_containers.returncode == 0, in_containers.stderr[-4000:]
    started = time.monotonic()
    in_subprocesses = run_to_end(tmp_path, corpus, TINY, "subprocess")
    subprocess_seconds = time.monotonic() - started
    assert in_subprocesses.returncode == 0, in_subprocesses.stderr[-4000:]
    docker, local = manifest_of(tmp_path / "docker"), manifest_of(tmp_path / "subprocess")
    assert docker["succeeded"] and local["succeeded"]
    assert docker["curated_data_sha256"] == local["curated_data_sha256"]
    assert docker["checkpoint_sha256"] == local["checkpoint_sha256"]
    owners = {p.stat().st_uid for p in Path(docker["run_dir"], "artifacts").rglob("*") if p.is_file()}
    assert owners == {10001}  # every artifact was written by the images' user
    print(f"DAG: containers {container_seconds:.0f} s, subprocesses {subprocess_seconds:.0f} s")


def _labelled_containers(engine: str) -> list[str]:
    listed = subprocess.run(
        [engine, "ps", "-a", "--filter", f"label={CONTAINER_LABEL}", "--format", "{{.ID}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return listed.stdout.split()


def test_kill_9_of_a_docker_run_removes_its_step_containers(engine, built, tmp_path, tiny_corpus):
    """`greenfm run --runner docker` killed (SIGKILL to its process group) while a step runs: the step's
    container, which the engine owns and no process of the run does, is removed by the run's watchdog, and the
    run reads as interrupted."""
    assert not _labelled_containers(engine), "a container of an earlier run is still there"
    out = tmp_path / "runs"
    corpus = _workspace(tmp_path, tiny_corpus, "input") / "input"  # shared as in the DAG case above
    run = greenfm_run(tmp_path, corpus, TINY, out, "--runner", "docker", start_new_session=True)
    try:
        wait_for(lambda: run.poll() is not None or _labelled_containers(engine), 600, "a step container to start")
        assert run.poll() is None, run.stderr.read() if run.stderr else run.returncode
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    wait_for(lambda: not _labelled_containers(engine), 60, "the run's containers to be removed")
    run_dir = only_run_dir(out)
    wait_for(lambda: read_status(run_dir).status == INTERRUPTED, 20, "RUN_STATUS to say interrupted")


@pytest.fixture()
def network(engine):
    name = f"greenfm-test-{uuid.uuid4().hex[:8]}"
    subprocess.run([engine, "network", "create", name], check=True, capture_output=True)
    started: list[str] = []
    yield name, started
    for container in started:
        subprocess.run([engine, "rm", "-f", container], capture_output=True)
    subprocess.run([engine, "network", "rm", "-f", name], capture_output=True)


def _pytorchjob(config, name: str) -> dict:
    from components.pretrain.k8s import ClusterTrainConfig, build_pytorchjob

    jcfg = ClusterTrainConfig(nodes=2, gpus_per_node=1, image=images.TRAINER_IMAGE)
    config = replace(config, checkpoint_dir=f"{jcfg.workspace_mount}/checkpoints")
    return build_pytorchjob(name, f"{jcfg.workspace_mount}/tokens", f"{jcfg.workspace_mount}/model", config, jcfg)


def _workspace(tmp_path: Path, source: Path, folder: str = "tokens") -> Path:
    """A shared volume holding a copy of `source` as `folder`, every folder of it writable by the images' user
    (pytest's own folders are private to this process's user, as a PVC's are not)."""
    import shutil

    workspace = tmp_path / "workspace"
    shutil.copytree(source, workspace / folder)
    for path in [workspace, *workspace.rglob("*")]:
        if path.is_dir():
            writable_by_image_user(path)
    return workspace


def _log_steps(engine: str, container: str, seen: list[int], stop: threading.Event) -> None:
    from components.pretrain.worker import log_entry

    while not stop.is_set():
        logs = subprocess.Popen(
            [engine, "logs", "-f", container], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for line in logs.stdout:
            entry = log_entry(line)
            if entry is not None:
                seen.append(entry["step"])
        logs.wait()
        time.sleep(0.5)  # a restarted container: follow its new log


def _wait(engine: str, container: str, timeout: float = 900) -> int:
    result = subprocess.run([engine, "wait", container], capture_output=True, text=True, timeout=timeout)
    return int(result.stdout.strip().splitlines()[-1])


def test_two_trainer_containers_match_one_process(engine, built, network, shards, tmp_path):
    """The PyTorchJob's two Worker replicas as containers (operator-injected PET_* environment, rendezvous on
    <job>-worker-0 by name, checkpoints on the shared volume), half the batch each: one process's losses."""
    from components.pretrain.train import TrainResult, train

    single = train(shards, tmp_path / "single", TINY_TRAIN)
    workspace = _workspace(tmp_path, shards)
    job = _pytorchjob(replace(TINY_TRAIN, batch_size=4), "greenfm-pretrain-2n")
    name, started = network
    for replica in pytorchjob_replicas.replicas(job):
        pytorchjob_replicas.start(engine, replica, name, {"workspace": workspace})
        started.append(replica.name)
    codes = [_wait(engine, container) for container in started]
    logs = subprocess.run([engine, "logs", started[0]], capture_output=True, text=True).stdout
    assert codes == [0, 0], logs[-3000:]
    multi = TrainResult.load(workspace / "model")
    assert multi is not None and multi.report["world_size"] == 2
    assert losses(multi).keys() == losses(single).keys()
    for step, loss in losses(single).items():
        assert losses(multi)[step] == pytest.approx(loss, abs=2e-3), step
    assert multi.val_loss == pytest.approx(single.val_loss, abs=2e-3)


def test_killed_trainer_container_resumes_from_the_last_checkpoint(engine, built, network, shards, tmp_path):
    """SIGKILL worker 1's container mid-run and restart it (the kubelet, restartPolicy OnFailure): the workers
    rendezvous again, resume from the last checkpoint on the shared volume, lose fewer than checkpoint_every
    steps, and log the losses an uninterrupted run logs."""
    from components.pretrain.train import TrainResult, train

    every = 4
    config = replace(TINY_TRAIN, steps=40, log_every=1, batch_size=4, checkpoint_every=every)
    reference = train(shards, tmp_path / "reference", replace(config, batch_size=8))
    workspace = _workspace(tmp_path, shards)
    job = _pytorchjob(config, "greenfm-pretrain-kill")
    name, started = network
    for replica in pytorchjob_replicas.replicas(job):
        pytorchjob_replicas.start(engine, replica, name, {"workspace": workspace})
        started.append(replica.name)
    seen: list[int] = []
    stop = threading.Event()
    followers = [threading.Thread(target=_log_steps, args=(engine, c, seen, stop), daemon=True) for c in started]
    for follower in followers:
        follower.start()
    deadline = time.monotonic() + 600
    while not any(step >= 10 for step in seen) and time.monotonic() < deadline:
        time.sleep(0.2)
    killed_after = max(seen, default=0)
    subprocess.run([engine, "kill", started[1]], check=True, capture_output=True)
    _wait(engine, started[1], timeout=60)
    subprocess.run([engine, "start", started[1]], check=True, capture_output=True)
    code = _wait(engine, started[0])
    stop.set()
    logs = subprocess.run([engine, "logs", started[0]], capture_output=True, text=True).stdout
    assert code == 0, logs[-3000:]
    assert _wait(engine, started[1]) == 0
    result = TrainResult.load(workspace / "model")
    resumed = result.report["resumed_from_step"]
    assert 10 <= killed_after < 40 and resumed % every == 0 and resumed >= every
    assert killed_after - resumed < every  # steps done after the last checkpoint (lost): fewer than N
    for step, loss in losses(result).items():
        assert loss == pytest.approx(losses(reference)[step], abs=2e-3), step
    assert result.val_loss == pytest.approx(reference.val_loss, abs=2e-3)
    # The log lags the training loop: a checkpoint written after the last step the log showed is not a loss.
    lost = max(0, killed_after - resumed)
    print(f"last step logged before the kill {killed_after}, resumed from step {resumed}: {lost} steps lost")
    print(json.dumps({"killed_after": killed_after, "resumed_from": resumed}))


def test_curation_with_executors_in_other_containers(engine, built, network, tiny_corpus, tmp_path):
    """The curate step as a client-mode Spark driver in the base image, executors in two spark-image containers
    (a standalone master and workers stand in for executor pods: the executors connect back to the driver by its
    host name, and both sides read and write the shared volume): the curated data's hash is local[*]'s."""
    from components.curate.job import REPORT_JSON

    workspace = _workspace(tmp_path, tiny_corpus, "input")
    name, started = network
    volume = ["-v", f"{workspace}:/workspace"]

    def run(container: str, image: str, *command: str, env: dict | None = None) -> None:
        options = [f"-e={k}={v}" for k, v in (env or {}).items()]
        subprocess.run(
            [
                engine,
                "run",
                "-d",
                "--name",
                container,
                "--hostname",
                container,
                "--network",
                name,
                *volume,
                *options,
                image,
                *command,
            ],
            check=True,
            capture_output=True,
        )
        started.append(container)

    spark_class = "/opt/spark/bin/spark-class"
    master = f"{name}-master"
    run(master, images.SPARK_IMAGE, spark_class, "org.apache.spark.deploy.master.Master", "--host", master)
    for i in range(2):
        run(
            f"{name}-worker-{i}",
            images.SPARK_IMAGE,
            spark_class,
            "org.apache.spark.deploy.worker.Worker",
            f"spark://{master}:7077",
            "--cores",
            "1",
            "--memory",
            "1g",
            "--work-dir",  # the default, $SPARK_HOME/work, lies in the image's read-only install
            "/tmp/spark-work",
        )
    curate = [
        "greenfm",
        "curate",
        "--input",
        "/workspace/input",
        "--output",
        "/workspace/curated",
        "--vocab-size",
        "512",
        "--quality-preset",
        "docstrings",
    ]
    driver = f"{name}-driver"
    run(
        driver,
        images.BASE_IMAGE,
        *curate,
        env={"GREENFM_SPARK_MASTER": f"spark://{master}:7077", "GREENFM_SPARK_DRIVER_MEMORY": "1g"},
    )
    try:
        code = _wait(engine, driver, timeout=600)
    except subprocess.TimeoutExpired:
        code = None  # the driver still waits (for executors, most often): the logs below say why
    logs = subprocess.run([engine, "logs", driver], capture_output=True, text=True)
    workers = [subprocess.run([engine, "logs", f"{name}-worker-{i}"], capture_output=True, text=True) for i in range(2)]
    worker_logs = "".join(w.stdout + w.stderr for w in workers)
    assert code == 0, (logs.stdout + logs.stderr)[-3000:] + worker_logs[-2000:]
    assert "Asked to launch executor" in worker_logs  # the work ran in the other containers (Worker.scala)
    distributed = json.loads((workspace / "curated" / REPORT_JSON).read_text())

    local = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            *curate[1:3],
            str(tiny_corpus),
            "--output",
            str(tmp_path / "local"),
            *curate[6:],
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert local.returncode == 0, local.stderr[-3000:]
    assert distributed["fingerprint"] == json.loads((tmp_path / "local" / REPORT_JSON).read_text())["fingerprint"]
    assert distributed["documents"] > 0
