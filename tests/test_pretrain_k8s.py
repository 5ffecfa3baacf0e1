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
from components.pretrain.k8s import PyTorchJobConfig, build_pytorchjob, job_name, job_state, run_pytorchjob
from components.pretrain.launch import LaunchConfig
from components.pretrain.train import TrainConfig
from tests import fake_k8s, http_fake

ROOT = Path(__file__).resolve().parent.parent
CRD = yaml.safe_load((ROOT / "manifests/crds/pytorchjob-kubeflow.org-v1.schema.yaml").read_text())
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


def test_pytorchjob_matches_crd_and_core_schemas():
    jcfg = PyTorchJobConfig.from_launch(
        LaunchConfig(backend="kubernetes", nodes=4, procs_per_node=8, node_selector=REGION), env={}
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
    assert pod["nodeSelector"] == REGION
    container = pod["containers"][0]
    assert container["name"] == "pytorch" and container["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert container["command"][:4] == ["torchrun", "--module", "components.pretrain.train", "--tokens"]
    assert json.loads(container["command"][-1]) == json.loads(json.dumps(TINY.__dict__))
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["NCCL_SOCKET_IFNAME"] == "eth0" and env["TORCH_NCCL_ASYNC_ERROR_HANDLING"] == "1"
    assert pod["initContainers"][0]["command"][-1] == "greenfm-pretrain-x-worker-0"
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    # Placed and measured where the select-region step chose: every node measures its own energy there.
    located = replace(jcfg, energy_location='{"country_iso_code": "FIN"}')
    command = build_pytorchjob("greenfm-pretrain-x", "/workspace/t", "/workspace/m", TINY, located)["spec"][
        "pytorchReplicaSpecs"
    ]["Worker"]["template"]["spec"]["containers"][0]["command"]
    assert command[-2:] == ["--energy-location", '{"country_iso_code": "FIN"}']


def test_schema_rejects_a_broken_job():
    job = build_pytorchjob("x", "/t", "/m", TINY, PyTorchJobConfig())
    job["spec"]["elasticPolicy"]["rdzvBackend"] = 5
    with pytest.raises(jsonschema.ValidationError):
        validate(job)


def test_job_name_is_deterministic_and_state_reads_conditions():
    jcfg = PyTorchJobConfig()
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
        job["status"] = _conditions("Created", "Running", self.outcome)
        return 200, self._events(("MODIFIED", self._bump(job)))

    @staticmethod
    def _events(*events) -> bytes:
        return b"".join(json.dumps({"type": t, "object": o}).encode() + b"\n" for t, o in events)

    def _run(self, job: dict) -> None:
        command = job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["command"]
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


def _jcfg(tmp_path: Path) -> PyTorchJobConfig:
    return PyTorchJobConfig(
        namespace=fake_k8s.STANDALONE[0],  # the run's namespace
        workspace_mount=str(tmp_path / "workspace"),
        node_selector=REGION,
        watch_timeout_s=5,
        timeout_s=300,
    )


def test_run_creates_watches_through_drops_streams_logs_and_returns_the_model(operator, shards, tmp_path):
    fake, url = operator
    logged: list[dict] = []
    result = run_pytorchjob(
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
    first = run_pytorchjob(shards, tmp_path / "a", TINY, _jcfg(tmp_path), api_client=api)
    fake.watches = 3  # the job already finished: the next watch reports it
    again = run_pytorchjob(shards, tmp_path / "b", TINY, _jcfg(tmp_path), api_client=api)
    assert fake.trainings == 1 and again.checkpoint_sha256 == first.checkpoint_sha256
    assert [m for m, _, _ in fake.requests].count("POST") == 2  # the second create answered 409 AlreadyExists


def test_failed_job_is_deleted_and_reported(operator, shards, tmp_path):
    fake, url = operator
    fake.outcome = "Failed"
    with pytest.raises(GreenfmError, match=r"PyTorchJob kubeflow/greenfm-pretrain-\w+ failed: job failed"):
        run_pytorchjob(shards, tmp_path / "m", TINY, _jcfg(tmp_path), api_client=fake_k8s.api_client(url))
    assert [m for m, _, _ in fake.requests].count("DELETE") == 1
    assert not fake.objects


def test_committed_manifest_is_what_the_code_builds():
    import yaml

    from components.pretrain.train import TrainConfig

    committed = yaml.safe_load(
        (Path(__file__).resolve().parent.parent / "manifests/jobs/pytorchjob-pretrain.yaml").read_text()
    )
    jcfg = PyTorchJobConfig.from_launch(LaunchConfig(backend="kubernetes", nodes=2, procs_per_node=8), env={})
    built = build_pytorchjob(
        "greenfm-pretrain",
        "/workspace/curated/corpus/tokens",
        "/workspace/models/greenfm-pretrain",
        TrainConfig(model_size="gpt2-124m", seq_len=1024),
        jcfg,
    )
    del built["metadata"]["namespace"]
    assert committed == built
