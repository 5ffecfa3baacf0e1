"""Spark on Kubernetes for curation: config selection, client-mode conf, the SparkApplication (against the CRD
schema and the Kubernetes core schemas), and create/wait through the real kubernetes client against a local
API-server stand-in. No Spark session is started."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes import client as k8s

from components.common.errors import GreenfmError
from components.common.images import SPARK_IMAGE
from components.common.k8s_jobs import create_custom_object
from components.curate.job import REPORT_JSON, CurateConfig
from components.curate.k8s import (
    DRIVER_SCRIPT,
    FAILED,
    SPARK_APPLICATION,
    SPARK_ENV,
    SparkK8sConfig,
    application_name,
    application_state,
    build_spark_application,
    client_mode_conf,
    curate_with_backend,
    executor_pod_template,
    from_pipeline,
    on_shared_storage,
    run_spark_application,
)
from components.curate.quality import quality_preset
from tests import fake_k8s
from tests.pod_security import assert_restricted

ROOT = Path(__file__).resolve().parent.parent
CRD = yaml.safe_load((ROOT / "manifests/crds/sparkapplication-sparkoperator.k8s.io-v1beta2.schema.yaml").read_text())
K8S_VERSION = "1.33.0"
SETTINGS = json.loads(json.dumps(asdict(CurateConfig())))
NS = fake_k8s.STANDALONE[0]  # the step's namespace: jobs go there, never to a fixed one
POD = {"POD_IP": "10.1.2.3", "POD_NAME": "greenfm-abc-curate-op-driver", "POD_UID": "u-1", "POD_NAMESPACE": NS}


def test_local_is_the_default():
    assert SparkK8sConfig.from_env({}).backend == "local"
    assert SparkK8sConfig.from_env({}).local_master == ""  # local[*] in this process


def test_a_standalone_master_is_the_local_backends_session(spark, tiny_corpus, tmp_path, monkeypatch):
    """GREENFM_SPARK_MASTER=spark://... keeps the local backend, with this process as a driver of that cluster
    (`greenfm curate` and the curate step alike); the k8s:// client-mode master stays untouched."""
    from components.curate import k8s

    cfg = SparkK8sConfig.from_env({"GREENFM_SPARK_MASTER": "spark://spark-master:7077", "POD_NAMESPACE": NS})
    assert (cfg.backend, cfg.local_master) == ("local", "spark://spark-master:7077")
    assert cfg.master.startswith("k8s://")
    masters: list[str | None] = []

    def session(master: str | None = None, *args, **kwargs):
        masters.append(master)
        return spark  # the test session's: a standalone cluster runs in tests/test_containers.py

    monkeypatch.setattr(k8s, "get_spark", session)
    config = CurateConfig(quality=quality_preset("docstrings"), vocab_size=512)  # the tiny corpus is docstrings
    k8s.curate_with_backend(str(tiny_corpus), tmp_path / "out", config, cfg)
    assert masters == ["spark://spark-master:7077"]


def test_k8s_master_selects_client_mode_and_env_overrides():
    cfg = SparkK8sConfig.from_env(
        {
            "GREENFM_SPARK_MASTER": "k8s://https://10.0.0.1:443",
            "GREENFM_SPARK_EXECUTORS": "8",
            "GREENFM_NODE_SELECTOR": '{"topology.kubernetes.io/region": "europe-north1"}',
            "POD_NAMESPACE": NS,
        }
    )
    assert (cfg.backend, cfg.master, cfg.executors) == ("client", "k8s://https://10.0.0.1:443", 8)
    assert cfg.node_selector == {"topology.kubernetes.io/region": "europe-north1"}
    assert SparkK8sConfig.from_env({"GREENFM_SPARK_BACKEND": "operator", "POD_NAMESPACE": NS}).backend == "operator"


def test_the_run_chooses_backend_executors_and_placement_the_cluster_the_rest():
    cluster = yaml.safe_load((ROOT / "manifests/base/spark-config.yaml").read_text())["data"]
    assert set(cluster) <= set(SPARK_ENV)  # every key the ConfigMap sets is one the step reads
    region = {"topology.kubernetes.io/region": "europe-north1"}
    cfg = from_pipeline("operator", 6, region, env={**cluster, "POD_NAMESPACE": NS})
    assert (cfg.backend, cfg.executors, cfg.node_selector) == ("operator", 6, region)
    assert (cfg.namespace, cfg.service_account, cfg.executor_memory) == (
        cluster.get("GREENFM_SPARK_NAMESPACE", NS),
        "greenfm-spark",
        "4g",
    )
    assert "GREENFM_SPARK_IMAGE" not in SPARK_ENV  # the image comes from the compiled image template
    assert from_pipeline("local", 2, {}, env=cluster).backend == "local"  # the ConfigMap alone starts nothing
    with pytest.raises(GreenfmError, match="expected one of"):
        from_pipeline("yarn", 2, {}, env={})


