"""The Kubernetes launch backend: the PyTorchJob it builds (against the vendored Kubeflow CRD schema and the
Kubernetes core schema), and create → watch → logs → result through the real kubernetes client against a
local API-server stand-in whose 'operator' runs the job's own worker command."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from components.common.errors import GreenfmError
from components.curate.shards import pack_shards, train_tokenizer
from components.pretrain import train as train_module
from components.pretrain.k8s import (
    ClusterTrainConfig,
    build_pytorchjob,
    build_trainjob,
    job_name,
    job_state,
    run_training_job,
)
from components.pretrain.launch import LaunchConfig, cluster_config
from components.pretrain.train import TrainConfig
from tests import fake_k8s, http_fake
from tests.pod_security import assert_restricted

ROOT = Path(__file__).resolve().parent.parent
CRD = yaml.safe_load((ROOT / "manifests/crds/pytorchjob-kubeflow.org-v1.schema.yaml").read_text())
TRAINJOB_CRD = yaml.safe_load((ROOT / "manifests/crds/trainjob-trainer.kubeflow.org-v1alpha1.schema.yaml").read_text())
NS = fake_k8s.STANDALONE[0]
GPU_TAINT = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
K8S_VERSION = "1.33.0"
TINY = TrainConfig(model_size="tiny", seq_len=32, batch_size=8, steps=6, warmup_steps=2, log_every=2, eval_batches=2)
REGION = {"topology.kubernetes.io/region": "europe-north1"}


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    from components.common.default_data import default_corpus_records

    records = list(itertools.islice(default_corpus_records(), 200))
    out = tmp_path_factory.mktemp("tokens")
    pack_shards(
        train_tokenizer((r["text"] for r in records), 512), ((r["id"], r["text"]) for r in records), out, 0.1, 20_000
    )
    return out


def validate(job: dict) -> None:
    jsonschema.validate(job, CRD)
    for replica in job["spec"]["pytorchReplicaSpecs"].values():
        template = {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": "t"},
            "template": replica["template"],
        }
        kubernetes_validate.validate(template, K8S_VERSION, strict=True)
        assert_restricted(replica["template"]["spec"])


def trainjob_pod(job: dict) -> dict:
    """The pod a TrainJob replica gets: the torch runtime's `node` container with our runtime patch applied."""
    patch = job["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]
    pod = dict(patch["template"]["spec"]["template"]["spec"])
    trainer = job["spec"]["trainer"]
    (container,) = pod["containers"]
    pod["containers"] = [
        {
            **container,
            "image": trainer["image"],
            "command": trainer["command"],
            "resources": trainer["resourcesPerNode"],
        }
    ]
    return pod


def test_pytorchjob_matches_crd_and_core_schemas():
    jcfg = cluster_config(
        LaunchConfig(backend="kubernetes", nodes=4, procs_per_node=8, node_selector=REGION, tolerations=GPU_TAINT),
        env={"POD_NAMESPACE": NS},
    )
    job = build_pytorchjob("greenfm-pretrain-x", "/workspace/t", "/workspace/m", TINY, jcfg)
    validate(job)
    spec = job["spec"]
    assert spec["elasticPolicy"] == {
        "rdzvBackend": "c10d",
        "rdzvPort": 29400,
        "minReplicas": 4,
        "maxReplicas": 4,
        "maxRestarts": 2,
    }
    assert spec["nprocPerNode"] == "8" and spec["pytorchReplicaSpecs"]["Worker"]["replicas"] == 4
    pod = spec["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]
    assert pod["nodeSelector"] == REGION and pod["tolerations"] == GPU_TAINT
    assert job["metadata"]["namespace"] == NS
    container = pod["containers"][0]
    assert container["name"] == "pytorch" and container["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert container["command"][:4] == ["torchrun", "--module", "components.pretrain.train", "--tokens"]
    assert json.loads(container["command"][-1]) == json.loads(json.dumps(TINY.__dict__))
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["NCCL_SOCKET_IFNAME"] == "eth0" and env["TORCH_NCCL_ASYNC_ERROR_HANDLING"] == "1"
    # Each node's energy record names its node (downward API), so no node is counted twice.
    assert env["NODE_NAME"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert pod["initContainers"][0]["command"][-1] == "greenfm-pretrain-x-worker-0"
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    # Placed and measured where the select-region step chose: every node measures its own energy there.
    located = replace(jcfg, energy_location='{"country_iso_code": "FIN"}')
    command = build_pytorchjob("greenfm-pretrain-x", "/workspace/t", "/workspace/m", TINY, located)["spec"][
        "pytorchReplicaSpecs"
    ]["Worker"]["template"]["spec"]["containers"][0]["command"]
    assert command[-2:] == ["--energy-location", '{"country_iso_code": "FIN"}']


def test_schema_rejects_a_broken_job():
    job = build_pytorchjob("x", "/t", "/m", TINY, ClusterTrainConfig(namespace=NS))
    job["spec"]["elasticPolicy"]["rdzvBackend"] = 5
    with pytest.raises(jsonschema.ValidationError):
        validate(job)


def test_job_name_is_deterministic_and_state_reads_conditions():
    jcfg = ClusterTrainConfig(namespace=NS)
    assert job_name("/t", TINY, jcfg) == job_name("/t", TINY, jcfg) != job_name("/t", replace(TINY, seed=2), jcfg)
    running = {"status": {"conditions": [{"type": "Created", "status": "True"}, {"type": "Running", "status": "True"}]}}
    assert job_state(running) == "Running" and job_state({}) == ""
    failed = {"status": {"conditions": [{"type": "Running", "status": "False"}, {"type": "Failed", "status": "True"}]}}
    assert job_state(failed) == "Failed"


def _conditions(*types: str) -> dict:
    return {"conditions": [{"type": t, "status": "True", "message": f"job {t.lower()}"} for t in types]}


@dataclass
class FakeTrainingOperator(fake_k8s.FakeApiServer):
    """Custom objects from FakeApiServer, plus what the training operator and kubelet do: the first watch runs
    the job's worker command and then drops the connection; later watches report the final state (after one
    API-server error and one expired resourceVersion); the worker-0 pod log holds the worker's output."""

    outcome: str = "Succeeded"
    commands: list = field(default_factory=list)
    trainings: int = 0
    watches: int = 0
    log_lines: list = field(default_factory=list)
    trained: threading.Event = field(default_factory=threading.Event)

    def route(self, method: str, path: str, query: dict, body: dict | None, headers: dict):
        if not (path.endswith("/log") or (method == "GET" and query.get("watch", [""])[0].lower() == "true")):
            return self.handle(method, path, body, query, headers)
        with self.lock:  # authenticated and authorized like every other request
            denied = self.admit(method, path, query, headers, body)
        if denied is not None:
            return denied
        if path.endswith("/log"):
            self.trained.wait(120)
            return 200, "".join(line + "\n" for line in self.log_lines).encode()
        return self._watch(path, query)

    def _watch(self, path: str, query: dict):
        group, version, namespace, plural, _ = fake_k8s._CUSTOM.match(path).groups()
        name = query["fieldSelector"][0].split("=", 1)[1]
        key = ((group, version, plural), namespace, name)
        with self.lock:
            self.requests.append(("WATCH", path, query))
            self.watches += 1
            job = self.objects[key]
        if self.watches == 1:
            self._run(job)
            job["status"] = _conditions("Created", "Running")
            return 200, self._events(("ADDED", self._bump(job)))  # then the connection drops
        if self.watches == 2:
            return 500, fake_k8s._status(500, "InternalError", "etcd leader changed")
        if self.watches == 3:
            error = fake_k8s._status(410, "Expired", "too old resource version")
            return 200, self._events(("ERROR", error))
        final = "Complete" if self.outcome == "Succeeded" and job["kind"] == "TrainJob" else self.outcome
        job["status"] = _conditions("Created", "Running", final)
        return 200, self._events(("MODIFIED", self._bump(job)))

    @staticmethod
    def _events(*events) -> bytes:
        return b"".join(json.dumps({"type": t, "object": o}).encode() + b"\n" for t, o in events)

    def _run(self, job: dict) -> None:
        if job["kind"] == "TrainJob":
            command = job["spec"]["trainer"]["command"]
        else:
            command = job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["command"]
        self.commands.append(command)
        assert command[:3] == ["torchrun", "--module", "components.pretrain.train"]
        if self.outcome == "Succeeded":
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                train_module.main(command[3:])
            self.log_lines += out.getvalue().splitlines()
            self.trainings += 1
        self.trained.set()


@pytest.fixture
def operator():
    deployed = fake_k8s.FakeApiServer.deployed("overlays/standalone")  # KFP standalone + greenfm's RBAC
    fake = FakeTrainingOperator(rbac=deployed.rbac, namespaces=deployed.namespaces, accounts=deployed.accounts)
    yield from http_fake.running(fake, lambda m, p, q, b, h: fake.route(m, p, q, json.loads(b) if b else None, h))


def _jcfg(tmp_path: Path, api: str = "pytorchjob") -> ClusterTrainConfig:
    return ClusterTrainConfig(
        api=api,
        namespace=NS,
        workspace_mount=str(tmp_path / "workspace"),
        node_selector=REGION,
        watch_timeout_s=120,  # the fake answers the first watch only after training: longer than 5 s here
        timeout_s=300,
    )


def test_run_creates_watches_through_drops_streams_logs_and_returns_the_model(operator, shards, tmp_path):
    fake, url = operator
    logged: list[dict] = []
    result = run_training_job(
        shards, tmp_path / "model", TINY, _jcfg(tmp_path), on_log=logged.append, api_client=fake_k8s.api_client(url)
    )
    assert fake.trainings == 1 and fake.watches == 4  # dropped, 500, 410 Gone: reconnected each time
    assert [e["step"] for e in logged] == [2, 4, 6]
    assert result.tokens == 6 * 8 * 32 and (tmp_path / "model" / "model.safetensors").is_file()
    assert result.report["checkpoint_dir"].startswith(str(tmp_path / "workspace"))  # checkpoints stay on the volume
    posted = [body for method, _, body in fake.requests if method == "POST"]
    assert len(posted) == 1
    validate(posted[0])
    watches = [query for method, _, query in fake.requests if method == "WATCH"]
    assert "resourceVersion" in watches[1]  # reconnected from the last version seen
    assert "resourceVersion" not in watches[3]  # relisted after 410


def test_existing_job_is_reused_not_retrained(operator, shards, tmp_path):
    fake, url = operator
    api = fake_k8s.api_client(url)
    first = run_training_job(shards, tmp_path / "a", TINY, _jcfg(tmp_path), api_client=api)
    fake.watches = 3  # the job already finished: the next watch reports it
    again = run_training_job(shards, tmp_path / "b", TINY, _jcfg(tmp_path), api_client=api)
    assert fake.trainings == 1 and again.checkpoint_sha256 == first.checkpoint_sha256
    assert [m for m, _, _ in fake.requests].count("POST") == 2  # the second create answered 409 AlreadyExists


def test_failed_job_is_deleted_and_reported(operator, shards, tmp_path):
    fake, url = operator
    fake.outcome = "Failed"
    with pytest.raises(GreenfmError, match=rf"PyTorchJob {NS}/greenfm-pretrain-\w+ failed: job failed"):
        run_training_job(shards, tmp_path / "m", TINY, _jcfg(tmp_path), api_client=fake_k8s.api_client(url))
    assert [m for m, _, _ in fake.requests].count("DELETE") == 1
    assert not fake.objects


def test_committed_manifest_is_what_the_code_builds():
    import yaml

    from components.pretrain.train import TrainConfig

    committed = yaml.safe_load(
        (Path(__file__).resolve().parent.parent / "manifests/jobs/pytorchjob-pretrain.yaml").read_text()
    )
    jcfg = cluster_config(LaunchConfig(backend="kubernetes", nodes=2, procs_per_node=8), env={"POD_NAMESPACE": NS})
    built = build_pytorchjob(
        "greenfm-pretrain",
        "/workspace/curated/corpus/tokens",
        "/workspace/models/greenfm-pretrain",
        TrainConfig(model_size="gpt2-124m", seq_len=1024),
        jcfg,
    )
    del built["metadata"]["namespace"]
    assert committed == built


def test_trainjob_matches_schema_models_and_is_restricted():
    jcfg = cluster_config(
        LaunchConfig(backend="trainjob", nodes=2, procs_per_node=4, node_selector=REGION, tolerations=GPU_TAINT),
        env={"POD_NAMESPACE": NS},
    )
    job = build_trainjob("greenfm-pretrain-x", "/workspace/t", "/workspace/m", TINY, jcfg)
    jsonschema.validate(job, TRAINJOB_CRD)
    spec = job["spec"]
    assert spec["runtimeRef"] == {
        "name": "torch-distributed",
        "kind": "ClusterTrainingRuntime",
        "apiGroup": "trainer.kubeflow.org",
    }
    assert (spec["trainer"]["numNodes"], spec["trainer"]["numProcPerNode"]) == (2, 4)
    assert spec["trainer"]["resourcesPerNode"]["limits"]["nvidia.com/gpu"] == "4"
    assert spec["trainer"]["command"][:3] == ["torchrun", "--module", "components.pretrain.train"]
    node_name = {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
    assert node_name in spec["trainer"]["env"]  # each node's energy record names its node
    pod = trainjob_pod(job)
    assert pod["nodeSelector"] == REGION and pod["tolerations"] == GPU_TAINT
    kubernetes_validate.validate(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "node"}, "spec": pod}, K8S_VERSION, strict=True
    )
    assert_restricted(pod)
    broken = json.loads(json.dumps(job))
    broken["spec"]["trainer"]["numNodes"] = "2"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, TRAINJOB_CRD)


def test_trainjob_runs_and_returns_the_model(operator, shards, tmp_path):
    fake, url = operator
    result = run_training_job(
        shards, tmp_path / "model", TINY, _jcfg(tmp_path, "trainjob"), api_client=fake_k8s.api_client(url)
    )
    assert fake.trainings == 1 and (tmp_path / "model" / "model.safetensors").is_file()
    (posted,) = [body for method, _, body in fake.requests if method == "POST"]
    assert posted["kind"] == "TrainJob" and f"/namespaces/{NS}/trainjobs" in next(
        p for m, p, _ in fake.requests if m == "POST"
    )
    assert result.report["checkpoint_dir"].startswith(str(tmp_path / "workspace"))


def test_checkpoints_go_to_the_volume_not_the_steps_artifact_path(operator, shards, tmp_path, monkeypatch):
    """The step's output artifact lives under the launcher's /minio/... path, which no replica has."""
    fake, url = operator
    monkeypatch.setenv("POD_NAME", "pretrain-step-pod")
    monkeypatch.setenv("POD_UID", "uid-1")
    monkeypatch.setenv("POD_NAMESPACE", NS)
    cfg = replace(TINY, checkpoint_dir="/minio/mlpipeline/v2/artifacts/greenfm/run/pretrain-op/checkpoints")
    run_training_job(shards, tmp_path / "model", cfg, _jcfg(tmp_path), api_client=fake_k8s.api_client(url))
    (command,) = fake.commands
    worker_config = json.loads(command[command.index("--config") + 1])
    assert worker_config["checkpoint_dir"].startswith(str(tmp_path / "workspace"))
    (posted,) = [body for method, _, body in fake.requests if method == "POST"]
    assert posted["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": "pretrain-step-pod", "uid": "uid-1"}
    ]


def test_failed_leftover_job_is_replaced_on_retry(operator, shards, tmp_path):
    fake, url = operator
    api = fake_k8s.api_client(url)
    fake.outcome = "Failed"
    with pytest.raises(GreenfmError, match="failed"):
        run_training_job(shards, tmp_path / "m", TINY, _jcfg(tmp_path), api_client=api)
    # the failed job was deleted; simulate a leftover (deletion by the step did not happen: e.g. the pod was killed)
    name = job_name(shards, TINY, _jcfg(tmp_path))
    job = build_pytorchjob(name, "/t", "/m", TINY, _jcfg(tmp_path))
    job["status"] = _conditions("Created", "Failed")
    fake.objects[(("kubeflow.org", "v1", "pytorchjobs"), NS, name)] = job
    fake.outcome, fake.watches, fake.trained = "Succeeded", 0, threading.Event()
    run_training_job(shards, tmp_path / "m2", TINY, _jcfg(tmp_path), api_client=api)
    assert fake.trainings == 1  # created again and trained, not "reused" as failed


def test_sigterm_deletes_the_job(operator, shards, tmp_path):
    import os
    import signal

    fake, url = operator
    original = fake._run

    def terminated(job):
        os.kill(os.getpid(), signal.SIGTERM)  # the run is terminated in the UI while the job trains
        original(job)

    fake._run = terminated
    with pytest.raises(SystemExit):
        run_training_job(shards, tmp_path / "m", TINY, _jcfg(tmp_path), api_client=fake_k8s.api_client(url))
    assert "DELETE" in [m for m, _, _ in fake.requests] and not fake.objects