def test_compiled_curate_step_reads_the_spark_config_map(tmp_path):
    from pipelines.compile import compile_pipeline

    platform = list(yaml.safe_load_all(compile_pipeline(tmp_path / "p.yaml").read_text()))[1]
    curate = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-curate-op"]
    (config_map,) = curate["configMapAsEnv"]
    assert config_map["configMapName"] == "greenfm-spark" and config_map["optional"]
    assert {item["envVar"] for item in config_map["keyToEnv"]} == set(SPARK_ENV)


def test_bad_backend_or_master_fails_early():
    with pytest.raises(GreenfmError, match="expected one of"):
        SparkK8sConfig(backend="yarn")
    with pytest.raises(GreenfmError, match="k8s://"):
        SparkK8sConfig(backend="client", master="spark://x:7077")


def test_client_mode_conf(tmp_path):
    cfg = SparkK8sConfig(backend="client", namespace=NS, node_selector={"topology.kubernetes.io/region": "us-central1"})
    conf = client_mode_conf(cfg, tmp_path, env=POD)
    assert conf["spark.kubernetes.container.image"] == SPARK_IMAGE
    assert conf["spark.kubernetes.namespace"] == NS
    # executors reach the driver at its pod IP, are owned by its pod, and run its Python
    assert conf["spark.driver.host"] == "10.1.2.3" and conf["spark.driver.bindAddress"] == "0.0.0.0"
    assert conf["spark.kubernetes.driver.pod.name"] == POD["POD_NAME"]
    assert conf["spark.executorEnv.PYSPARK_PYTHON"] == conf["spark.pyspark.python"] == sys.executable
    assert conf["spark.kubernetes.node.selector.topology.kubernetes.io/region"] == "us-central1"
    assert (
        conf["spark.kubernetes.executor.volumes.persistentVolumeClaim.workspace.options.claimName"]
        == "greenfm-workspace"
    )
    template = yaml.safe_load(Path(conf["spark.kubernetes.executor.podTemplateFile"]).read_text())
    assert template == executor_pod_template(cfg)
    kubernetes_validate.validate({**template, "metadata": {"name": "executor"}}, K8S_VERSION, strict=True)
    assert_restricted(template["spec"])


def test_client_mode_needs_the_pods_address_and_name(tmp_path):
    cfg = SparkK8sConfig(backend="client", namespace=NS)
    with pytest.raises(GreenfmError, match="POD_IP, POD_NAME not set"):
        client_mode_conf(cfg, tmp_path, env={"HOSTNAME": "curate-pod"})  # a pod's hostname does not resolve


def test_cluster_modes_take_the_steps_namespace(monkeypatch):
    monkeypatch.setenv("POD_NAMESPACE", NS)
    assert SparkK8sConfig(backend="operator").namespace == NS


def _app(**cfg) -> dict:
    return build_spark_application(
        SparkK8sConfig(backend="operator", namespace=NS, **cfg),
        "greenfm-curate-x",
        "/workspace/in",
        "/workspace/out",
        SETTINGS,
    )


def test_spark_application_matches_crd_and_core_schemas():
    app = _app(node_selector={"topology.kubernetes.io/region": "europe-north1"})
    jsonschema.validate(app, CRD)
    spec = app["spec"]
    assert spec["mainApplicationFile"] == DRIVER_SCRIPT and spec["type"] == "Python"
    assert json.loads(spec["arguments"][spec["arguments"].index("--config") + 1]) == SETTINGS
    for role in ("driver", "executor"):
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": role},
            "spec": {
                "securityContext": spec[role]["podSecurityContext"],
                "volumes": spec["volumes"],
                "nodeSelector": spec[role]["nodeSelector"],
                "containers": [
                    {
                        "name": "spark",
                        "image": spec["image"],
                        "securityContext": spec[role]["securityContext"],
                        "volumeMounts": spec[role]["volumeMounts"],
                    }
                ],
            },
        }
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
        assert_restricted(pod["spec"])


def test_crd_schema_rejects_mistakes():
    app = _app()
    app["spec"]["type"] = "python"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(app, CRD)
    app = _app()
    app["spec"]["executor"]["instance"] = 2  # misspelt: the API server would silently drop it
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(app, CRD)


def test_committed_manifest_is_what_the_code_builds():
    committed = yaml.safe_load((ROOT / "manifests/jobs/sparkapplication-curate.yaml").read_text())
    built = build_spark_application(
        SparkK8sConfig(backend="operator", namespace=NS),
        "greenfm-curate",
        "/workspace/data/corpus",
        "/workspace/curated/corpus",
        SETTINGS,
    )
    del built["metadata"]["namespace"]
    assert committed == built


def test_application_name_is_deterministic_and_valid():
    a = application_name("/in", "/out", SETTINGS)
    assert a == application_name("/in", "/out", SETTINGS) != application_name("/in2", "/out", SETTINGS)
    assert len(a) <= 63 and a.replace("-", "").isalnum()


@pytest.fixture
def custom_api(api_server):
    fake, url = api_server
    return fake, k8s.CustomObjectsApi(fake_k8s.api_client(url))


def _progress(states: list[str], error: str = ""):
    """An operator stand-in: each GET moves the application to the next state."""

    def on_get(kind, obj):
        if kind[-1] == "sparkapplications" and states:
            obj["status"] = {"applicationState": {"state": states.pop(0), "errorMessage": error}}
        return obj

    return on_get


def test_create_and_wait_until_completed(custom_api):
    fake, api = custom_api
    fake.on_get = _progress(["SUBMITTED", "RUNNING", "COMPLETED"])
    waits = []
    assert run_spark_application(_app(), api, timeout_s=60, poll_s=5, sleep=waits.append) == "COMPLETED"
    assert waits == [5, 5]
    posts = [r for r in fake.requests if r[0] == "POST"]
    assert posts[0][1] == f"/apis/sparkoperator.k8s.io/v1beta2/namespaces/{NS}/sparkapplications"
    assert posts[0][2]["spec"]["mainApplicationFile"] == DRIVER_SCRIPT


def test_recreate_is_idempotent(custom_api):
    fake, api = custom_api
    fake.on_get = _progress(["COMPLETED", "COMPLETED"])
    run_spark_application(_app(), api, 60, 0, sleep=lambda s: None)
    run_spark_application(_app(), api, 60, 0, sleep=lambda s: None)  # 409 AlreadyExists → reuse, not an error
    assert len([o for o in fake.objects if o[0][-1] == "sparkapplications"]) == 1


def test_failed_application_raises_with_message(custom_api):
    fake, api = custom_api
    fake.on_get = _progress(["RUNNING", "FAILED"], error="driver OOMKilled")
    with pytest.raises(GreenfmError, match="FAILED: driver OOMKilled"):
        run_spark_application(_app(), api, 60, 0, sleep=lambda s: None)


def test_timeout(custom_api):
    fake, api = custom_api
    fake.on_get = _progress(["RUNNING"] * 100)
    with pytest.raises(GreenfmError, match="still RUNNING"):
        run_spark_application(_app(), api, timeout_s=0, poll_s=0, sleep=lambda s: None)


def test_failed_leftover_is_replaced_and_a_running_one_adopted(custom_api):
    fake, api = custom_api
    fake.on_get = _progress(["FAILED"], error="executor lost")
    with pytest.raises(GreenfmError, match="FAILED"):
        run_spark_application(_app(), api, 60, 0, sleep=lambda s: None)
    # The step retries: the failed application of the same name is deleted and created again, then runs.
    fake.on_get = None
    owner = {"apiVersion": "v1", "kind": "Pod", "name": "retry-pod", "uid": "u-2"}
    assert (
        create_custom_object(
            api,
            SPARK_APPLICATION,
            {**_app(), "metadata": {**_app()["metadata"], "ownerReferences": [owner]}},
            failed=lambda o: application_state(o) in FAILED,
        )
        == "recreated"
    )
    methods = [m for m, _, _ in fake.requests]
    assert methods.count("DELETE") == 1 and methods.count("POST") == 3
    # A further retry while it runs adopts it: no second application, the new pod becomes its owner.
    (key,) = [k for k in fake.objects if k[0][-1] == "sparkapplications"]
    fake.objects[key]["status"] = {"applicationState": {"state": "RUNNING"}}
    new_owner = {**owner, "name": "retry-pod-2", "uid": "u-3"}
    app = _app()
    app["metadata"]["ownerReferences"] = [new_owner]
    assert (
        create_custom_object(api, SPARK_APPLICATION, app, failed=lambda o: application_state(o) in FAILED) == "adopted"
    )
    assert fake.objects[key]["metadata"]["ownerReferences"] == [new_owner]


def _write_report(shared: Path, documents: int = 12) -> None:
    shared.mkdir(parents=True, exist_ok=True)
    report = {"documents": documents, "quarantined": 1, "fingerprint": "ab" * 32, "train_tokens": 900, "val_tokens": 50}
    (shared / REPORT_JSON).write_text(json.dumps(report))


def test_operator_backend_stages_input_and_copies_shared_result(custom_api, tmp_path, monkeypatch):
    fake, api = custom_api
    for var, value in POD.items():
        monkeypatch.setenv(var, value)
    workspace = tmp_path / "workspace"
    cfg = SparkK8sConfig(backend="operator", namespace=NS, workspace_mount=str(workspace), poll_s=0)
    out = tmp_path / "step-output"
    local_input = tmp_path / "corpus"  # a path only the step's pod has (e.g. the built-in corpus in /tmp)
    local_input.mkdir()
    (local_input / "a.jsonl").write_text('{"text": "x"}\n')
    config = CurateConfig(min_words=3)

    def on_get(kind, obj):
        # The "driver" reads its input and writes its output on the shared volume, then the operator reports.
        args = obj["spec"]["arguments"]
        assert Path(args[1]).is_relative_to(workspace) and (Path(args[1]) / "a.jsonl").is_file()
        _write_report(Path(args[3]))
        obj["status"] = {"applicationState": {"state": "COMPLETED"}}
        return obj

    fake.on_get = on_get
    result = curate_with_backend(str(local_input), out, config, cfg, api=api)
    assert (result.documents, result.fingerprint, result.output_dir) == (12, "ab" * 32, str(out))
    assert (out / REPORT_JSON).is_file()
    (app,) = [o for k, o in fake.objects.items() if k[0][-1] == "sparkapplications"]
    assert json.loads(app["spec"]["arguments"][5])["min_words"] == 3
    assert Path(app["spec"]["arguments"][3]).is_relative_to(workspace)
    assert app["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": POD["POD_NAME"], "uid": POD["POD_UID"]}
    ]


def test_shared_storage_keeps_uris_and_volume_paths(tmp_path):
    cfg = SparkK8sConfig(backend="operator", namespace=NS, workspace_mount=str(tmp_path))
    (tmp_path / "data").mkdir()
    assert on_shared_storage("s3a://bucket/corpus/", cfg, tmp_path / "w") == "s3a://bucket/corpus/"
    assert on_shared_storage(str(tmp_path / "data"), cfg, tmp_path / "w") == str((tmp_path / "data").resolve())
    with pytest.raises(GreenfmError, match="executors cannot read this scheme"):
        on_shared_storage("ftp://host/corpus", cfg, tmp_path / "w")


class _RecordingBuilder:
    """Stands in for SparkSession.builder: records master and conf instead of starting a JVM."""

    def __init__(self):
        self.master_url, self.conf = None, {}

    def master(self, url):
        self.master_url = url
        return self

    def config(self, key, value):
        self.conf[key] = value
        return self

    def appName(self, name):
        return self

    def getOrCreate(self):
        class Session:
            sparkContext = type("SC", (), {"setLogLevel": lambda self, level: None})()

        return Session()


@pytest.fixture
def recording_builder(monkeypatch):
    from components.curate import spark_session

    builder = _RecordingBuilder()
    monkeypatch.setattr(spark_session, "SparkSession", type("S", (), {"builder": builder}))
    monkeypatch.setattr(spark_session, "_session", None)
    for var in ("GREENFM_SPARK_MASTER", "GREENFM_SPARK_BACKEND", "PYSPARK_GATEWAY_PORT"):
        monkeypatch.delenv(var, raising=False)
    return spark_session, builder


def test_get_spark_defaults_to_local(recording_builder):
    spark_session, builder = recording_builder
    spark_session.get_spark()
    assert builder.master_url == "local[*]"
    assert not any(k.startswith("spark.kubernetes.") for k in builder.conf)


def test_get_spark_takes_its_conf_from_the_caller_not_the_environment(recording_builder, monkeypatch):
    spark_session, builder = recording_builder
    monkeypatch.setenv("GREENFM_SPARK_MASTER", "k8s://https://10.0.0.1:443")
    monkeypatch.setenv("GREENFM_SPARK_EXECUTORS", "2")
    spark_session.get_spark("k8s://https://kubernetes.default.svc:443", conf={"spark.executor.instances": "7"})
    assert builder.master_url == "k8s://https://kubernetes.default.svc:443"
    assert builder.conf["spark.executor.instances"] == "7"


def test_client_backend_runs_with_the_runs_executors_and_placement(recording_builder, monkeypatch, tmp_path):
    """The run asks for 7 executors in europe-north1: the session the curation runs in gets exactly that."""
    from components.curate import k8s as curate_k8s

    _, builder = recording_builder
    for var, value in POD.items():
        monkeypatch.setenv(var, value)
    region = {"topology.kubernetes.io/region": "europe-north1"}
    env = {"GREENFM_SPARK_EXECUTORS": "2", "GREENFM_WORKSPACE_MOUNT": str(tmp_path / "workspace"), **POD}
    cfg = from_pipeline("client", 7, region, env=env)
    ran = {}

    def fake_curate(input_uri, output_dir, config, spark=None):
        ran.update(input=input_uri, output=str(output_dir), spark=spark)
        _write_report(Path(output_dir), documents=3)

    monkeypatch.setattr(curate_k8s, "curate", fake_curate)
    result = curate_with_backend("gs://bucket/corpus", tmp_path / "out", CurateConfig(), cfg, template_dir=tmp_path)
    assert builder.master_url == cfg.master and ran["spark"] is not None
    assert builder.conf["spark.executor.instances"] == "7"
    assert builder.conf["spark.kubernetes.node.selector.topology.kubernetes.io/region"] == "europe-north1"
    assert ran["input"] == "gs://bucket/corpus" and Path(ran["output"]).is_relative_to(tmp_path / "workspace")
    assert result.documents == 3 and (tmp_path / "out" / REPORT_JSON).is_file()


def test_a_local_curation_of_a_small_input_gets_the_small_input_session(recording_builder, monkeypatch, tmp_path):
    """Short local jobs spend their time in C2 compilations and re-planning (spark_session.SMALL_INPUT_CONF);
    larger or remote inputs, and any cluster session, keep Spark's defaults."""
    from components.curate import k8s as curate_k8s
    from components.curate.inputs import stored_bytes

    spark_session, builder = recording_builder
    monkeypatch.setattr(curate_k8s, "curate", lambda input_uri, output_dir, config, spark=None: None)
    corpus = tmp_path / "corpus"
    (corpus / "part").mkdir(parents=True)
    (corpus / "a.jsonl").write_text('{"text": "one"}\n')
    (corpus / "part" / "b.jsonl").write_text('{"text": "two two"}\n')
    assert stored_bytes(corpus) == 16 + 20 and stored_bytes(corpus / "a.jsonl") == 16
    assert stored_bytes("s3a://bucket/corpus") is None and stored_bytes(tmp_path / "missing") is None

    def settings(input_uri, max_bytes=spark_session.SMALL_INPUT_MAX_BYTES):
        monkeypatch.setattr(spark_session, "_session", None)
        monkeypatch.setattr(spark_session, "SMALL_INPUT_MAX_BYTES", max_bytes)
        builder.conf.clear()
        curate_with_backend(str(input_uri), tmp_path / "out", CurateConfig(), from_pipeline("local", 0, None, env={}))
        return {key: builder.conf.get(key) for key in spark_session.SMALL_INPUT_CONF}

    assert settings(corpus) == {
        "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1",
        "spark.sql.adaptive.enabled": "false",
    }
    defaults = dict.fromkeys(spark_session.SMALL_INPUT_CONF)
    assert settings(corpus, max_bytes=35) == defaults  # 36 bytes: over the limit
    assert settings("gs://bucket/corpus") == defaults  # size unknown
    monkeypatch.setattr(spark_session, "_session", None)
    builder.conf.clear()
    spark_session.get_spark("k8s://https://kubernetes.default.svc:443", small_input=True)
    assert not set(spark_session.SMALL_INPUT_CONF) & set(builder.conf)


def test_get_spark_under_spark_submit_keeps_its_master(recording_builder, monkeypatch):
    spark_session, builder = recording_builder
    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "40000")  # set by spark-submit for a Python driver
    spark_session.get_spark()
    assert builder.master_url is None
